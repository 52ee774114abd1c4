// The patient's activity log: AuditEvents about them, newest first, in
// plain words, each checked against the anchored log in the browser (the
// event's exact bytes, its proof, and the root on chain).
import { h, clear, badge, button, busy, fmtDateTime, errorNotice, shortHex } from './ui.js';
import { request, wellKnown, outcomeText, friendlyStatus, ApiError } from './api.js';
import { bundleResourceTexts } from './rawjson.js';
import { verifyProof, parseProof } from './proof.js';
import { practitionerName } from './directory.js';
import { utf8 } from './eth.js';

const TYPE_WORDS = {
  Patient: ['your personal details', 'your personal details'],
  DiagnosticReport: ['a test report', 'test reports'],
  Observation: ['a test result', 'test results'],
  Appointment: ['an appointment', 'appointments'],
  Condition: ['a condition', 'conditions'],
  MedicationRequest: ['a prescription', 'prescriptions'],
  AuditEvent: ['your activity log', 'your activity log'],
  Consent: ['a sharing choice', 'your sharing choices'],
};

export function typeWords(type, n = 1) {
  const w = TYPE_WORDS[type];
  if (w) return n === 1 ? w[0] : w[1];
  const plain = type.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
  return n === 1 ? `a ${plain} record` : `${plain} records`;
}

const VERBS = {
  read: 'opened', vread: 'opened', 'history-instance': 'looked at the history of', 'search-type': 'searched', 'search-system': 'searched',
  create: 'added', update: 'changed', patch: 'changed', delete: 'deleted', operation: 'asked for a proof of',
};

/** describe turns an AuditEvent into {who, whoRef, verb, what, outcome, breakGlass, reason, mine}. */
export function describe(ev, me) {
  const requestor = (ev.agent || []).find((a) => a.requestor) || {};
  const role = requestor.role?.[0]?.text || '';
  const whoRef = requestor.who?.reference || '';
  const whoId = requestor.who?.identifier?.value || '';
  const mine = whoId === me || (role === 'patient' && whoId === me);
  let who;
  if (mine) who = 'You';
  else if (whoRef.startsWith('Practitioner/')) who = 'A practitioner';
  else if (role === 'system') who = 'A clinic system';
  else if (role === 'regulator') who = 'A regulator';
  else if (role === 'admin') who = 'An administrator';
  else if (role === 'patient') who = 'Another patient';
  else who = 'Someone';
  const subtype = ev.subtype?.[0]?.code || '';
  const counts = new Map();
  for (const e of ev.entity || []) {
    const ref = e.what?.reference;
    if (!ref || e.role?.code === '1') continue;
    const type = ref.split('/')[0];
    counts.set(type, (counts.get(type) || 0) + 1);
  }
  const searching = subtype.startsWith('search');
  const your = (t) => (t === 'Patient' || t === 'AuditEvent' ? typeWords(t) : `your ${typeWords(t, 2)}`);
  let what = [...counts].map(([t, n]) => (searching ? your(t) : typeWords(t, n))).join(', ');
  if (!what) {
    const q = (ev.entity || []).find((e) => e.query);
    let type = '';
    if (q) { try { type = atob(q.query).split('?')[0].split('/')[0]; } catch { /* not base64 */ } }
    what = searching && type && TYPE_WORDS[type] ? your(type) : 'your records';
  }
  const verb = VERBS[subtype] || 'used';
  const outcome = ev.outcome === '0' ? 'allowed' : ev.outcome === '8' ? 'failed' : 'denied';
  const btg = (ev.purposeOfEvent || []).find((p) => p.coding?.some((c) => c.code === 'BTG'));
  const breakGlass = btg || ev.type?.code === '110113' ? (btg?.text || 'no reason given') : '';
  return { who, whoRef, role, verb, what, outcome, breakGlass, reason: reasonWords(ev.outcomeDesc || ''), technical: ev.outcomeDesc || '', mine, subtype };
}

/** reasonWords explains a refusal without identifiers or jargon. */
function reasonWords(r) {
  if (!r) return '';
  if (/no live consent|consent/i.test(r) && !/cannot be checked/i.test(r)) return 'They did not have your permission for this at that time.';
  if (/cannot be checked/i.test(r)) return 'Your sharing choices could not be checked at that moment, so the gateway refused to be safe.';
  if (/own records only|not linked/i.test(r)) return 'Only you can see your records this way.';
  if (/scope|role/i.test(r)) return 'Their access does not cover this kind of record.';
  return 'The gateway refused the request.';
}

const verified = new Map(); // "AuditEvent/id/_history/v" -> result, for this page's life

/** verifyEvent checks one AuditEvent against the log and the chain; returns {state, result}. */
export async function verifyEvent(ctx, ev, bytes) {
  const ref = `AuditEvent/${ev.id}/_history/${ev.meta?.versionId || '1'}`;
  if (verified.has(ref)) return verified.get(ref);
  const info = await wellKnown();
  const res = await request(`/fhir/${ref}/$proof`, { token: ctx.session.token, raw: true });
  if (res.status === 202) return { state: 'waiting', retry: Number(res.headers.get('Retry-After') || '2') };
  if (res.status !== 200) {
    let detail = '';
    try { detail = outcomeText(JSON.parse(res.text)); } catch { /* not JSON */ }
    return { state: 'error', message: friendlyStatus(res.status), detail };
  }
  const proof = parseProof(res.text);
  const result = await verifyProof(proof, { bytes, rpcUrl: info.rpc || undefined, expectedContract: info.contracts?.AuditAnchor });
  const out = { state: result.ok && result.complete ? 'verified' : result.ok ? 'partial' : 'failed', result, proof };
  if (out.state === 'verified' || out.state === 'failed') verified.set(ref, out);
  return out;
}

function stepList(result) {
  return h('ol', { class: 'steps-check' }, result.steps.map((s) => h('li', { class: `step step-${s.status}` },
    h('span', { class: 'step-title' }, s.title, ' ', badge(s.status === 'ok' ? 'ok' : s.status === 'fail' ? 'error' : s.status === 'warn' ? 'warn' : 'muted', s.status === 'ok' ? 'Checked' : s.status === 'fail' ? 'Failed' : s.status === 'warn' ? 'Note' : 'Skipped')),
    h('span', { class: 'step-detail' }, s.detail))));
}

/** activityList renders the activity log into main. */
export async function activityList(main, ctx) {
  const me = ctx.session.ref;
  const showMine = h('input', { type: 'checkbox', id: 'show-mine' });
  const onlyRefused = h('input', { type: 'checkbox', id: 'only-refused' });
  const refresh = button('Refresh', () => busy(refresh, load), { class: 'btn btn-small', id: 'activity-refresh' });
  const filters = h('div', { class: 'filters' },
    h('div', { class: 'choice' }, showMine, h('label', { for: 'show-mine' }, 'Include my own actions')),
    h('div', { class: 'choice' }, onlyRefused, h('label', { for: 'only-refused' }, 'Only refused and emergency accesses')),
    refresh);
  const listBox = h('div', { id: 'activity' }, h('p', { class: 'hint' }, 'Loading…'));
  main.append(h('section', { class: 'card' }, filters, listBox));
  let events = [];

  const draw = () => {
    const shown = events.filter(({ d }) => (showMine.checked || !d.mine) && (!onlyRefused.checked || d.outcome !== 'allowed' || d.breakGlass));
    if (!shown.length) {
      clear(listBox, h('p', null, events.length ? 'Nothing matches these filters.' : 'No activity yet.'));
      return;
    }
    const ul = h('ul', { class: 'items activity' });
    for (const item of shown) ul.append(item.el);
    clear(listBox, ul);
  };
  // The patient's own reads of this page are audited too: leave them out
  // on the server (altid is the requester's wallet), so that 40 entries
  // are 40 of other people's, and ask again when the box changes.
  showMine.addEventListener('change', () => load().catch((e) => ctx.report(listBox, e, 'Your activity could not be loaded.')));
  onlyRefused.addEventListener('change', draw);

  async function load() {
    let query = `/fhir/AuditEvent?patient=${encodeURIComponent(me)}&_sort=-date&_count=40`;
    if (!showMine.checked) {
      const { chainId } = await wellKnown();
      query += `&altid:not=${encodeURIComponent(`eip155:${chainId}:${ctx.session.address}`)}`;
    }
    const res = await request(query, { token: ctx.session.token, raw: true });
    if (res.status !== 200) throw new ApiError(res.status, friendlyStatus(res.status), res.text.slice(0, 200));
    if (ctx.stale()) return;
    const bundle = JSON.parse(res.text);
    const texts = bundleResourceTexts(res.text);
    events = (bundle.entry || []).map((e, i) => ({ ev: e.resource, text: texts[i] })).filter((x) => x.ev?.resourceType === 'AuditEvent').map(({ ev, text }) => {
      const d = describe(ev, me);
      const who = h('span', { class: 'who-name' }, d.who);
      if (d.whoRef) practitionerName(ctx.fhir, d.whoRef).then((n) => { who.textContent = n; });
      const outcomeBadge = d.outcome === 'allowed' ? badge('ok', 'Allowed') : d.outcome === 'denied' ? badge('error', 'Refused') : badge('warn', 'Failed');
      const vbadge = badge('pending', 'Checking…');
      vbadge.classList.add('verify-badge');
      const details = h('details', { class: 'verify-details' }, h('summary', null, 'How was this checked?'), h('p', { class: 'hint' }, 'Checking…'));
      const el = h('li', { class: `item event${d.breakGlass ? ' event-alert' : ''}${d.outcome !== 'allowed' ? ' event-denied' : ''}`, dataset: { outcome: d.outcome, breakGlass: d.breakGlass ? 'yes' : 'no' } },
        h('div', { class: 'item-main' },
          h('p', { class: 'item-title' }, who, ` ${d.verb} ${d.what}`),
          h('p', { class: 'event-meta' }, h('time', { datetime: ev.recorded }, fmtDateTime(ev.recorded)), ' ', outcomeBadge, ' ', d.breakGlass ? badge('alert', 'Emergency access') : null, ' ', vbadge),
          d.breakGlass ? h('p', { class: 'event-reason' }, h('strong', null, 'Reason given: '), d.breakGlass) : null,
          d.outcome !== 'allowed' && d.reason ? h('p', { class: 'hint', title: d.technical }, 'Why: ', d.reason) : null,
          details));
      return { ev, d, el, text, vbadge, details };
    });
    draw();
    // verify the visible events, a few at a time
    const queue = events.slice();
    const worker = async () => {
      for (let item; (item = queue.shift());) {
        for (let tries = 0; tries < 30; tries++) {
          if (ctx.stale()) return;
          let r;
          try {
            r = await verifyEvent(ctx, item.ev, item.text ? utf8(item.text) : undefined);
          } catch (e) {
            r = { state: 'error', message: e.friendly || 'The check could not run.', detail: e.detail || (e.friendly ? '' : e.message) };
          }
          if (r.state === 'waiting') {
            item.vbadge.className = 'badge badge-pending verify-badge';
            item.vbadge.textContent = 'Being sealed…';
            clear(item.details, h('summary', null, 'How was this checked?'), h('p', { class: 'hint' }, 'This entry is in the log; the next seal on the network is a few seconds away.'));
            await new Promise((res) => setTimeout(res, Math.min(5, Math.max(1, r.retry)) * 1000));
            continue;
          }
          if (r.state === 'verified') {
            item.vbadge.className = 'badge badge-ok verify-badge';
            item.vbadge.textContent = 'Verified on chain';
            item.vbadge.title = `Anchored in block ${r.proof.checkpoint.blockNumber}, transaction ${r.proof.checkpoint.txHash}`;
          } else if (r.state === 'failed') {
            item.vbadge.className = 'badge badge-error verify-badge';
            item.vbadge.textContent = 'Not verified';
          } else {
            item.vbadge.className = 'badge badge-warn verify-badge';
            item.vbadge.textContent = r.state === 'partial' ? 'Partly verified' : 'Could not check';
          }
          clear(item.details, h('summary', null, 'How was this checked?'),
            r.result ? stepList(r.result) : errorNotice({ friendly: r.message || 'The check could not run.', detail: r.detail }, '', 'warn'),
            r.proof ? h('p', { class: 'hint mono' }, `Checkpoint ${r.proof.checkpoint.treeSize} · block ${r.proof.checkpoint.blockNumber} · tx ${shortHex(r.proof.checkpoint.txHash)}`) : null);
          break;
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  }
  try {
    await load();
  } catch (e) {
    ctx.report(listBox, e, 'Your activity could not be loaded.');
  }
}
