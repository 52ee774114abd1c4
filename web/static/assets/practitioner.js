// The practitioner's pages: my appointments, the patients who granted me
// access (read from the chain's consent events, or the gateway's Consent
// records) with what I may do, their reports within the grant, and
// break-glass emergency access with a required reason, a test report
// uploaded for a patient who shared test reports with "View and edit", and
// my account (my registration and what administrators did to it).
import { h, clear, field, notice, badge, button, busy, fmtDateTime, shortHex, humanName, fmtDate } from './ui.js';
import { FHIR, ApiError } from './api.js';
import * as consent from './consent.js';
import { reportItem, reportForm } from './reports.js';
import { registration, refusal, statusWords, historyList, assertedList, KIND_WORDS } from './register.js';
import { MAX_UINT64 } from './eth.js';

export const practitionerPages = {
  appointments: { title: 'My appointments', render: renderAppointments },
  patients: { title: 'My patients', render: renderPatients },
  emergency: { title: 'Emergency access', render: renderEmergency },
  account: { title: 'My account', render: renderAccount },
};

const CAIP10 = 'https://chainagnostic.org/CAIPs/caip-10';
const section = (title, ...content) => h('section', { class: 'card' }, h('h2', null, title), ...content);

async function renderAppointments(main, ctx) {
  main.append(h('h1', null, 'My appointments'));
  const box = main.appendChild(h('section', { class: 'card' }, h('p', { class: 'hint' }, 'Loading…')));
  const list = await ctx.fhir.search(`Appointment?practitioner=${encodeURIComponent(ctx.session.ref)}&_sort=date&_count=100`);
  if (ctx.stale()) return;
  if (!list.length) { clear(box, h('p', null, 'No appointments.')); return; }
  const now = new Date();
  const upcoming = list.filter((a) => a.status !== 'cancelled' && (!a.start || new Date(a.start) >= now));
  const other = list.filter((a) => !upcoming.includes(a));
  const item = (a) => {
    const pat = (a.participant || []).map((p) => p.actor).find((x) => x?.reference?.startsWith('Patient/'));
    return h('li', { class: 'item' }, h('div', { class: 'item-main' },
      h('p', { class: 'item-title' }, a.start ? fmtDateTime(a.start) : 'No date', ' ', a.status === 'cancelled' ? badge('muted', 'Cancelled') : a.status === 'booked' ? badge('ok', 'Booked') : badge('info', a.status)),
      h('p', null, pat?.display || 'A patient', a.description ? ` · ${a.description}` : '', a.minutesDuration ? ` · ${a.minutesDuration} min` : '')));
  };
  clear(box,
    h('h2', null, 'Upcoming'),
    upcoming.length ? h('ul', { class: 'items', id: 'upcoming' }, upcoming.map(item)) : h('p', null, 'Nothing upcoming.'),
    other.length ? h('h2', null, 'Past and cancelled') : null,
    other.length ? h('ul', { class: 'items' }, other.map(item)) : null);
}

/** myGrants returns the live grants to me, grouped by patient: [{wallet, patientRef, grants: [{scope, expiry}]}]. */
async function myGrants(ctx) {
  try {
    const reg = await consent.registry();
    const rpc = await consent.chainRPC();
    const events = await consent.consentLogs(rpc, reg.address, { grantee: ctx.session.ref });
    const live = consent.liveGrants(events).filter((g) => g.active && g.scope);
    const by = new Map();
    for (const g of live) {
      if (!by.has(g.patient)) by.set(g.patient, { wallet: g.patient, chainId: reg.chainId, grants: [] });
      by.get(g.patient).grants.push(g);
    }
    // The chain names the patient by wallet only. The gateway's Consent
    // records name the patient's record: a doctor may read those Consents
    // whatever kinds of records were shared, where looking the patient up
    // through the Patient record needs "My personal details" shared too.
    const refs = await patientRefs(ctx).catch(() => new Map());
    for (const p of by.values()) p.patientRef = refs.get(p.wallet.toLowerCase());
    return [...by.values()];
  } catch {
    const consents = await ctx.fhir.search(`Consent?actor=${encodeURIComponent(ctx.session.ref)}&status=active&_count=200`);
    const by = new Map();
    for (const g of consent.grantsFromConsents(consents)) {
      if (!by.has(g.patientRef)) by.set(g.patientRef, { patientRef: g.patientRef, grants: [] });
      by.get(g.patientRef).grants.push(g);
    }
    return [...by.values()];
  }
}

/** patientRefs maps patient wallets (lower case) to their records, from the Consents the gateway projected for grants to me. */
async function patientRefs(ctx) {
  const consents = await ctx.fhir.search(`Consent?actor=${encodeURIComponent(ctx.session.ref)}&_count=200`);
  const out = new Map();
  for (const c of consents) {
    const id = (c.identifier || []).find((i) => i.system === consent.REGISTRY_SYSTEM)?.value || '';
    const wallet = id.split('/')[1]; // eip155:<chain>:<registry>/<patient wallet>/<grantee>/<scope>
    if (wallet && c.patient?.reference) out.set(wallet.toLowerCase(), c.patient.reference);
  }
  return out;
}

const can = (scope, letter) => (scope.split('.')[1] || '').includes(letter);

/** patientQuery is the search parameter that selects one patient's records. */
function patientQuery(p) {
  if (p.patientRef) return `patient=${encodeURIComponent(p.patientRef)}`;
  const v = (a) => `${CAIP10}|eip155:${p.chainId}:${a}`;
  return `patient.identifier=${encodeURIComponent(`${v(p.wallet)},${v(p.wallet.toLowerCase())}`)}`;
}

async function renderPatients(main, ctx) {
  main.append(h('h1', null, 'My patients'));
  main.append(h('p', { class: 'lead' }, 'Patients who shared records with you, and what each allows you to do. Access ends when they stop sharing or when the end date passes.'));
  const box = main.appendChild(h('div', { id: 'patients' }, h('p', { class: 'hint' }, 'Loading…')));
  let groups;
  try {
    groups = await myGrants(ctx);
  } catch (e) {
    ctx.report(box, e, 'The list of patients could not be read.');
    return;
  }
  if (ctx.stale()) return;
  if (!groups.length) { clear(box, h('section', { class: 'card' }, h('p', null, 'No patient has shared records with you yet.'))); return; }
  clear(box);
  for (const g of groups) {
    // The patient's name, when they shared their personal details.
    const details = g.grants.some((x) => /^(Patient|\*)\./.test(x.scope) && can(x.scope, 'r'));
    if (g.patientRef) {
      // Only when shared: a refused read shows in the patient's activity.
      const p = details ? await ctx.fhir.get(g.patientRef).catch(() => null) : null;
      if (p) g.name = humanName(p.name);
    } else if (g.wallet && details) {
      const found = await ctx.fhir.search(`Patient?identifier=${encodeURIComponent(`${CAIP10}|eip155:${g.chainId}:${g.wallet},${CAIP10}|eip155:${g.chainId}:${g.wallet.toLowerCase()}`)}`).catch(() => []);
      if (found[0]) { g.patientRef = `Patient/${found[0].id}`; g.name = humanName(found[0].name); }
    }
    const title = g.name || (g.wallet ? `Patient with wallet ${shortHex(g.wallet, 4)}` : g.patientRef);
    const out = h('div', { class: 'records', 'aria-live': 'polite' });
    const grants = h('ul', { class: 'grants' }, g.grants.map((x) => {
      const w = consent.scopeWords(x.scope);
      w.what = w.what.replace(/^My personal details$/, 'Personal details'); // the patient's words, seen by the doctor
      const type = x.scope.split('.')[0];
      const open = can(x.scope, 'r') || can(x.scope, 's') ? button(`Open ${w.what.toLowerCase()}`, () => busy(open, () => openRecords(ctx, g, type, x.scope, out)), { class: 'btn btn-small' }) : null;
      // A grant of create on test reports lets the doctor add one for the patient.
      const add = type === 'DiagnosticReport' && can(x.scope, 'c') ? button('Upload a test report', () => busy(add, () => uploadFor(ctx, g, x.scope, out)), { class: 'btn btn-small btn-primary' }) : null;
      return h('li', { class: 'grant' }, h('span', null, h('strong', null, w.what), `: ${w.can}`, x.expiry < MAX_UINT64 ? `, until ${fmtDate(new Date(Number(x.expiry) * 1000).toISOString())}` : ''), open, add);
    }));
    box.append(h('section', { class: 'card patient-card' }, h('h2', null, title), grants, out));
  }
}

async function openRecords(ctx, g, type, scope, out, fhir = ctx.fhir) {
  clear(out, h('p', { class: 'hint' }, 'Loading…'));
  try {
    // A grant just made may not be recorded by the gateway yet.
    if (!g.patientRef && g.wallet) g.patientRef = (await patientRefs(ctx).catch(() => new Map())).get(g.wallet.toLowerCase());
    const list = await fhir.search(`${type}?${patientQuery(g)}&_count=50`);
    if (!list.length && !g.patientRef) { clear(out, h('p', null, 'The gateway is still recording what this patient shared with you. Try again in a few seconds.')); return; }
    if (!list.length) { clear(out, h('p', null, `No ${consent.typeLabel(type).toLowerCase()} for this patient.`)); return; }
    if (type === 'DiagnosticReport') {
      clear(out, h('h3', null, 'Test reports'), h('ul', { class: 'items' }, list.map((r) => reportItem(r, [openButton(r, fhir), can(scope, 'u') ? editButton(ctx, r, out, g, scope, fhir) : null]))));
    } else {
      clear(out, h('h3', null, consent.typeLabel(type)), h('ul', { class: 'items' }, list.map((r) => h('li', { class: 'item' }, h('div', { class: 'item-main' },
        h('p', { class: 'item-title' }, summary(r)), h('p', { class: 'hint' }, `${r.resourceType} · updated ${fmtDateTime(r.meta?.lastUpdated)}`))))));
    }
  } catch (e) {
    // A record not shared with you is answered as if it did not exist (404).
    ctx.report(out, e.status === 403 || e.status === 404 ? { friendly: 'The patient no longer shares these records with you.', detail: e.detail } : e);
  }
}

function summary(r) {
  switch (r.resourceType) {
    case 'Appointment': return `${r.start ? fmtDateTime(r.start) : 'No date'} · ${r.status}${r.description ? ` · ${r.description}` : ''}`;
    case 'Patient': return `${humanName(r.name)}${r.birthDate ? `, born ${fmtDate(r.birthDate)}` : ''}`;
    case 'MedicationRequest': return r.medicationCodeableConcept?.text || r.medicationCodeableConcept?.coding?.[0]?.display || 'Prescription';
    default: return r.code?.text || r.code?.coding?.[0]?.display || r.resourceType;
  }
}

/** openButton reads the report again (the patient may have stopped sharing it since the list was shown). */
function openButton(r, fhir) {
  const b = button('Open report', () => busy(b, async () => {
    const li = b.closest('li');
    li.querySelector('.report-open')?.remove();
    const box = li.appendChild(h('div', { class: 'report-open', 'aria-live': 'polite' }));
    try {
      const cur = await fhir.get(`DiagnosticReport/${r.id}`);
      clear(box, h('p', null, h('strong', null, cur.code?.text || 'Test report'), cur.effectiveDateTime ? `, test date ${fmtDate(cur.effectiveDateTime)}` : ''),
        cur.conclusion ? h('p', { class: 'conclusion' }, cur.conclusion) : null,
        h('p', { class: 'hint' }, `Last changed ${fmtDateTime(cur.meta?.lastUpdated)}.`));
    } catch (e) {
      // Not shared with you any more: answered as if it did not exist (404).
      clear(box, notice('error', e.status === 403 || e.status === 404
        ? 'This report no longer opens: the patient stopped sharing it with you.'
        : (e.friendly || e.message)));
    }
  }), { class: 'btn btn-small' });
  return b;
}

/** uploadFor shows the upload form of a test report for the patient g in out. */
async function uploadFor(ctx, g, scope, out) {
  if (!g.patientRef && g.wallet) g.patientRef = (await patientRefs(ctx).catch(() => new Map())).get(g.wallet.toLowerCase());
  if (!g.patientRef) { clear(out, notice('info', 'The gateway is still recording what this patient shared with you. Try again in a few seconds.')); return; }
  const form = reportForm({
    subject: g.patientRef,
    token: ctx.session.token,
    idPrefix: 'doc-rep',
    category: 'Uploaded by the practitioner',
    submitLabel: 'Upload for the patient',
    failWords: (e) => (e.status === 403 || e.status === 404 ? 'The patient no longer lets you add test reports. They can share test reports with you again with "View and edit".' : null),
    onDone: async () => {
      const ok = out.querySelector('.notice-ok')?.textContent || 'The report was uploaded.';
      await openRecords(ctx, g, 'DiagnosticReport', scope, out);
      out.prepend(notice('ok', `${ok} The patient sees it in their reports.`));
    },
  });
  clear(out, h('section', { class: 'upload-for' }, h('h3', null, 'Upload a test report for this patient'),
    h('p', { class: 'hint' }, 'The patient sees it in their reports, and the upload is in their activity log.'), form.el));
  form.focus();
}

function editButton(ctx, r, out, g, scope, fhir) {
  const b = button('Add a note', () => {
    const text = h('textarea', { id: `edit-${r.id}`, rows: 3, maxlength: 4000 }, r.conclusion || '');
    text.value = r.conclusion || '';
    const msg = h('div', { 'aria-live': 'polite' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Save');
    const form = h('form', { class: 'form inline-form' }, field('Conclusion', text, 'The patient sees this text and the change is logged.'), h('div', { class: 'actions' }, save, button('Cancel', () => form.remove(), { class: 'btn btn-small btn-quiet' })), msg);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(save, async () => {
        try {
          const cur = await fhir.get(`DiagnosticReport/${r.id}`);
          cur.conclusion = text.value.trim() || undefined;
          if (!cur.conclusion) delete cur.conclusion;
          await fhir.update(cur, cur.meta?.versionId);
          await openRecords(ctx, g, 'DiagnosticReport', scope, out, fhir);
        } catch (err) {
          if (err.status === 403 || err.status === 404) ctx.report(msg, { friendly: 'You may no longer change this report: the patient no longer shares it with you.', detail: err.detail });
          else ctx.report(msg, err, 'The change could not be saved.');
        }
      });
    });
    b.closest('li').append(form);
    text.focus();
  }, { class: 'btn btn-small' });
  return b;
}

/** asciiHeader keeps a reason sendable as an HTTP header (printable ASCII). */
export function asciiHeader(s) {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^\x20-\x7e]/g, '?').trim();
}

async function renderEmergency(main, ctx) {
  main.append(h('h1', null, 'Emergency access'));
  main.append(notice('warn', h('strong', null, 'Break the glass only in an emergency. '),
    'You will see records the patient has not shared with you. Every access is logged as a security alert with your reason, shown to the patient and to regulators.'));
  const reason = h('textarea', { id: 'btg-reason', rows: 3, maxlength: 300, required: true, placeholder: 'e.g. Unconscious patient in the emergency room, allergies needed' });
  const name = h('input', { type: 'search', id: 'btg-name', required: true, placeholder: 'Family name' });
  const msg = h('div', { 'aria-live': 'polite' });
  const results = h('div', { id: 'btg-results', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-danger', id: 'btg-search' }, 'Break the glass and search');
  const form = h('form', { class: 'form', novalidate: true },
    field('Reason (required)', reason, 'Say why this is an emergency. At least 10 characters.'),
    field('Patient name', name),
    h('div', { class: 'actions' }, submit), msg);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clear(msg);
      clear(results);
      const why = asciiHeader(reason.value);
      if (why.length < 10) { clear(msg, notice('error', 'Write the reason for the emergency access (at least 10 characters).')); reason.focus(); return; }
      if (!name.value.trim()) { clear(msg, notice('error', 'Enter the patient\'s name.')); name.focus(); return; }
      const fhir = new FHIR(ctx.session.token, { 'X-Break-Glass': why });
      try {
        const list = await fhir.searchPost('Patient', { name: name.value.trim(), _count: '20' });
        if (!list.length) { clear(results, notice('info', 'No patient found with this name.')); return; }
        clear(results, h('ul', { class: 'items' }, list.map((p) => {
          const out = h('div', { class: 'records', 'aria-live': 'polite' });
          const g = { patientRef: `Patient/${p.id}` };
          const open = button('Open test reports', () => busy(open, () => openRecords(ctx, g, 'DiagnosticReport', 'DiagnosticReport.rs', out, fhir)), { class: 'btn btn-small btn-danger' });
          return h('li', { class: 'item item-col' },
            h('p', { class: 'item-title' }, humanName(p.name) || 'Unnamed patient', p.birthDate ? ` · born ${fmtDate(p.birthDate)}` : '', ' ', badge('alert', 'Emergency access')),
            h('div', { class: 'item-actions' }, open), out);
        })));
      } catch (err) {
        ctx.report(msg, err, err instanceof ApiError && err.status === 403 ? 'Emergency access was refused.' : '');
      }
    });
  });
  main.append(section('Find the patient', form), results);
}

// ------------------------------------------------------------ my account

async function renderAccount(main, ctx) {
  main.append(h('h1', null, 'My account'));
  main.append(h('p', { class: 'lead' }, 'How your wallet came to speak for your practitioner record, and what the clinic\'s administrators did with your account since.'));
  const box = main.appendChild(h('div', { id: 'account-history' }, h('p', { class: 'hint' }, 'Loading…')));
  let requests;
  try {
    ({ requests = [] } = await registration.mine(ctx.session.token));
  } catch (e) {
    clear(box, notice('error', refusal(e, 'list')));
    return;
  }
  if (ctx.stale()) return;
  if (!requests.length) {
    clear(box, h('section', { class: 'card' }, h('p', null, 'Your record was set up by the clinic directly, not through a registration from this wallet: there is no registration to show.')));
    return;
  }
  clear(box, requests.map((r) => {
    const [k, t] = statusWords(r);
    return h('section', { class: 'card', dataset: { status: r.status } },
      h('h2', null, `${KIND_WORDS[r.kind] || r.kind} registration, sent ${fmtDateTime(r.submitted)} `, badge(k, t)),
      r.status === 'rejected' && r.reason ? h('p', null, `Not accepted: ${r.reason}`) : null,
      h('h3', null, 'History'), historyList(r),
      h('details', null, h('summary', null, 'What you told the clinic'), assertedList(r)));
  }));
}
