// The care directory: practitioners by name or specialty, their names by
// reference, and by grantee hash (consent on chain names practitioners by
// keccak256("Practitioner/<id>") only).
import { h, clear, field, button, busy, humanName, notice } from './ui.js';
import { granteeHash } from './consent.js';

const names = new Map(); // "Practitioner/1" -> Promise<string>

export function practitionerSpecialties(p, roles = []) {
  const out = [];
  for (const q of p.qualification || []) {
    const t = q.code?.text || q.code?.coding?.[0]?.display;
    if (t) out.push(t);
  }
  for (const r of roles) for (const s of r.specialty || []) {
    const t = s.text || s.coding?.[0]?.display;
    if (t) out.push(t);
  }
  return [...new Set(out)];
}

export function displayPractitioner(p) {
  const n = humanName(p.name) || `Practitioner ${p.id}`;
  return n;
}

/** searchPractitioners finds practitioners whose name or specialty starts with q. */
export async function searchPractitioners(fhir, q) {
  const query = encodeURIComponent(q.trim());
  const [byName, byRole] = await Promise.all([
    fhir.search(q.trim() ? `Practitioner?name=${query}&_count=20` : 'Practitioner?_count=20&_sort=family'),
    q.trim() ? fhir.search(`PractitionerRole?specialty:text=${query}&_include=PractitionerRole:practitioner&_count=20`).catch(() => []) : Promise.resolve([]),
  ]);
  const roles = byRole.filter((r) => r.resourceType === 'PractitionerRole');
  const found = new Map();
  for (const p of [...byName, ...byRole.filter((r) => r.resourceType === 'Practitioner')]) {
    if (p.resourceType !== 'Practitioner' || found.has(p.id)) continue;
    const ref = `Practitioner/${p.id}`;
    const myRoles = roles.filter((r) => r.practitioner?.reference === ref);
    found.set(p.id, { ref, name: displayPractitioner(p), specialties: practitionerSpecialties(p, myRoles) });
    names.set(ref, Promise.resolve(displayPractitioner(p)));
  }
  return [...found.values()];
}

/** practitionerName returns a practitioner's display name (cached for the page's life). */
export function practitionerName(fhir, ref) {
  if (!names.has(ref)) {
    names.set(ref, fhir.get(ref).then(displayPractitioner).catch(() => 'a practitioner'));
  }
  return names.get(ref);
}

/** granteeDirectory maps grantee hashes to {ref, name} for the practitioners the gateway lists. */
export async function granteeDirectory(fhir) {
  const list = await fhir.search('Practitioner?_count=500');
  const m = new Map();
  for (const p of list) {
    const ref = `Practitioner/${p.id}`;
    m.set(granteeHash(ref), { ref, name: displayPractitioner(p) });
    names.set(ref, Promise.resolve(displayPractitioner(p)));
  }
  return m;
}

/**
 * picker is a practitioner search with a choice of results (radio buttons
 * in a fieldset). picker.selected is {ref, name} or null.
 */
export function picker(fhir, { legend = 'Practitioner', idPrefix = 'pick' } = {}) {
  const input = h('input', { type: 'search', id: `${idPrefix}-q`, autocomplete: 'off', placeholder: 'e.g. Santos or cardiology' });
  const results = h('div', { class: 'pick-results', 'aria-live': 'polite' });
  const state = { selected: null };
  const go = async () => {
    clear(results, h('p', { class: 'hint' }, 'Searching…'));
    try {
      const list = await searchPractitioners(fhir, input.value);
      state.selected = null;
      if (!list.length) {
        clear(results, h('p', { class: 'hint' }, 'No practitioner found. Try another name or specialty.'));
        return;
      }
      const fs = h('fieldset', { class: 'choices' }, h('legend', null, `Choose a ${legend.toLowerCase()}`));
      list.forEach((p, i) => {
        const id = `${idPrefix}-r${i}`;
        const radio = h('input', { type: 'radio', name: `${idPrefix}-choice`, id, value: p.ref, onchange: () => { state.selected = p; } });
        fs.append(h('div', { class: 'choice' }, radio, h('label', { for: id }, h('span', { class: 'choice-name' }, p.name), p.specialties.length ? h('span', { class: 'choice-sub' }, p.specialties.join(', ')) : null)));
      });
      if (list.length === 1) {
        fs.querySelector('input').checked = true;
        state.selected = list[0];
      }
      clear(results, fs);
    } catch (e) {
      clear(results, notice('error', e.friendly || e.message));
    }
  };
  const searchBtn = button('Search', () => busy(searchBtn, go), { class: 'btn', id: `${idPrefix}-search` });
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); searchBtn.click(); } });
  const el = h('div', { class: 'picker' },
    field(`Find a ${legend.toLowerCase()} by name or specialty`, input),
    h('div', { class: 'actions' }, searchBtn),
    results);
  return { el, get selected() { return state.selected; }, reset() { state.selected = null; clear(results); input.value = ''; } };
}
