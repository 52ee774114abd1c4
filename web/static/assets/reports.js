// Test reports shared by the patient's and the practitioner's pages: one
// report in a list (with its attached files to download), and the upload
// form (a PDF or text attached as DiagnosticReport.presentedForm, sent with
// upload progress).
import { h, clear, field, notice, badge, button, busy, fmtDateTime, fmtDate, fmtBytes } from './ui.js';
import { upload } from './api.js';

export const MAX_UPLOAD = 5 * 1024 * 1024;

function b64ToBytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToB64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function downloadButton(att, label = 'Download') {
  const b = button(label, () => {
    const blob = new Blob([b64ToBytes(att.data)], { type: att.contentType || 'application/octet-stream' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: att.title || (att.contentType === 'application/pdf' ? 'report.pdf' : 'report.txt') });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }, { class: 'btn btn-small' });
  return b;
}

export function reportItem(r, extra) {
  const atts = (r.presentedForm || []).filter((a) => a.data);
  const size = (a) => a.size ? fmtBytes(Number(a.size)) : fmtBytes(Math.floor(a.data.length * 3 / 4));
  const kind = (a) => (a.contentType === 'application/pdf' ? 'PDF' : 'Text');
  return h('li', { class: 'item' },
    h('div', { class: 'item-main' },
      h('p', { class: 'item-title' }, r.code?.text || r.code?.coding?.[0]?.display || 'Test report', ' ', badge(r.status === 'final' ? 'ok' : 'info', r.status === 'final' ? 'Final' : r.status)),
      h('p', { class: 'hint' }, r.effectiveDateTime ? `Test date ${fmtDate(r.effectiveDateTime)}` : '', r.issued ? ` · added ${fmtDateTime(r.issued)}` : ''),
      r.conclusion ? h('p', { class: 'conclusion' }, r.conclusion) : null),
    h('div', { class: 'item-actions' }, atts.map((a) => downloadButton(a, `Download (${kind(a)}, ${size(a)})`)), extra));
}

/**
 * reportForm is the upload form of a test report about subject
 * ("Patient/<id>"). opts: idPrefix (ids of the controls: <p>-title,
 * <p>-date, <p>-desc, <p>-file, <p>-progress, <p>-submit), category (who
 * uploaded it, in words), token, onDone(report) after a successful upload,
 * failWords(err): the sentence that explains a refusal (null: the default).
 */
export function reportForm({ subject, token, idPrefix = 'rep', category = 'Uploaded by the patient', submitLabel = 'Upload report', onDone, failWords }) {
  const id = (s) => `${idPrefix}-${s}`;
  const title = h('input', { type: 'text', id: id('title'), required: true, maxlength: 120, placeholder: 'e.g. Blood test' });
  const today = () => new Date().toISOString().slice(0, 10);
  const when = h('input', { type: 'date', id: id('date'), value: today(), max: today() });
  const desc = h('textarea', { id: id('desc'), rows: 4, maxlength: 4000, placeholder: 'What was tested, and the results' });
  const file = h('input', { type: 'file', id: id('file'), accept: '.pdf,.txt,application/pdf,text/plain' });
  const progress = h('progress', { id: id('progress'), max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const progressText = h('span', { class: 'hint', 'aria-live': 'polite' });
  const formMsg = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: id('submit') }, submitLabel);
  const form = h('form', { class: 'form', novalidate: true },
    field('Name of the test', title),
    field('Date of the test', when),
    field('Description (optional if you attach a file)', desc),
    field('File (optional)', file, `A PDF or a text file, up to ${fmtBytes(MAX_UPLOAD)}.`),
    h('div', { class: 'progress-row' }, progress, progressText),
    h('div', { class: 'actions' }, submit), formMsg);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(submit, async () => {
      clear(formMsg);
      const f = file.files[0];
      if (!title.value.trim()) { clear(formMsg, notice('error', 'Give the test a name, for example "Blood test".')); title.focus(); return; }
      if (!f && !desc.value.trim()) { clear(formMsg, notice('error', 'Write a description or attach a file.')); desc.focus(); return; }
      let att;
      if (f) {
        const type = f.type || (f.name.endsWith('.pdf') ? 'application/pdf' : f.name.endsWith('.txt') ? 'text/plain' : '');
        if (type !== 'application/pdf' && type !== 'text/plain') { clear(formMsg, notice('error', 'This kind of file cannot be uploaded. Choose a PDF or a text file.')); return; }
        if (f.size > MAX_UPLOAD) { clear(formMsg, notice('error', `This file is ${fmtBytes(f.size)}; the limit is ${fmtBytes(MAX_UPLOAD)}. Choose a smaller file or scan at a lower resolution.`)); return; }
        if (f.size === 0) { clear(formMsg, notice('error', 'This file is empty.')); return; }
        const bytes = new Uint8Array(await f.arrayBuffer());
        if (type === 'application/pdf' && new TextDecoder().decode(bytes.subarray(0, 5)) !== '%PDF-') {
          clear(formMsg, notice('error', 'This file does not look like a PDF. Choose another file.'));
          return;
        }
        att = { contentType: type, data: bytesToB64(bytes), title: f.name.slice(0, 200), size: f.size };
      } else {
        const bytes = new TextEncoder().encode(desc.value.trim());
        att = { contentType: 'text/plain', data: bytesToB64(bytes), title: 'description.txt', size: bytes.length };
      }
      const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      const report = {
        resourceType: 'DiagnosticReport',
        status: 'final',
        category: [{ text: category }],
        code: { text: title.value.trim() },
        subject: { reference: subject },
        issued: now,
        presentedForm: [att],
      };
      if (when.value) report.effectiveDateTime = when.value;
      if (desc.value.trim()) report.conclusion = desc.value.trim();
      progress.hidden = false;
      progress.value = 0;
      progressText.textContent = 'Uploading… 0%';
      try {
        const saved = await upload('/fhir/DiagnosticReport', JSON.stringify(report), token, (x) => {
          progress.value = Math.round(x * 100);
          progressText.textContent = x >= 1 ? 'Uploaded, saving…' : `Uploading… ${Math.round(x * 100)}%`;
        });
        progress.value = 100;
        progressText.textContent = 'Done.';
        clear(formMsg, notice('ok', `"${report.code.text}" was uploaded.`));
        form.reset();
        when.value = today();
        await onDone?.(saved || report);
      } catch (err) {
        progressText.textContent = '';
        progress.hidden = true;
        const text = err?.friendly || err?.message || String(err);
        const words = failWords?.(err) || `The report could not be uploaded. ${text}`;
        const detail = err?.detail && err.detail !== text ? h('details', null, h('summary', null, 'Technical details'), h('p', { class: 'mono' }, err.detail)) : null;
        clear(formMsg, notice('error', words, detail));
      }
    });
  });
  return { el: form, title, focus: () => title.focus() };
}
