// The administrator's pages: the queue of registration requests (verify:
// create or link the record; reject with a reason the person sees), the
// practitioners (deactivate with a reason, reactivate), and how to give a
// person who lost their wallet their record back. Every action is an
// AuditEvent on the gateway; the page says each outcome in words.
import { h, clear, field, notice, complain, badge, button, busy, fmtDateTime, shortHex, uid } from './ui.js';
import { registration, refusal, statusWords, assertedList, historyList, personName, outcome as tell, KIND_WORDS } from './register.js';

export const adminPages = {
  requests: { title: 'Requests', render: renderRequests },
  practitioners: { title: 'Practitioners', render: renderPractitioners },
  lostwallet: { title: 'Lost wallet', render: renderLostWallet },
};

const section = (title, ...content) => h('section', { class: 'card' }, h('h2', null, title), ...content);
const walletWords = (w) => (w ? shortHex(w.split(':').pop(), 4) : 'no wallet');

// ------------------------------------------------------------- requests

const STATUS_FILTER = [
  ['pending', 'Waiting for a decision'], ['verified', 'Verified'], ['rejected', 'Not accepted'], ['withdrawn', 'Withdrawn'],
];

async function renderRequests(main, ctx) {
  main.append(h('h1', null, 'Requests'));
  main.append(h('p', { class: 'lead' }, 'People who signed in with a wallet the gateway does not know, asking to be registered. Check each one against the clinic\'s own files before you verify it: verifying links the wallet to a record, and the person then signs in as that patient or practitioner.'));
  const status = h('select', { id: 'queue-status' }, STATUS_FILTER.map(([v, t]) => h('option', { value: v }, t)));
  const kind = h('select', { id: 'queue-kind' }, h('option', { value: '' }, 'Patients and practitioners'), h('option', { value: 'patient' }, 'Patients'), h('option', { value: 'practitioner' }, 'Practitioners'));
  const outcome = h('div', { id: 'queue-outcome', 'aria-live': 'polite' });
  const list = h('div', { id: 'queue' }, h('p', { class: 'hint' }, 'Loading…'));
  const more = h('div');
  let practitioners = null; // loaded once, for "replaces a lost wallet of"
  const practitionerList = async () => {
    if (!practitioners) practitioners = (await registration.practitioners(ctx.session.token)).practitioners || [];
    return practitioners;
  };

  const load = async (cursor = '') => {
    let res;
    try {
      res = await registration.queue(ctx.session.token, { status: status.value, kind: kind.value, cursor });
    } catch (e) {
      clear(list, notice('error', refusal(e, 'list')));
      return;
    }
    if (ctx.stale()) return;
    const reqs = res.requests || [];
    if (!cursor) clear(list);
    if (!reqs.length && !cursor) {
      list.append(h('p', { id: 'queue-empty' }, status.value === 'pending' ? 'No request is waiting. Requests appear here when someone registers.' : 'No request in this list.'));
    } else {
      let ul = list.querySelector('ul.items');
      if (!ul) ul = list.appendChild(h('ul', { class: 'items' }));
      for (const r of reqs) ul.append(requestItem(ctx, r, outcome, () => load(), practitionerList));
    }
    clear(more, res.next ? button('Show more', () => busy(more.firstChild, () => load(res.next)), { class: 'btn' }) : null);
  };
  const show = button('Show', () => busy(show, () => { clear(outcome); return load(); }), { class: 'btn', id: 'queue-show' });
  main.append(
    h('div', { class: 'filters' }, field('Show', status), field('Who', kind), show),
    outcome, section('Requests', list, more));
  await load();
}

function requestItem(ctx, r, outcome, reload, practitionerList) {
  const name = personName(r.asserted?.name) || 'Someone';
  const [k, t] = statusWords(r);
  const li = h('li', { class: 'item item-col reg-item', dataset: { kind: r.kind, status: r.status } },
    h('p', { class: 'item-title' }, badge('info', KIND_WORDS[r.kind] || r.kind), ' ', h('span', { class: 'reg-name' }, name), ' ', badge(k, t)),
    h('p', { class: 'hint' }, `Sent ${fmtDateTime(r.submitted)} from wallet ${walletWords(r.wallet)}.`, r.record ? ` Record: ${r.record}.` : ''),
    assertedList(r),
    r.status !== 'pending' ? historyList(r) : null);
  if (r.status === 'pending') li.append(decision(ctx, r, name, outcome, reload, practitionerList));
  return li;
}

/** decision is the verify / reject form of one pending request. */
function decision(ctx, r, name, outcome, reload, practitionerList) {
  const p = uid('dec');
  const msg = h('div', { 'aria-live': 'polite' });
  const radio = (value, label, checked) => {
    const id = `${p}-${value}`;
    return h('div', { class: 'choice' }, h('input', { type: 'radio', name: `${p}-how`, id, value, checked }), h('label', { for: id }, label));
  };
  let how, body;
  if (r.kind === 'patient') {
    const number = h('input', { type: 'text', id: `${p}-number`, class: 'clinic-number', maxlength: 64, autocomplete: 'off' });
    const system = h('input', { type: 'text', id: `${p}-system`, maxlength: 200, autocomplete: 'off', placeholder: 'urn:example:mrn' });
    const replace = h('input', { type: 'checkbox', id: `${p}-replace`, class: 'replace-wallet' });
    const linkBox = h('div', { class: 'reveal', hidden: true });
    how = h('fieldset', { class: 'choices' }, h('legend', null, 'Which record?'),
      radio('new', 'Create a new record (the person is new to the clinic)', true),
      radio('link', 'Link to the clinic\'s record', false),
      linkBox);
    linkBox.append(
      field('Record number, from the clinic\'s own files', number, r.asserted?.clinicNumber
        ? `The person wrote "${r.asserted.clinicNumber}": do not copy it, look the person up in the clinic's files and type the number you find there. The record's date of birth must match the request's.`
        : 'Look the person up in the clinic\'s files and type the number you find there. The record\'s date of birth must match the request\'s.'),
      field('Number system (optional)', system, 'Only if the clinic keeps several kinds of numbers.'),
      h('div', { class: 'choice' }, replace, h('label', { for: replace.id }, 'This record\'s wallet was lost: replace it with this one')));
    how.addEventListener('change', () => { linkBox.hidden = how.querySelector('input[type=radio]:checked').value !== 'link'; });
    body = () => {
      if (how.querySelector('input:checked').value === 'new') return { what: 'new', body: {} };
      if (!number.value.trim()) { number.focus(); return 'Type the record number from the clinic\'s files, or choose "Create a new record".'; }
      const b = { clinicNumber: number.value.trim(), replaceWallet: replace.checked };
      if (system.value.trim()) b.clinicSystem = system.value.trim();
      return { what: 'link', body: b };
    };
  } else {
    const select = h('select', { id: `${p}-replaces`, class: 'replaces' }, h('option', { value: '' }, 'Choose the practitioner…'));
    const loadList = async () => {
      if (select.options.length > 1) return;
      try {
        for (const x of await practitionerList()) select.append(h('option', { value: x.record }, `${x.name || x.record}${x.active ? '' : ' (deactivated)'} · wallet ${walletWords(x.wallet)}`));
      } catch (e) {
        clear(msg, notice('error', refusal(e, 'list')));
      }
    };
    const replaceBox = h('div', { class: 'reveal', hidden: true },
      field('Practitioner whose wallet was lost', select, 'Their old wallet stops working at once and this one signs in instead.'));
    how = h('fieldset', { class: 'choices' }, h('legend', null, 'Which record?'),
      radio('new', 'Create the record (a practitioner new to this gateway)', true),
      radio('replace', 'This replaces a lost wallet of:', false),
      replaceBox);
    how.addEventListener('change', (e) => {
      if (e.target.type !== 'radio') return;
      replaceBox.hidden = e.target.value !== 'replace';
      if (!replaceBox.hidden) loadList();
    });
    body = () => {
      if (how.querySelector('input:checked').value === 'new') return { what: 'new', body: {} };
      if (!select.value) { select.focus(); return 'Choose the practitioner whose wallet this one replaces, or choose "Create the record".'; }
      return { what: 'replace', body: { record: select.value, replaceWallet: true }, label: select.selectedOptions[0].textContent.split(' · ')[0] };
    };
  }
  const verify = button('Verify', () => busy(verify, async () => {
    clear(msg);
    const b = body(); // a complaint has put the focus on the field to correct
    if (typeof b === 'string') {
      const f = document.activeElement;
      if (f?.matches('input, select, textarea')) complain(msg, f, b);
      else clear(msg, notice('error', b));
      return;
    }
    try {
      await registration.verify(ctx.session.token, r.id, b.body);
      const words = r.kind === 'patient'
        ? (b.what === 'new' ? `Verified: a new record was created for ${name}. They can sign in again now to see it.`
          : `Verified: ${name}'s wallet is now linked to the clinic's record ${b.body.clinicNumber}${b.body.replaceWallet ? ' (the lost wallet no longer works)' : ''}. They can sign in again now.`)
        : (b.what === 'new' ? `Verified: ${name} is now a practitioner on this gateway and can sign in again. Patients can now share records with them.`
          : `Verified: the new wallet now signs in to ${b.label}'s record; the lost wallet no longer works.`);
      await reload();
      tell(outcome, 'ok', words);
    } catch (e) {
      clear(msg, notice('error', refusal(e, 'verify')));
    }
  }), { class: 'btn btn-primary verify' });
  const reason = h('textarea', { id: `${p}-reason`, class: 'reject-reason', rows: 2, maxlength: 500 });
  const reject = button('Reject', () => busy(reject, async () => {
    clear(msg);
    if (reason.value.trim().length < 3) { complain(msg, reason, 'Write the reason: the person sees it and can correct their request.'); return; }
    try {
      const why = reason.value.trim();
      await registration.reject(ctx.session.token, r.id, why);
      await reload();
      tell(outcome, 'ok', `Not accepted: ${name}'s request was rejected. They see your reason: "${why}".`);
    } catch (e) {
      clear(msg, notice('error', refusal(e, 'reject')));
    }
  }), { class: 'btn btn-danger reject' });
  return h('div', { class: 'reg-decision' },
    h('div', { class: 'reg-verify' }, h('h3', null, 'Verify'), how, h('div', { class: 'actions' }, verify)),
    h('div', { class: 'reg-reject' }, h('h3', null, 'Or do not accept'),
      field('Reason (the person sees it)', reason, 'For example: "We could not find you in our files: please call the clinic."'),
      h('div', { class: 'actions' }, reject)),
    msg);
}

// -------------------------------------------------------- practitioners

async function renderPractitioners(main, ctx) {
  main.append(h('h1', null, 'Practitioners'));
  main.append(h('p', { class: 'lead' }, 'Everyone who signs in as a practitioner. Deactivating one ends their sessions within a second: what patients shared with them opens nothing until you reactivate them.'));
  const outcome = h('div', { id: 'pract-outcome', 'aria-live': 'polite' });
  const box = h('div', { id: 'practitioners' }, h('p', { class: 'hint' }, 'Loading…'));
  const more = h('div');
  main.append(outcome, section('Practitioners', box, more));
  const load = async (cursor = '') => {
    let res;
    try {
      res = await registration.practitioners(ctx.session.token, cursor);
    } catch (e) {
      clear(box, notice('error', refusal(e, 'list')));
      return;
    }
    if (ctx.stale()) return;
    const list = res.practitioners || [];
    if (!cursor) clear(box);
    if (!list.length && !cursor) { box.append(h('p', null, 'No practitioner yet. They appear here once you verify their request.')); return; }
    let ul = box.querySelector('ul.items');
    if (!ul) ul = box.appendChild(h('ul', { class: 'items' }));
    for (const x of list) ul.append(practitionerItem(ctx, x, outcome, () => load()));
    clear(more, res.next ? button('Show more', () => busy(more.firstChild, () => load(res.next)), { class: 'btn' }) : null);
  };
  await load();
}

function practitionerItem(ctx, x, outcome, reload) {
  const name = x.name || 'Unnamed practitioner';
  const actions = h('div', { class: 'item-actions' });
  const li = h('li', { class: 'item item-col pract-item', dataset: { active: x.active ? 'yes' : 'no' } },
    h('p', { class: 'item-title' }, h('span', { class: 'pract-name' }, name), ' ', x.active ? badge('ok', 'Active') : badge('muted', 'Deactivated')),
    h('p', { class: 'hint' }, x.wallet ? `Wallet ${walletWords(x.wallet)}` : 'No wallet linked: this record signs nobody in.'),
    actions);
  const act = x.active ? 'deactivate' : 'reactivate';
  const open = button(x.active ? 'Deactivate' : 'Reactivate', () => {
    const reason = h('textarea', { id: uid('why'), rows: 2, maxlength: 500, class: 'pract-reason' });
    const msg = h('div', { 'aria-live': 'polite' });
    const go = button(x.active ? `Deactivate ${name}` : `Reactivate ${name}`, () => busy(go, async () => {
      if (reason.value.trim().length < 3) { complain(msg, reason, 'Write the reason: it is kept in the audit trail and the practitioner sees it.'); return; }
      try {
        await registration[act](ctx.session.token, x.record, reason.value.trim());
        await reload();
        tell(outcome, 'ok', x.active
          ? `${name} is deactivated: their sessions have ended, and what patients shared with them opens nothing until you reactivate them.`
          : `${name} is active again and can sign in.`);
      } catch (e) {
        clear(msg, notice('error', refusal(e, act)));
      }
    }), { class: x.active ? 'btn btn-danger pract-confirm' : 'btn btn-primary pract-confirm' });
    const close = () => { clear(actions, open); open.focus(); };
    const cancel = button('Cancel', close, { class: 'btn btn-quiet' });
    actions.addEventListener('keydown', (e) => { if (e.key === 'Escape' && actions.contains(cancel)) { e.preventDefault(); close(); } });
    clear(actions, h('div', { class: 'form inline-form' },
      field(x.active ? 'Why deactivate? (required)' : 'Why reactivate? (required)', reason, 'Kept in the audit trail; the practitioner sees it on their account page.'),
      h('div', { class: 'actions' }, go, cancel), msg));
    reason.focus();
  }, { class: x.active ? 'btn btn-small btn-danger' : 'btn btn-small', 'aria-label': `${x.active ? 'Deactivate' : 'Reactivate'} ${name}` });
  actions.append(open);
  return li;
}

// ---------------------------------------------------------- lost wallet

async function renderLostWallet(main) {
  main.append(h('h1', null, 'When someone loses their wallet'));
  main.append(h('p', { class: 'lead' }, 'A wallet is the person\'s key: if they lose it (a lost phone, a forgotten recovery phrase), nobody can recover it, not even the gateway. Their record is not lost: you link a new wallet to it.'));
  main.append(
    section('What the person does',
      h('ol', { class: 'steps' },
        h('li', null, 'They create a new wallet (for example in MetaMask) and open this portal.'),
        h('li', null, 'They sign in with the new wallet. The portal does not know it, so it offers to register.'),
        h('li', null, 'They register again as a patient or a practitioner, with the same details as before. A patient writes their clinic record number if they know it.'))),
    section('What you do',
      h('ol', { class: 'steps' },
        h('li', null, 'Make sure it is really the same person: call them, or see them at the desk, as the clinic does for any change of details. Someone who stole the old details must not get the record.'),
        h('li', null, 'Open ', h('a', { href: '#requests' }, 'Requests'), ' and find the new request.'),
        h('li', null, 'For a patient: choose "Link to the clinic\'s record", type the record number from the clinic\'s files, and tick "This record\'s wallet was lost: replace it with this one".'),
        h('li', null, 'For a practitioner: choose "This replaces a lost wallet of:" and pick them in the list.'),
        h('li', null, 'Verify. The old wallet stops working at once (its sessions end within a second), and the new one signs in to the same record.'))),
    section('What stays and what changes',
      h('ul', null,
        h('li', null, 'The record, its history and its activity log stay as they were.'),
        h('li', null, 'A patient\'s sharing choices were signed by the old wallet: they stop counting when it is replaced. The patient shares again, from the new wallet, what they want to share.'),
        h('li', null, 'What patients shared with a practitioner names the practitioner\'s record, not their wallet: it keeps counting with the new wallet.'),
        h('li', null, 'Every step is an entry in the audit trail, shown to the person on their activity or account page.'))));
}
