// DOM helpers: elements are built with createElement and textContent only
// (never innerHTML with data), so nothing a record contains can run.

/** h(tag, attrs, ...children): attrs may hold on* handlers, class, dataset, and plain attributes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value' && 'value' in el) el.value = v;
      else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'required' || k === 'hidden') el[k] = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let seq = 0;
export const uid = (p = 'f') => `${p}-${++seq}`;

/** field(label, control, hint): a labelled form control (the label names the control). */
export function field(label, control, hint) {
  if (!control.id) control.id = uid('in');
  const hintEl = hint ? h('p', { class: 'hint', id: uid('hint') }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), hintEl, control);
}

/** notice(kind, ...content): kind info | ok | warn | error. Errors are announced at once. */
export function notice(kind, ...content) {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...content);
}

/**
 * complain shows what is wrong with control in box (an alert) and puts the
 * focus on control, which names the complaint as its description: the
 * keyboard user is at the field to correct, and a screen reader reads the
 * complaint with it (the alert itself comes after the form's buttons).
 * The next input takes the mark away.
 */
export function complain(box, control, text) {
  const n = notice('error', text);
  n.id = uid('err');
  clear(box, n);
  const own = (control.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && !x.startsWith('err-'));
  control.setAttribute('aria-describedby', [...own, n.id].join(' '));
  control.setAttribute('aria-invalid', 'true');
  control.addEventListener('input', () => {
    control.removeAttribute('aria-invalid');
    control.setAttribute('aria-describedby', own.join(' '));
    if (!own.length) control.removeAttribute('aria-describedby');
  }, { once: true });
  control.focus();
  return n;
}

/**
 * errorNotice shows an error in plain words (err.friendly, after prefix),
 * with the server's or wallet's own words (err.detail) folded under
 * "Technical details": never the visible text.
 */
export function errorNotice(err, prefix = '', kind = 'error') {
  const text = err?.friendly || err?.message || String(err);
  const detail = err?.detail && err.detail !== text ? err.detail : '';
  return notice(kind, prefix ? `${prefix} ${text}` : text,
    detail ? h('details', null, h('summary', null, 'Technical details'), h('p', { class: 'mono' }, detail)) : null);
}

/** badge(kind, text): ok | warn | error | info | pending | alert. */
export const badge = (kind, text, title) => h('span', { class: `badge badge-${kind}`, title }, text);

export function button(text, onclick, attrs = {}) {
  return h('button', { type: 'button', class: attrs.class || 'btn', ...attrs, onclick }, text);
}

/**
 * busy runs fn with btn marked busy, and ignores the button (and its
 * form's Enter) until fn ends. aria-disabled rather than disabled: a
 * disabled button drops the keyboard focus to the page, and a keyboard or
 * screen reader user would lose their place at every action.
 */
export async function busy(btn, fn) {
  if (btn.getAttribute('aria-disabled') === 'true') return undefined;
  btn.setAttribute('aria-disabled', 'true');
  btn.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    btn.removeAttribute('aria-disabled');
    btn.removeAttribute('aria-busy');
  }
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function fmtDateTime(s) {
  if (!s) return '';
  const d = s instanceof Date ? s : new Date(s);
  return isNaN(d) ? String(s) : dateFmt.format(d);
}

export function fmtDate(s) {
  if (!s) return '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const [y, m, d] = s.split('-').map(Number);
    return dayFmt.format(new Date(y, m - 1, d));
  }
  const d = new Date(s);
  return isNaN(d) ? String(s) : dayFmt.format(d);
}

export const shortHex = (x, n = 6) => (x && x.length > 2 * n + 2 ? `${x.slice(0, n + 2)}…${x.slice(-n)}` : x || '');

export function fmtBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** copyButton copies text to the clipboard (for hashes). */
export function copyButton(text, label = 'Copy') {
  const b = button(label, async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
    setTimeout(() => (b.textContent = label), 1500);
  }, { class: 'btn btn-small btn-quiet', 'aria-label': `${label} ${text}` });
  return b;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** humanName renders a FHIR HumanName list. */
export function humanName(names) {
  if (!Array.isArray(names) || names.length === 0) return '';
  const n = names.find((x) => x.use === 'official') || names[0];
  if (n.text) return n.text;
  return [...(n.prefix || []), ...(n.given || []), n.family].filter(Boolean).join(' ');
}

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
