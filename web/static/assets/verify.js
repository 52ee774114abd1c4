// The regulator's page (/verify): check a proof step by step in the
// browser (record bytes -> leaf -> inclusion path -> checkpoint root ->
// the root AuditAnchor holds on chain -> anchoring transaction), and the
// timeline of anchored checkpoints with consistency between neighbours.
// Nothing is stored: the token, if used, lives in the form field only.
import { h, clear, field, notice, errorNotice, badge, button, busy, fmtDateTime, shortHex, copyButton } from './ui.js';
import { request, wellKnown, ApiError, outcomeText, friendlyStatus, loadSession } from './api.js';
import { parseProof, verifyProof, rootAt } from './proof.js';
import { verifyConsistency } from './merkle.js';
import { hexToBytes, utf8, RPC } from './eth.js';

const main = document.getElementById('main');
document.getElementById('skip').addEventListener('click', (e) => {
  e.preventDefault();
  const h1 = main.querySelector('h1') || main;
  h1.tabIndex = -1; // a heading takes the focus only with a tabindex
  h1.focus();
});

const TOKEN_REFUSED = 'The regulator token was not accepted: it may have expired or been mistyped. Ask for a new one and paste it again.';

const STATUS = { ok: ['ok', 'Checked'], fail: ['error', 'Failed'], skip: ['muted', 'Not checked'], warn: ['warn', 'Note'] };

function stepCard(s, i) {
  const [k, w] = STATUS[s.status];
  return h('li', { class: `evidence evidence-${s.status}`, dataset: { step: s.id, status: s.status } },
    h('div', { class: 'evidence-head' }, h('span', { class: 'evidence-num', 'aria-hidden': 'true' }, String(i + 1)), h('h3', null, s.title), badge(k, w)),
    h('p', null, s.detail),
    s.facts?.length ? h('dl', { class: 'facts' }, s.facts.map(([a, b]) => h('div', { class: 'kv-row' }, h('dt', null, a), h('dd', { class: 'mono' }, b)))) : null);
}

async function init() {
  let info = {};
  try { info = await wellKnown(); } catch { /* the page still works with a node URL typed in */ }

  const proofText = h('textarea', { id: 'proof-text', rows: 8, spellcheck: 'false', class: 'mono', placeholder: '{"format":"fhirgate-proof-v1", …}' });
  const proofFile = h('input', { type: 'file', id: 'proof-file', accept: '.json,application/json' });
  const recordText = h('textarea', { id: 'record-text', rows: 4, spellcheck: 'false', class: 'mono', placeholder: 'The record exactly as the gateway served it (optional)' });
  const recordFile = h('input', { type: 'file', id: 'record-file', accept: '.json,application/json,application/fhir+json' });
  let recordBytes = null; // exact bytes from a file or a fetch; the textarea is used when null
  recordText.addEventListener('input', () => { recordBytes = null; });
  proofFile.addEventListener('change', async () => { if (proofFile.files[0]) proofText.value = await proofFile.files[0].text(); });
  recordFile.addEventListener('change', async () => {
    const f = recordFile.files[0];
    if (!f) return;
    recordBytes = new Uint8Array(await f.arrayBuffer());
    recordText.value = new TextDecoder().decode(recordBytes);
  });

  // fetch by reference with a regulator token
  const token = h('input', { type: 'password', id: 'reg-token', autocomplete: 'off', spellcheck: 'false' });
  // A regulator who signed in to the portal with their wallet in this tab
  // fetches with that sign-in (it lives in this tab's session storage).
  const signedIn = loadSession();
  if (signedIn?.role === 'regulator') token.value = signedIn.token;
  const ref = h('input', { type: 'text', id: 'reg-ref', placeholder: 'AuditEvent/123 or Patient/45/_history/2', spellcheck: 'false' });
  const fetchMsg = h('div', { 'aria-live': 'polite' });
  const fetchBtn = button('Fetch proof', () => busy(fetchBtn, async () => {
    clear(fetchMsg);
    const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([0-9]+))?$/.exec(ref.value.trim());
    if (!m) { clear(fetchMsg, notice('error', 'Write the reference as Type/id or Type/id/_history/version, for example AuditEvent/123.')); return; }
    if (!token.value.trim()) { clear(fetchMsg, notice('error', 'Paste your regulator token first.')); return; }
    const auth = { token: token.value.trim() };
    try {
      let [, type, id, vid] = m;
      if (!vid) {
        if (type !== 'AuditEvent') { clear(fetchMsg, notice('error', 'Give the version too (Type/id/_history/version): regulators cannot read clinical records to find it.')); return; }
        const cur = await request(`/fhir/${type}/${id}`, auth);
        vid = cur.meta?.versionId || '1';
      }
      const res = await request(`/fhir/${type}/${id}/_history/${vid}/$proof`, { ...auth, raw: true });
      if (res.status === 202) { clear(fetchMsg, notice('info', `This version is logged but not anchored yet. Try again in ${res.headers.get('Retry-After') || 'a few'} seconds.`)); return; }
      if (res.status !== 200) {
        let d = ''; try { d = outcomeText(JSON.parse(res.text)); } catch { /* not JSON */ }
        throw new ApiError(res.status, friendlyStatus(res.status), d);
      }
      proofText.value = JSON.stringify(JSON.parse(res.text), null, 2);
      recordBytes = null;
      recordText.value = '';
      if (type === 'AuditEvent') {
        const r = await request(`/fhir/${type}/${id}/_history/${vid}`, { ...auth, raw: true });
        if (r.status === 200) { recordBytes = utf8(r.text); recordText.value = r.text; }
      }
      const withheld = JSON.parse(res.text).contentWithheld;
      clear(fetchMsg, notice('ok', !withheld ? (recordBytes ? 'Proof and record fetched.' : 'Proof fetched.')
        : 'Proof fetched. Regulators receive neither clinical content nor its hash (a hash would let anyone test guesses of the content): this proof shows that the log entry is anchored. The patient or the data holder can fetch the full proof to tie it to the record.'));
    } catch (e) {
      clear(fetchMsg, errorNotice(e.status === 401 ? { ...e, friendly: TOKEN_REFUSED } : e));
    }
  }), { class: 'btn', id: 'fetch-proof' });

  const node = h('input', { type: 'url', id: 'node-url', value: info.rpc || '', placeholder: 'https://an-ethereum-node', spellcheck: 'false' });
  const contract = h('input', { type: 'text', id: 'contract', value: info.contracts?.AuditAnchor || '', spellcheck: 'false', class: 'mono' });
  const result = h('div', { id: 'result', 'aria-live': 'polite' });
  const verifyBtn = h('button', { type: 'submit', class: 'btn btn-primary btn-large', id: 'verify' }, 'Verify');
  const form = h('form', { class: 'form', novalidate: true },
    h('section', { class: 'card' }, h('h2', null, '1. The proof'),
      field('Proof (JSON)', proofText, 'Paste the proof, or open the file below.'),
      field('Or open a proof file', proofFile),
      h('details', { class: 'fetch', open: token.value ? true : null }, h('summary', null, 'Fetch a proof from this gateway with a regulator token'),
        field('Regulator token', token, token.value ? 'Filled in from your sign-in as a regulator in this tab.' : 'Kept in this field only; never stored.'),
        field('Record reference', ref),
        h('div', { class: 'actions' }, fetchBtn), fetchMsg)),
    h('section', { class: 'card' }, h('h2', null, '2. The record (optional)'),
      h('p', { class: 'hint' }, 'With the record\'s exact bytes, the first check compares them with the logged hash. A file keeps the bytes exact; pasted text must not be reformatted.'),
      field('Record bytes', recordText), field('Or open the record file', recordFile)),
    h('section', { class: 'card' }, h('h2', null, '3. Where to check'),
      field('Ethereum node (JSON-RPC URL)', node, 'Any node of the proof\'s chain. Default: the gateway\'s own; choose another you trust to be independent.'),
      field('Expected AuditAnchor contract (optional)', contract, 'A proof may name any contract: compare it with the address you know from another source.')),
    h('div', { class: 'actions' }, verifyBtn));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(verifyBtn, async () => {
      clear(result, h('p', { class: 'hint' }, 'Checking…'));
      let proof;
      try { proof = parseProof(proofText.value.trim()); } catch (err) { clear(result, notice('error', err.message)); return; }
      const bytes = recordBytes || (recordText.value ? utf8(recordText.value) : undefined);
      const url = node.value.trim();
      const r = await verifyProof(proof, { bytes, rpcUrl: url || undefined, expectedContract: contract.value.trim() || undefined });
      const verdict = !r.ok
        ? notice('error', h('strong', null, 'Not valid. '), 'At least one check failed: see the red step below. Do not rely on this record or log entry.')
        : proof.contentWithheld
          ? notice('warn', h('strong', null, 'Log entry anchored. '), `Entry ${proof.leafIndex} of the log (leaf hash ${proof.leafHash.slice(0, 10)}…) is anchored${r.steps.some((s) => s.id === 'chain' && s.status === 'ok') ? ` on chain ${proof.checkpoint.chainId}` : ' (the chain was not asked)'}. The proof withholds the content hash, so it does not show which record the entry is: the full proof, available to whoever may read the record, does.`)
        : r.complete
          ? notice('ok', h('strong', null, 'Valid. '), `${proof.leaf.type}/${proof.leaf.id} version ${proof.leaf.versionId} is in the log, and the log's root for ${proof.treeSize} entries is anchored on chain ${proof.checkpoint.chainId}.`)
          : notice('warn', h('strong', null, 'Valid as far as checked. '), 'Some checks were skipped (no record bytes or no node): see below.');
      verdict.id = 'verdict';
      verdict.tabIndex = -1; // focus moves to the verdict, so a keyboard or screen reader user lands on the answer
      verdict.dataset.verdict = !r.ok ? 'invalid' : r.complete ? 'valid' : 'partial';
      clear(result, h('section', { class: 'card' }, h('h2', null, 'Chain of evidence'), verdict, h('ol', { class: 'evidence-list' }, r.steps.map(stepCard))));
      result.querySelector('#verdict').focus?.();
    });
  });

  const timeline = h('div', { id: 'timeline', 'aria-live': 'polite' });
  const tlBtn = button('Check the timeline', () => busy(tlBtn, () => loadTimeline(timeline, node.value.trim())), { class: 'btn', id: 'timeline-load' });

  clear(main,
    h('h1', null, 'Verify a proof'),
    h('p', { class: 'lead' }, 'Check that a record version or an access-log entry is in the gateway\'s tamper-evident log, and that the log is anchored on Ethereum. Every check runs in your browser; you trust neither the gateway nor this page\'s server for the result: only the Ethereum node you choose.'),
    form, result,
    h('section', { class: 'card' }, h('h2', null, 'Checkpoint timeline'),
      h('p', { class: 'hint' }, 'The latest anchored checkpoints. Each must extend the one before it (a consistency proof, checked here) and match the root held on chain.'),
      h('div', { class: 'actions' }, tlBtn), timeline));
}

async function loadTimeline(box, nodeUrl) {
  clear(box, h('p', { class: 'hint' }, 'Loading checkpoints…'));
  try {
    // The newest 13, oldest first: 12 to show and the one before them,
    // which the oldest shown must extend.
    const res = await request('/anchor/checkpoints?before=latest&limit=13');
    const all = (res.checkpoints || []).slice().reverse();
    if (!all.length) { clear(box, notice('info', 'No checkpoint is anchored yet.')); return; }
    const shown = all.slice(-12);
    const rpc = nodeUrl ? new RPC(nodeUrl) : null;
    const ol = h('ol', { class: 'timeline' });
    clear(box, h('p', { class: 'hint' }, `The latest ${shown.length} anchored checkpoints, newest first.`), ol);
    const rows = [];
    for (let i = shown.length - 1; i >= 0; i--) {
      const c = shown[i];
      const chainBadge = badge('pending', 'Checking chain…');
      const consBadge = i > 0 || all.length > shown.length ? badge('pending', 'Checking consistency…') : badge('muted', 'First checkpoint');
      ol.append(h('li', { class: 'tl-item', dataset: { size: String(c.treeSize) } },
        h('p', { class: 'item-title' }, `${c.treeSize} entries`, ' ', chainBadge, ' ', consBadge),
        h('p', { class: 'mono hint' }, `root ${shortHex(c.root, 8)} · block ${c.blockNumber} · tx ${shortHex(c.txHash)} `, copyButton(c.txHash, 'Copy tx')),
        h('p', { class: 'hint' }, c.confirmed ? `anchored ${fmtDateTime(c.confirmed)}` : '')));
      const prev = i > 0 ? shown[i - 1] : all[all.length - shown.length - 1];
      rows.push({ c, prev, chainBadge, consBadge });
    }
    await Promise.all(rows.map(async ({ c, prev, chainBadge, consBadge }) => {
      if (rpc) {
        try {
          const r = await rootAt(rpc, c.contract, c.treeSize);
          const ok = r.root.toLowerCase() === c.root.toLowerCase();
          set(chainBadge, ok ? 'ok' : 'error', ok ? 'On chain' : 'Differs from chain');
        } catch { set(chainBadge, 'warn', 'Node unreachable'); }
      } else set(chainBadge, 'muted', 'No node');
      if (!prev) return;
      try {
        const p = await request(`/anchor/consistency?from=${prev.treeSize}&to=${c.treeSize}`);
        const err = p.fromRoot.toLowerCase() !== prev.root.toLowerCase() || p.toRoot.toLowerCase() !== c.root.toLowerCase()
          ? 'the roots differ from the checkpoints'
          : await verifyConsistency(prev.treeSize, c.treeSize, (p.proof || []).map(hexToBytes), hexToBytes(prev.root), hexToBytes(c.root));
        set(consBadge, err ? 'error' : 'ok', err ? 'Inconsistent' : `Extends ${prev.treeSize}`);
        if (err) consBadge.title = err;
      } catch (e) { set(consBadge, 'warn', 'Not checked'); consBadge.title = e.message; }
    }));
  } catch (e) {
    clear(box, notice('error', e.friendly || e.message));
  }
}

function set(b, kind, text) {
  b.className = `badge badge-${kind}`;
  b.textContent = text;
}

init();
