// Registration: the gateway's registration API (/registration), the pages
// of a wallet linked to no record yet (the applicant: "Register" and "Your
// request"), and the words every refusal of these flows is shown in. A
// request asks an administrator to create or link the person's record; it
// gives the wallet nothing until the administrator verifies it.
import { h, clear, field, notice, complain, badge, button, busy, fmtDateTime, fmtDate, uid } from './ui.js';
import { request, ApiError } from './api.js';

// ------------------------------------------------------------------ API

const call = (path, token, opts = {}) => request(path, { token, contentType: 'application/json', ...opts });

export const registration = {
  submit: (token, body) => call('/registration', token, { method: 'POST', body }),
  mine: (token) => call('/registration/mine', token),
  withdraw: (token, id) => call(`/registration/${encodeURIComponent(id)}/withdraw`, token, { method: 'POST', body: {} }),
  queue: (token, { status = 'pending', kind = '', cursor = '' } = {}) => {
    const q = new URLSearchParams({ status, _count: '50' });
    if (kind) q.set('kind', kind);
    if (cursor) q.set('cursor', cursor);
    return call(`/registration?${q}`, token);
  },
  verify: (token, id, body = {}) => call(`/registration/${encodeURIComponent(id)}/verify`, token, { method: 'POST', body }),
  reject: (token, id, reason) => call(`/registration/${encodeURIComponent(id)}/reject`, token, { method: 'POST', body: { reason } }),
  deactivate: (token, record, reason) => call('/registration/deactivate', token, { method: 'POST', body: { record, reason } }),
  reactivate: (token, record, reason) => call('/registration/reactivate', token, { method: 'POST', body: { record, reason } }),
  practitioners: (token, cursor = '') => call(`/registration/practitioners${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`, token),
};

/**
 * refusal turns a refused registration request into a sentence a patient
 * understands (what happened and what to do), from its status and the
 * server's own words. action: submit | withdraw | verify | reject |
 * deactivate | reactivate | list.
 */
export function refusal(err, action) {
  if (!(err instanceof ApiError)) return err?.friendly || err?.message || String(err);
  const d = (err.detail || '').toLowerCase();
  switch (err.status) {
    case 0: return err.friendly;
    case 401: return 'Your session has ended. Please sign in again.';
    case 400:
      return `Some of the information could not be accepted${err.detail ? `: ${err.detail}` : ''}. Correct it and send again.`;
    case 403:
      if (/already linked|linked to a record/.test(d)) return 'This wallet is already linked to a record, so it cannot ask to be registered again. Sign in again to use your record.';
      if (action === 'withdraw') return 'Only the person who sent a request can withdraw it.';
      if (/administrator|admin/.test(d) || ['verify', 'reject', 'deactivate', 'reactivate', 'list'].includes(action)) return 'Only an administrator of this gateway may do this.';
      return 'This wallet may not do this.';
    case 404: return 'This request or record was not found. It may have been handled already: reload the page.';
    case 409:
      if (/someone else/.test(d)) return 'Someone else is changing this request right now. Try again in a moment.';
      if (action === 'submit') return 'You already have a request waiting. Withdraw it first if you want to send a new one.';
      if (/linked to another record/.test(d)) return 'This person\'s wallet is already linked to another record, and a wallet speaks for one person only. Check that you chose the right request.';
      if (/wallet/.test(d) && action === 'verify') return 'That record is already linked to another wallet. If the person lost that wallet, tick "replaces a lost wallet" and verify again.';
      if (/not pending|already|handled|verified|rejected|withdrawn/.test(d)) return 'This request was already handled (verified, not accepted or withdrawn). Reload the page to see its state.';
      return `This could not be done now${err.detail ? `: ${err.detail}` : ''}. Reload the page and try again.`;
    case 422:
      if (/no such practitioner/.test(d)) return 'That practitioner\'s record no longer exists. Reload the page and choose again.';
      if (action === 'verify') return 'No single record has that record number and the birth date in the request. Check the number in the clinic\'s own files.';
      return `This could not be done${err.detail ? `: ${err.detail}` : ''}.`;
    case 429:
      if (/waiting/.test(d)) return 'The clinic has too many requests waiting to be checked. Please try again later, or contact the clinic.';
      return 'This wallet has sent too many registration requests. Ask the clinic to help you register.';
  }
  return err.friendly;
}

/**
 * outcome shows what an action did in box and moves the focus there: the
 * list the action came from is redrawn, and the focus must not fall back
 * to the top of the page.
 */
export function outcome(box, kind, ...content) {
  const n = notice(kind, ...content);
  n.tabIndex = -1;
  clear(box, n);
  n.focus();
  return n;
}

// ------------------------------------------------------------- words

export const KIND_WORDS = { patient: 'Patient', practitioner: 'Practitioner' };

/** statusWords is a request's state as the person sees it: [badge kind, badge text, sentence]. */
export function statusWords(r) {
  switch (r.status) {
    case 'pending': return ['pending', 'Waiting', 'Waiting for the clinic to check your details.'];
    case 'verified': return ['ok', 'Verified', 'Verified: sign in again to start.'];
    case 'rejected': return ['error', 'Not accepted', `Not accepted: ${sentence(r.reason || 'no reason was given')}`];
    case 'withdrawn': return ['muted', 'Withdrawn', 'Withdrawn.'];
  }
  return ['info', r.status, r.status];
}

/** sentence ends s with a full stop unless it already ends a sentence. */
const sentence = (s) => (/[.!?]["')]?\s*$/.test(s) ? s.trim() : `${s.trim()}.`);

const ACTION_WORDS = {
  submitted: 'Request sent', withdrawn: 'Withdrawn', verified: 'Verified', rejected: 'Not accepted',
  deactivated: 'Account deactivated', reactivated: 'Account reactivated', 'wallet-replaced': 'Wallet replaced',
};

const BY_WORDS = { you: 'by you', 'an administrator': 'by an administrator', 'an identity-linking system': 'by the clinic\'s records system' };

/** historyList shows what happened to a request, oldest first. */
export function historyList(r) {
  const items = (r.history || []).slice().sort((a, b) => String(a.at).localeCompare(String(b.at)));
  if (!items.length) return null;
  return h('ol', { class: 'reg-history' }, items.map((e) => h('li', { dataset: { action: e.action } },
    h('strong', null, ACTION_WORDS[e.action] || e.action), ' ',
    BY_WORDS[e.by] || (e.by ? `by ${e.by}` : ''), ', ', h('time', { datetime: e.at }, fmtDateTime(e.at)),
    e.reason ? h('span', { class: 'reg-reason' }, ` — "${e.reason}"`) : null)));
}

/** assertedList shows what a request asserts, as a description list. */
export function assertedList(r) {
  const a = r.asserted || {};
  const rows = [];
  const add = (k, v) => { if (v) rows.push(h('div', { class: 'kv-row' }, h('dt', null, k), h('dd', null, v))); };
  add('Name', personName(a.name));
  if (r.kind === 'patient') {
    add('Date of birth', a.birthDate ? fmtDate(a.birthDate) : '');
    add('Email', a.email);
    add('Phone', a.phone);
    add('Clinic record number (as the person remembers it)', a.clinicNumber);
  } else {
    add('Qualification', a.qualification);
    add('Specialty', a.specialty);
    add('Licence', a.licence?.value ? `${a.licence.value} (${licenceSystemName(a.licence.system)})` : '');
  }
  return h('dl', { class: 'kv' }, rows);
}

export function personName(n) {
  if (!n) return '';
  if (typeof n === 'string') return n;
  return [n.prefix, n.given, n.family].flat().filter(Boolean).join(' ');
}

// Registers of practitioners' licences: the identifier systems the form
// offers (identifier systems name registers; nothing is loaded from them).
export const LICENCE_SYSTEMS = [
  { system: 'http://hl7.org/fhir/sid/us-npi', name: 'US National Provider Identifier (NPI)' },
  { system: 'https://fhir.hl7.org.uk/Id/gmc-number', name: 'UK General Medical Council (GMC) number' },
  { system: 'https://fhir.hl7.org.uk/Id/nmc-number', name: 'UK Nursing and Midwifery Council (NMC) PIN' },
];

export function licenceSystemName(system) {
  return LICENCE_SYSTEMS.find((s) => s.system === system)?.name || system || 'register not given';
}

// ------------------------------------------------------------ pages

export const applicantPages = {
  register: { title: 'Register', render: renderRegister },
  request: { title: 'Your request', render: renderRequest },
};

/** firstApplicantPage is "request" when the wallet has a request waiting or verified, else "register". */
export async function firstApplicantPage(token) {
  try {
    const { requests = [] } = await registration.mine(token);
    return requests.some((r) => r.status === 'pending' || r.status === 'verified') ? 'request' : 'register';
  } catch {
    return 'register';
  }
}

const section = (title, ...content) => h('section', { class: 'card' }, h('h2', null, title), ...content);

async function renderRegister(main, ctx) {
  main.append(h('h1', null, 'Register'));
  main.append(h('p', { class: 'lead' }, 'This wallet is not linked to a record at this clinic yet. Tell us who you are: someone at the clinic checks your details and links your wallet. Until then, nobody can share records with this wallet and it opens no record.'));
  const msg = main.appendChild(h('div', { 'aria-live': 'polite' }));
  let mine = [];
  try {
    ({ requests: mine = [] } = await registration.mine(ctx.session.token));
  } catch (e) {
    if (ctx.stale()) return;
    clear(msg, notice('error', refusal(e, 'list')));
  }
  if (ctx.stale()) return;
  const open = mine.find((r) => r.status === 'pending' || r.status === 'verified');
  if (open) {
    main.append(notice('info', open.status === 'pending' ? 'You already sent a request: it is waiting for the clinic. ' : 'Your request was verified. ',
      h('a', { href: '#request' }, 'See your request'), '.'));
  }

  const kindName = uid('kind');
  const choice = (value, label, sub) => {
    const id = `kind-${value}`;
    return h('div', { class: 'choice' }, h('input', { type: 'radio', name: kindName, id, value }),
      h('label', { for: id }, h('span', { class: 'choice-name' }, label), h('span', { class: 'choice-sub' }, sub)));
  };
  const kinds = h('fieldset', { class: 'choices', id: 'reg-kind' }, h('legend', null, 'Who are you?'),
    choice('patient', 'I am a patient', 'To see my records, book appointments and choose who sees them.'),
    choice('practitioner', 'I am a practitioner', 'A doctor, nurse or other professional who sees patients at this clinic.'));
  const formBox = h('div', { id: 'reg-form' });
  kinds.addEventListener('change', () => {
    const k = kinds.querySelector('input:checked')?.value;
    // The focus stays on the choice (arrow keys move between the two; the
    // form follows it, next with Tab): moving it into the form would pull
    // a keyboard user out of the group at the first arrow key.
    clear(formBox, k === 'patient' ? patientForm(ctx) : practitionerForm(ctx));
  });
  main.append(section('Ask to be registered', kinds, formBox));
}

const text = (id, attrs = {}) => h('input', { type: 'text', id, maxlength: 100, ...attrs });

function submitForm(ctx, form, submit, msg, body) {
  form.addEventListener('input', () => clear(msg)); // a correction takes the old complaint away
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clear(msg);
      const b = body(); // a complaint has put the focus on the field to correct
      if (typeof b === 'string') {
        const f = document.activeElement;
        if (f !== submit && form.contains(f)) complain(msg, f, b);
        else clear(msg, notice('error', b));
        return;
      }
      try {
        await registration.submit(ctx.session.token, b);
        location.hash = 'request';
      } catch (err) {
        clear(msg, notice('error', refusal(err, 'submit')));
      }
    });
  });
}

function patientForm(ctx) {
  const given = text('reg-given', { autocomplete: 'given-name', required: true });
  const family = text('reg-family', { autocomplete: 'family-name', required: true });
  const birth = h('input', { type: 'date', id: 'reg-birth', required: true, max: new Date().toISOString().slice(0, 10), autocomplete: 'bday' });
  const email = h('input', { type: 'email', id: 'reg-email', maxlength: 200, autocomplete: 'email' });
  const phone = h('input', { type: 'tel', id: 'reg-phone', maxlength: 40, autocomplete: 'tel' });
  const mrn = text('reg-clinic-number', { maxlength: 64 });
  const msg = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'reg-submit' }, 'Send my request');
  const form = h('form', { class: 'form', novalidate: true, id: 'reg-patient' },
    h('div', { class: 'row' }, field('Given name', given), field('Family name', family)),
    field('Date of birth', birth, 'The clinic uses it to find your record.'),
    h('div', { class: 'row' }, field('Email (optional)', email), field('Phone (optional)', phone)),
    field('Your clinic record number, if you know it (optional)', mrn, 'It is on letters from the clinic, for example "MRN-40231". The clinic checks it against its own files: if you do not know it, leave it empty.'),
    h('p', { class: 'hint' }, 'Only the clinic\'s administrators see these details. Nothing is written to the public network.'),
    h('div', { class: 'actions' }, submit), msg);
  submitForm(ctx, form, submit, msg, () => {
    if (!given.value.trim() || !family.value.trim()) { (given.value.trim() ? family : given).focus(); return 'Write your given name and your family name.'; }
    if (!birth.value) { birth.focus(); return 'Enter your date of birth.'; }
    if (!email.value.trim() && !phone.value.trim()) { email.focus(); return 'Give an email address or a phone number, so the clinic can reach you if needed.'; }
    if (email.value.trim() && !email.checkValidity()) { email.focus(); return 'This email address does not look right.'; }
    const b = { kind: 'patient', name: { given: given.value.trim(), family: family.value.trim() }, birthDate: birth.value };
    if (email.value.trim()) b.email = email.value.trim();
    if (phone.value.trim()) b.phone = phone.value.trim();
    if (mrn.value.trim()) b.clinicNumber = mrn.value.trim();
    return b;
  });
  return form;
}

function practitionerForm(ctx) {
  const prefix = h('select', { id: 'reg-prefix' }, ['', 'Dr.', 'Prof.', 'Mx.', 'Ms.', 'Mr.'].map((p) => h('option', { value: p, selected: p === 'Dr.' }, p || '(none)')));
  const given = text('reg-given', { autocomplete: 'given-name', required: true });
  const family = text('reg-family', { autocomplete: 'family-name', required: true });
  const qual = text('reg-qualification', { required: true, placeholder: 'e.g. MD' });
  const spec = text('reg-specialty', { placeholder: 'e.g. Cardiology' });
  const system = h('select', { id: 'reg-licence-system' },
    LICENCE_SYSTEMS.map((s, i) => h('option', { value: s.system, selected: i === 0 }, s.name)),
    h('option', { value: 'other' }, 'Another register (type its identifier system)'));
  const otherSystem = h('input', { type: 'url', id: 'reg-licence-other', maxlength: 200, placeholder: 'e.g. urn:oid:2.16.840.1.113883.4.6' });
  const otherField = field('Identifier system of the register', otherSystem, 'Your regulator publishes it; ask the clinic if you are not sure.');
  otherField.hidden = true;
  system.addEventListener('change', () => { otherField.hidden = system.value !== 'other'; });
  const licence = text('reg-licence', { required: true, maxlength: 64 });
  const msg = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'reg-submit' }, 'Send my request');
  const form = h('form', { class: 'form', novalidate: true, id: 'reg-practitioner' },
    h('div', { class: 'row' }, field('Title', prefix), field('Given name', given), field('Family name', family)),
    h('div', { class: 'row' }, field('Qualification', qual, 'Your degree or title, for example MD, MBBS or RN.'), field('Specialty (optional)', spec, 'Patients find you by it.')),
    field('Licence register', system),
    otherField,
    field('Licence number', licence, 'The administrator checks it in the register before verifying you.'),
    h('div', { class: 'actions' }, submit), msg);
  submitForm(ctx, form, submit, msg, () => {
    if (!given.value.trim() || !family.value.trim()) { (given.value.trim() ? family : given).focus(); return 'Write your given name and your family name.'; }
    if (!qual.value.trim()) { qual.focus(); return 'Write your qualification, for example MD.'; }
    if (!licence.value.trim()) { licence.focus(); return 'Write your licence number.'; }
    const sys = system.value === 'other' ? otherSystem.value.trim() : system.value;
    if (!sys) { otherSystem.focus(); return 'Write the identifier system of your licence register.'; }
    const name = { given: given.value.trim(), family: family.value.trim() };
    if (prefix.value) name.prefix = prefix.value;
    const b = { kind: 'practitioner', name, qualification: qual.value.trim(), licence: { system: sys, value: licence.value.trim() } };
    if (spec.value.trim()) b.specialty = spec.value.trim();
    return b;
  });
  return form;
}

async function renderRequest(main, ctx) {
  main.append(h('h1', null, 'Your request'));
  const msg = main.appendChild(h('div', { 'aria-live': 'polite' }));
  const box = main.appendChild(h('div', { id: 'requests' }, h('p', { class: 'hint' }, 'Loading…')));
  const load = async () => {
    let requests;
    try {
      ({ requests = [] } = await registration.mine(ctx.session.token));
    } catch (e) {
      clear(box, notice('error', refusal(e, 'list')));
      return;
    }
    if (ctx.stale()) return;
    if (!requests.length) {
      clear(box, section('No request yet', h('p', null, 'You have not asked to be registered. ', h('a', { href: '#register' }, 'Register'), '.')));
      return;
    }
    const [current, ...older] = requests;
    clear(box, requestCard(ctx, current, msg, load, true),
      older.length ? section('Earlier requests', h('ul', { class: 'items' }, older.map((r) => {
        const [k, t] = statusWords(r);
        return h('li', { class: 'item item-col' }, h('p', { class: 'item-title' }, `${KIND_WORDS[r.kind] || r.kind}, sent ${fmtDateTime(r.submitted)} `, badge(k, t)), historyList(r));
      }))) : null);
  };
  await load();
}

function requestCard(ctx, r, msg, reload, current) {
  let [k, t, sentence] = statusWords(r);
  const actions = h('div', { class: 'actions' });
  // Verified before this sign-in, yet the wallet signed in linked to
  // nothing: the record has been linked to another wallet since (a lost
  // wallet replaced) or the link removed.
  const verifiedAt = (r.history || []).filter((e) => e.action === 'verified').map((e) => Date.parse(e.at)).pop();
  const unlinked = current && r.status === 'verified' && verifiedAt && ctx.session.signedInAt && verifiedAt < ctx.session.signedInAt - 2000;
  if (unlinked) {
    [k, t, sentence] = ['warn', 'No longer linked', 'This request was verified, but this wallet is no longer linked to your record: the clinic linked your record to another wallet since (for example after a lost wallet). If that is a mistake, call the clinic.'];
  }
  if (r.status === 'pending') {
    const withdraw = button('Withdraw my request', () => {
      // An inline confirmation: keyboard and screen readers reach it like the rest of the page.
      const yes = button('Yes, withdraw it', () => busy(yes, async () => {
        try {
          await registration.withdraw(ctx.session.token, r.id);
          await reload();
          outcome(msg, 'ok', 'Your request is withdrawn. You can send a new one from the Register page.');
        } catch (e) {
          clear(msg, notice('error', refusal(e, 'withdraw')));
        }
      }), { class: 'btn btn-danger', id: 'withdraw-yes' });
      const close = () => { clear(actions, withdraw, refresh); withdraw.focus(); };
      const no = button('Keep it', close, { class: 'btn btn-quiet', id: 'withdraw-no' });
      const ask = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Withdraw your request?' }, 'Withdraw this request? The clinic will not see it any more. ', yes, ' ', no);
      // "Keep it" has the focus and Escape keeps it too, as for cancelling an appointment.
      ask.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); close(); } });
      clear(actions, ask);
      no.focus();
    }, { class: 'btn btn-danger', id: 'withdraw' });
    // The card is redrawn: the focus goes to the request's state (read out), not to the page.
    const refresh = button('Check again', () => busy(refresh, async () => {
      await reload();
      document.querySelector('#request-current .reg-status')?.focus();
    }), { class: 'btn', id: 'request-refresh' });
    actions.append(withdraw, refresh);
  } else if (r.status === 'verified' && current && !unlinked) {
    actions.append(button('Sign in again', () => ctx.signInAgain(), { class: 'btn btn-primary', id: 'signin-again' }));
  } else if (r.status === 'rejected' || r.status === 'withdrawn' || unlinked) {
    actions.append(h('a', { href: '#register', class: 'btn' }, 'Send a new request'));
  }
  return h('section', { class: 'card reg-request', id: 'request-current', dataset: { status: r.status } },
    h('h2', null, `${KIND_WORDS[r.kind] || r.kind}: ${personName(r.asserted?.name)}`),
    h('p', { class: 'reg-status', role: 'status', tabindex: -1 }, badge(k, t), ' ', h('span', { id: 'request-status' }, sentence)),
    r.status === 'verified' && !unlinked ? h('p', null, 'Your wallet is now linked to your record. Sign in again: the portal then opens your pages.') : null,
    h('p', { class: 'hint' }, `Sent ${fmtDateTime(r.submitted)}.`),
    h('h3', null, 'What you told us'), assertedList(r),
    h('h3', null, 'What happened'), historyList(r),
    actions);
}
