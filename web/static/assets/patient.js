// The patient's pages: my record, appointments, reports, who can see my
// records (grant and revoke on chain, from the wallet or gas-free through
// the gateway's relay), activity (AuditEvents about me, each checked
// against the anchored log) and consent transactions.
import { h, clear, field, notice, badge, button, busy, fmtDateTime, fmtDate, shortHex, copyButton, sleep, humanName, plural, uid } from './ui.js';
import { ApiError } from './api.js';
import { reportItem, reportForm } from './reports.js';
import * as wallet from './wallet.js';
import * as consent from './consent.js';
import { picker, practitionerName, granteeDirectory } from './directory.js';
import { activityList } from './activity.js';
import { MAX_UINT64 } from './eth.js';

export const patientPages = {
  record: { title: 'My record', render: renderRecord },
  appointments: { title: 'Appointments', render: renderAppointments },
  reports: { title: 'Reports', render: renderReports },
  sharing: { title: 'Who can see my records', render: renderSharing },
  activity: { title: 'Activity', render: renderActivity },
  transactions: { title: 'Consent transactions', render: renderTransactions },
};

const section = (title, ...content) => h('section', { class: 'card' }, h('h2', null, title), ...content);

// ---------------------------------------------------------------- record

async function renderRecord(main, ctx) {
  main.append(h('h1', null, 'My record'));
  const box = main.appendChild(h('div', null, h('p', { class: 'hint' }, 'Loading your record…')));
  const p = await ctx.fhir.get(ctx.session.ref);
  if (ctx.stale()) return;
  const rows = [];
  const add = (k, v) => { if (v) rows.push(h('div', { class: 'kv-row' }, h('dt', null, k), h('dd', null, v))); };
  add('Name', humanName(p.name));
  add('Date of birth', fmtDate(p.birthDate));
  add('Gender', p.gender ? p.gender[0].toUpperCase() + p.gender.slice(1) : '');
  for (const t of p.telecom || []) add(t.system === 'email' ? 'Email' : t.system === 'phone' ? 'Phone' : 'Contact', t.value);
  for (const a of p.address || []) add('Address', a.text || [...(a.line || []), a.postalCode, a.city, a.country].filter(Boolean).join(', '));
  const wallets = (p.identifier || []).filter((i) => i.system === 'https://chainagnostic.org/CAIPs/caip-10').map((i) => i.value.split(':').pop());
  const others = (p.identifier || []).filter((i) => i.system !== 'https://chainagnostic.org/CAIPs/caip-10');
  for (const i of others) add(i.type?.text || 'Identifier', i.value);
  for (const w of wallets) add('Linked wallet', h('span', { class: 'mono' }, w));
  clear(box,
    h('section', { class: 'card' },
      h('h2', null, 'Personal details'),
      h('dl', { class: 'kv' }, rows),
      h('p', { class: 'hint' }, 'Something wrong? Ask your clinic to correct it: changes to your details are made by your care team.')),
    h('section', { class: 'card' },
      h('h2', null, 'What you can do here'),
      h('ul', { class: 'links' },
        h('li', null, h('a', { href: '#appointments' }, 'Book or cancel an appointment')),
        h('li', null, h('a', { href: '#reports' }, 'Upload a test report')),
        h('li', null, h('a', { href: '#sharing' }, 'Choose which doctors can see your records')),
        h('li', null, h('a', { href: '#activity' }, 'See who looked at your records')))));
}

// ---------------------------------------------------------- appointments

const STATUS_WORDS = {
  booked: ['ok', 'Booked'], proposed: ['pending', 'Requested'], pending: ['pending', 'Pending'], arrived: ['info', 'Arrived'],
  fulfilled: ['info', 'Done'], cancelled: ['muted', 'Cancelled'], noshow: ['warn', 'Missed'], 'entered-in-error': ['muted', 'Entered in error'],
};
const statusBadge = (s) => { const [k, t] = STATUS_WORDS[s] || ['info', s]; return badge(k, t); };

function otherParticipant(appt, prefix) {
  return (appt.participant || []).map((x) => x.actor).find((a) => a?.reference?.startsWith(prefix));
}

async function renderAppointments(main, ctx) {
  main.append(h('h1', null, 'Appointments'));
  const listBox = h('div', null, h('p', { class: 'hint' }, 'Loading…'));
  const msg = h('div', { 'aria-live': 'polite' });
  main.append(section('Your appointments', msg, listBox));

  const load = async () => {
    const list = await ctx.fhir.search(`Appointment?patient=${encodeURIComponent(ctx.session.ref)}&_sort=-date&_count=50`);
    if (ctx.stale()) return;
    if (!list.length) { clear(listBox, h('p', null, 'You have no appointments yet. Book one below.')); return; }
    const ul = h('ul', { class: 'items' });
    for (const a of list) {
      const who = otherParticipant(a, 'Practitioner/');
      const name = h('span', null, who?.display || 'a practitioner');
      if (who?.reference && !who.display) practitionerName(ctx.fhir, who.reference).then((n) => { name.textContent = n; });
      const canCancel = ['booked', 'proposed', 'pending'].includes(a.status) && (!a.start || new Date(a.start) > new Date());
      const when = a.start ? fmtDateTime(a.start) : 'Date to be agreed';
      const actions = h('div', { class: 'item-actions' });
      // Cancelling asks first, on the page (a native confirm() could not
      // be styled or named): "Keep it" has the focus, Escape keeps it too.
      const cancel = canCancel ? button('Cancel appointment', () => {
        const keep = button('Keep it', () => close(), { class: 'btn btn-small btn-quiet' });
        const yes = button('Yes, cancel it', () => busy(yes, async () => {
          try {
            const cur = await ctx.fhir.get(`Appointment/${a.id}`);
            cur.status = 'cancelled';
            cur.cancelationReason = { text: 'Cancelled by the patient' };
            await ctx.fhir.update(cur, cur.meta?.versionId);
            const done = notice('ok', 'The appointment is cancelled.');
            done.tabIndex = -1; // the list is redrawn: focus goes to what happened
            clear(msg, done);
            await load();
            done.focus();
          } catch (e) { ctx.report(msg, e, 'The appointment could not be cancelled.'); close(); }
        }), { class: 'btn btn-small btn-danger' });
        const ask = h('div', { class: 'confirm', role: 'group', 'aria-label': `Cancel the appointment on ${when}?` },
          h('span', null, 'Cancel this appointment?'), yes, keep);
        const close = () => { clear(actions, cancel); cancel.focus(); };
        ask.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); close(); } });
        clear(actions, ask);
        keep.focus();
      }, { class: 'btn btn-small btn-danger', 'aria-label': `Cancel appointment on ${when}` }) : null;
      if (cancel) actions.append(cancel);
      ul.append(h('li', { class: 'item' },
        h('div', { class: 'item-main' },
          h('p', { class: 'item-title' }, when, ' ', statusBadge(a.status)),
          h('p', null, 'With ', name, a.description ? ` · ${a.description}` : '')),
        cancel ? actions : null));
    }
    clear(listBox, ul);
  };

  // booking form
  const pick = picker(ctx.fhir, { legend: 'Practitioner', idPrefix: 'book' });
  const today = new Date().toISOString().slice(0, 10);
  const date = h('input', { type: 'date', id: 'book-date', required: true, min: today });
  const time = h('input', { type: 'time', id: 'book-time', required: true, value: '09:00', step: 900 });
  const duration = h('select', { id: 'book-duration' }, [15, 30, 45, 60].map((m) => h('option', { value: m, selected: m === 30 }, `${m} minutes`)));
  const reason = h('input', { type: 'text', id: 'book-reason', maxlength: 200, placeholder: 'e.g. Check-up' });
  const formMsg = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'book-submit' }, 'Book appointment');
  const form = h('form', { class: 'form', novalidate: true },
    pick.el,
    h('div', { class: 'row' }, field('Date', date), field('Time', time), field('Length', duration)),
    field('Reason (optional)', reason, 'Do not write anything you would not want the practitioner to read.'),
    h('div', { class: 'actions' }, submit), formMsg);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clear(formMsg);
      const doc = pick.selected;
      if (!doc) { clear(formMsg, notice('error', 'Choose a practitioner first: search, then pick one from the list.')); return; }
      if (!date.value || !time.value) { clear(formMsg, notice('error', 'Choose a date and a time.')); return; }
      const start = new Date(`${date.value}T${time.value}`);
      if (isNaN(start) || start < new Date()) { clear(formMsg, notice('error', 'Choose a date and time in the future.')); return; }
      const end = new Date(start.getTime() + Number(duration.value) * 60000);
      const me = await ctx.fhir.get(ctx.session.ref).catch(() => null);
      const appt = {
        resourceType: 'Appointment',
        status: 'booked',
        start: start.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        end: end.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        minutesDuration: Number(duration.value),
        participant: [
          { actor: { reference: ctx.session.ref, display: me ? humanName(me.name) || undefined : undefined }, required: 'required', status: 'accepted' },
          { actor: { reference: doc.ref, display: doc.name }, required: 'required', status: 'needs-action' },
        ],
      };
      if (reason.value.trim()) appt.description = reason.value.trim();
      if (!appt.participant[0].actor.display) delete appt.participant[0].actor.display;
      try {
        await ctx.fhir.create('Appointment', appt);
        clear(formMsg, notice('ok', `Booked with ${doc.name} on ${fmtDateTime(start)}.`));
        pick.reset();
        reason.value = '';
        await load();
      } catch (err) { ctx.report(formMsg, err, 'The appointment could not be booked.'); }
    });
  });
  main.append(section('Book an appointment', form));
  await load();
}

// --------------------------------------------------------------- reports

async function renderReports(main, ctx) {
  main.append(h('h1', null, 'Test reports'));
  const listBox = h('div', null, h('p', { class: 'hint' }, 'Loading…'));
  main.append(section('Your reports', listBox));
  const load = async () => {
    const list = await ctx.fhir.search(`DiagnosticReport?patient=${encodeURIComponent(ctx.session.ref)}&_sort=-_lastUpdated&_count=50`);
    if (ctx.stale()) return;
    clear(listBox, list.length ? h('ul', { class: 'items' }, list.map((r) => reportItem(r))) : h('p', null, 'No reports yet. Upload one below.'));
  };
  const form = reportForm({ subject: ctx.session.ref, token: ctx.session.token, idPrefix: 'rep', onDone: load });
  main.append(section('Upload a report', form.el));
  await load();
}

// ----------------------------------------------------- who can see my records

let relayNonceFloor = 0n;

/** sendChange sends one grant or revocation and follows it to confirmed; track(state, text, txHash). */
export async function sendChange(ctx, change, method, track) {
  const reg = await consent.registry();
  const rpc = await consent.chainRPC();
  const address = ctx.session.address;
  const action = change.kind === 'Grant' ? 'the permission' : 'the withdrawal';
  if (method === 'wallet') {
    track('wallet', 'Waiting for you to confirm in your wallet…');
    if ((await wallet.currentChainId()) !== reg.chainId) await wallet.switchChain();
    const data = change.kind === 'Grant' ? consent.grantCalldata(change.grantee, change.scope, change.expiry) : consent.revokeCalldata(change.grantee, change.scope);
    const tx = await wallet.sendTransaction({ from: address, to: reg.address, data }, action);
    track('pending', 'Sent. Waiting for the network to confirm it…', tx);
    const deadline = Date.now() + 180000;
    while (Date.now() < deadline) {
      const rc = await consent.receipt(rpc, tx).catch(() => null);
      if (rc) {
        if (rc.status === '0x1') { track('confirmed', `Confirmed in block ${parseInt(rc.blockNumber, 16)}.`, tx); return tx; }
        track('failed', 'The network refused this change (nothing was changed).', tx);
        throw tracked('transaction failed');
      }
      await sleep(1000);
    }
    track('failed', 'Not confirmed after 3 minutes. Check the transactions page later.', tx);
    throw tracked('timeout');
  }
  // gas-free: sign EIP-712 typed data, the gateway relays it
  for (let attempt = 0; ; attempt++) {
    const onChain = await consent.chainNonce(rpc, reg.address, address);
    const nonce = onChain > relayNonceFloor ? onChain : relayNonceFloor;
    const typed = consent.typedData({
      kind: change.kind, chainId: reg.chainId, registry: reg.address, patient: address,
      grantee: change.grantee, scope: change.scope, expiry: change.expiry, nonce,
      deadline: Math.floor(Date.now() / 1000) + 600,
    });
    track('wallet', 'Waiting for your signature in your wallet (no fee)…');
    const sig = await wallet.signTypedData(address, typed, action);
    track('pending', 'Signed. The gateway is sending it to the network…');
    let res;
    try {
      res = await consent.relaySubmit(typed, sig, ctx.session.token);
    } catch (e) {
      if (e.code === 'nonce' && attempt === 0) { relayNonceFloor = 0n; continue; }
      throw e;
    }
    relayNonceFloor = nonce + 1n;
    const tx = res.txHash;
    track('pending', 'Sent by the gateway. Waiting for the network to confirm it…', tx);
    const deadline = Date.now() + 180000;
    while (Date.now() < deadline) {
      let st = null;
      try { st = await consent.relayStatus(tx, ctx.session.token); } catch { /* fall back to the chain */ }
      if (!st) {
        const rc = await consent.receipt(rpc, tx).catch(() => null);
        if (rc) st = { state: rc.status === '0x1' ? 'confirmed' : 'failed', block: parseInt(rc.blockNumber, 16), txHash: tx };
      }
      if (st?.state === 'confirmed') { track('confirmed', `Confirmed in block ${st.block}.`, st.txHash || tx); return st.txHash || tx; }
      if (st?.state === 'failed') {
        relayNonceFloor = 0n;
        track('failed', 'The network refused this change (nothing was changed).', st.txHash || tx, st.error);
        throw tracked('transaction failed');
      }
      await sleep(1000);
    }
    track('failed', 'Not confirmed after 3 minutes. Check the transactions page later.', tx);
    throw tracked('timeout');
  }
}

// An error whose words the change's tracker already shows.
const tracked = (m) => Object.assign(new Error(m), { tracked: true });

/** trackFailure says why a change failed in plain words (the technical words folded), unless sendChange said it already. */
function trackFailure(track, e, action) {
  if (e?.tracked) return e;
  const x = e instanceof ApiError ? e : wallet.explain(e, action);
  track('failed', x.friendly || x.message, undefined, x.detail);
  return x;
}

const STATE_BADGE = { wallet: ['pending', 'Your turn'], pending: ['pending', 'Pending'], confirmed: ['ok', 'Confirmed'], failed: ['error', 'Failed'] };

function tracker(list, label) {
  const state = badge('pending', 'Starting');
  const text = h('span', null, '');
  const txEl = h('span', { class: 'mono hint' });
  const more = h('div');
  const li = h('li', { class: 'change' }, h('div', null, h('strong', null, label), ' ', state), h('div', null, text, ' ', txEl), more);
  list.append(li);
  return (s, t, tx, detail) => {
    const [k, w] = STATE_BADGE[s] || ['info', s];
    state.className = `badge badge-${k}`;
    state.textContent = w;
    li.dataset.state = s;
    text.textContent = t;
    if (tx) txEl.textContent = `transaction ${shortHex(tx)}`;
    clear(more, detail ? h('details', null, h('summary', null, 'Technical details'), h('p', { class: 'mono' }, detail)) : null);
  };
}

/** readGrants returns the patient's grants: {list, source, dir} (dir maps grantee hashes to practitioners). */
async function readGrants(ctx) {
  const dir = await granteeDirectory(ctx.fhir).catch(() => new Map());
  try {
    const reg = await consent.registry();
    const rpc = await consent.chainRPC();
    const events = await consent.consentLogs(rpc, reg.address, { patient: ctx.session.address });
    return { list: consent.liveGrants(events), source: 'chain', dir };
  } catch (chainErr) {
    // The chain is not reachable from this browser: the gateway's Consent records say the same.
    const consents = await ctx.fhir.search(`Consent?patient=${encodeURIComponent(ctx.session.ref)}&_count=200`);
    const list = consent.grantsFromConsents(consents);
    for (const g of list) if (!dir.has(g.grantee)) dir.set(g.grantee, { ref: g.granteeRef, name: g.granteeRef });
    return { list, source: 'consent', dir };
  }
}

function untilWords(expiry) {
  if (expiry >= MAX_UINT64) return 'until you stop it';
  return `until ${fmtDate(new Date(Number(expiry) * 1000).toISOString())}`;
}

async function renderSharing(main, ctx) {
  main.append(h('h1', null, 'Who can see my records'));
  main.append(h('p', { class: 'lead' }, 'Your doctors see only what you share with them, for as long as you choose. Your choices are written to a public network (only codes, never your health data), so nobody, not even the gateway, can change them behind your back.'));

  const relayOK = await consent.relayAvailable(ctx.session.token);
  if (ctx.stale()) return;
  // how changes are sent
  const methodName = uid('method');
  const mk = (value, label, hint, checked, disabled) => {
    const id = uid('m');
    return h('div', { class: 'choice' },
      h('input', { type: 'radio', name: methodName, id, value, checked, disabled }),
      h('label', { for: id }, h('span', { class: 'choice-name' }, label), h('span', { class: 'choice-sub' }, hint)));
  };
  const methodBox = h('fieldset', { class: 'choices', id: 'method' },
    h('legend', null, 'How to send your changes'),
    mk('relay', 'Gas-free signature', relayOK ? 'You sign in your wallet; the gateway sends it and pays the network fee.' : 'Not available on this gateway yet.', relayOK, !relayOK),
    mk('wallet', 'From my wallet', 'Your wallet sends the change itself and pays a small network fee in ether.', !relayOK, false));
  const method = () => methodBox.querySelector('input:checked')?.value || 'wallet';

  const changes = h('ul', { class: 'changes', id: 'changes', 'aria-live': 'polite' });
  const grantsBox = h('div', { id: 'grants' }, h('p', { class: 'hint' }, 'Loading…'));
  const grantsMsg = h('div', { 'aria-live': 'polite' });

  const load = async () => {
    let res;
    try {
      res = await readGrants(ctx);
    } catch (e) {
      ctx.report(grantsBox, e, 'Your sharing choices could not be read.');
      return;
    }
    if (ctx.stale()) return;
    const { list, dir } = res;
    if (!list.length) { clear(grantsBox, h('p', null, 'You are not sharing your records with anyone.')); return; }
    const byGrantee = new Map();
    for (const g of list) {
      if (!byGrantee.has(g.grantee)) byGrantee.set(g.grantee, []);
      byGrantee.get(g.grantee).push(g);
    }
    const ul = h('ul', { class: 'items' });
    for (const [gh, grants] of byGrantee) {
      const who = dir.get(gh);
      const rows = grants.map((g) => {
        const w = g.scope ? consent.scopeWords(g.scope) : { what: 'Other records', can: '' };
        const stop = who && g.scope ? button('Stop sharing', () => busy(stop, async () => {
          const track = tracker(changes, `Stop sharing ${w.what.toLowerCase()} with ${who.name}`);
          try {
            await sendChange(ctx, { kind: 'Revoke', grantee: who.ref, scope: g.scope }, method(), track);
            await load();
          } catch (e) {
            trackFailure(track, e, 'the withdrawal');
          }
        }), { class: 'btn btn-small btn-danger', 'aria-label': `Stop sharing ${w.what} with ${who.name}` }) : null;
        return h('li', { class: 'grant' },
          h('span', null, h('strong', null, w.what), `: ${w.can}, ${untilWords(g.expiry)} `, g.active ? badge('ok', 'Active') : badge('muted', 'Expired')),
          stop);
      });
      ul.append(h('li', { class: 'item item-col' },
        h('p', { class: 'item-title' }, who ? who.name : `Someone the gateway does not list (${shortHex(gh)})`),
        h('ul', { class: 'grants' }, rows)));
    }
    clear(grantsBox, ul);
  };

  // grant form
  const pick = picker(ctx.fhir, { legend: 'Practitioner', idPrefix: 'grant' });
  const types = h('fieldset', { class: 'choices choices-grid', id: 'grant-types' }, h('legend', null, 'What may they see?'),
    consent.SHAREABLE.map((s) => {
      const id = `type-${s.type}`;
      return h('div', { class: 'choice' }, h('input', { type: 'checkbox', id, value: s.type, checked: s.type === 'DiagnosticReport' }), h('label', { for: id }, s.label));
    }));
  const levelName = uid('level');
  const levels = h('fieldset', { class: 'choices', id: 'grant-level' }, h('legend', null, 'What may they do?'),
    consent.LEVELS.map((l, i) => {
      const id = `level-${l.perms}`;
      return h('div', { class: 'choice' }, h('input', { type: 'radio', name: levelName, id, value: l.perms, checked: i === 0 }),
        h('label', { for: id }, h('span', { class: 'choice-name' }, l.label), h('span', { class: 'choice-sub' }, l.perms === 'rs' ? 'Read only.' : 'Read, add new records and correct existing ones.')));
    }));
  const untilName = uid('until');
  const untilDate = h('input', { type: 'date', id: 'grant-until-date', min: new Date(Date.now() + 86400000).toISOString().slice(0, 10) });
  const until = h('fieldset', { class: 'choices', id: 'grant-until' }, h('legend', null, 'For how long?'),
    h('div', { class: 'choice' }, h('input', { type: 'radio', name: untilName, id: 'until-forever', value: 'forever', checked: true }), h('label', { for: 'until-forever' }, 'Until I stop it')),
    h('div', { class: 'choice' }, h('input', { type: 'radio', name: untilName, id: 'until-date', value: 'date' }), h('label', { for: 'until-date' }, 'Until a date')),
    field('End date', untilDate, 'Access ends at the start of this day.'));
  untilDate.addEventListener('input', () => { document.getElementById('until-date').checked = true; });
  const formMsg = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'grant-submit' }, 'Share');
  const form = h('form', { class: 'form', novalidate: true }, pick.el, types, levels, until, h('div', { class: 'actions' }, submit), formMsg);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clear(formMsg);
      const doc = pick.selected;
      if (!doc) { clear(formMsg, notice('error', 'Choose a practitioner first: search, then pick one from the list.')); return; }
      const chosen = [...types.querySelectorAll('input:checked')].map((i) => i.value);
      if (!chosen.length) { clear(formMsg, notice('error', 'Tick at least one kind of record to share.')); return; }
      const perms = levels.querySelector('input:checked').value;
      let expiry = MAX_UINT64;
      if (until.querySelector('input:checked').value === 'date') {
        if (!untilDate.value) { clear(formMsg, notice('error', 'Choose the end date, or "Until I stop it".')); return; }
        const [y, m, d] = untilDate.value.split('-').map(Number);
        const t = new Date(y, m - 1, d).getTime();
        if (t <= Date.now()) { clear(formMsg, notice('error', 'The end date must be in the future.')); return; }
        expiry = BigInt(Math.floor(t / 1000));
      }
      const how = method();
      let done = 0;
      for (const type of chosen) {
        const w = consent.scopeWords(`${type}.${perms}`);
        const track = tracker(changes, `Share ${w.what.toLowerCase()} (${w.can}) with ${doc.name}`);
        try {
          await sendChange(ctx, { kind: 'Grant', grantee: doc.ref, scope: `${type}.${perms}`, expiry }, how, track);
          done++;
        } catch (err) {
          if (trackFailure(track, err, 'the permission').kind === 'rejected') break;
        }
      }
      if (done) clear(formMsg, notice('ok', `${doc.name} can now ${consent.scopeWords(`x.${perms}`).can} ${plural(done, 'kind of record', 'kinds of records')} you chose.`));
      await load();
    });
  });

  main.append(
    section('Shared now', grantsMsg, grantsBox),
    section('Changes in progress', h('p', { class: 'hint' }, 'Each change is confirmed by the network within a few seconds.'), changes),
    section('Share with a practitioner', methodBox, form));
  await load();
}

// --------------------------------------------------------------- activity

async function renderActivity(main, ctx) {
  main.append(h('h1', null, 'Activity'));
  main.append(h('p', { class: 'lead' }, 'Every time someone opens, changes or is refused one of your records, it is written here. Each entry is sealed in a public log: the badge shows that your browser checked it against the network.'));
  await activityList(main, ctx);
}

// ----------------------------------------------------------- transactions

async function renderTransactions(main, ctx) {
  main.append(h('h1', null, 'Consent transactions'));
  main.append(h('p', { class: 'lead' }, 'Every sharing change you made, as recorded on the network.'));
  const box = main.appendChild(h('div', { class: 'card' }, h('p', { class: 'hint' }, 'Loading…')));
  let events, times, dir, reg;
  try {
    reg = await consent.registry();
    const rpc = await consent.chainRPC();
    [events, dir] = await Promise.all([
      consent.consentLogs(rpc, reg.address, { patient: ctx.session.address }),
      granteeDirectory(ctx.fhir).catch(() => new Map()),
    ]);
    times = await consent.blockTimes(rpc, events.map((e) => e.block));
  } catch (e) {
    ctx.report(box, { friendly: 'The network cannot be reached from this browser, so your transactions cannot be listed now.', detail: e.message });
    return;
  }
  if (ctx.stale()) return;
  if (!events.length) { clear(box, h('p', null, 'You have not made any sharing change yet.')); return; }
  const table = h('table', { class: 'table', id: 'tx-table' },
    h('caption', { class: 'sr-only' }, 'Consent transactions, newest first'),
    h('thead', null, h('tr', null, ['When', 'Change', 'With', 'Block', 'Transaction'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, events.slice().reverse().map((e) => {
      const w = e.scope ? consent.scopeWords(e.scope) : { what: 'Other records', can: '' };
      const who = dir.get(e.grantee);
      const t = times.get(e.block);
      return h('tr', null,
        h('td', { 'data-label': 'When' }, t ? fmtDateTime(new Date(t * 1000)) : '—'),
        h('td', { 'data-label': 'Change' }, e.kind === 'granted' ? badge('ok', 'Shared') : badge('muted', 'Stopped'), ' ', `${w.what}${e.kind === 'granted' ? ` (${w.can}, ${untilWords(e.expiry)})` : ''}`),
        h('td', { 'data-label': 'With' }, who ? who.name : shortHex(e.grantee)),
        h('td', { 'data-label': 'Block' }, String(e.block)),
        h('td', { 'data-label': 'Transaction', class: 'mono' }, h('span', { title: e.txHash }, shortHex(e.txHash)), ' ', copyButton(e.txHash)));
    })));
  clear(box, h('div', { class: 'table-wrap' }, table), h('p', { class: 'hint' }, `Consent registry ${reg.address} on chain ${reg.chainId}.`));
}
