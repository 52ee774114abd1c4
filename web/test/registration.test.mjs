// The registration scenario end to end in Chromium, on one gateway, in
// order, with a screenshot of every step (docs/admin-guide.md and the
// registration parts of the patient and practitioner guides show them):
//
//   a new doctor (dev key 6) signs in, registers as a practitioner and
//   sees the request waiting; a third wallet (key 8) registers too; the
//   administrator (key 9, the embedded dev chain's default) verifies the
//   doctor and rejects the other with a reason, which that person sees; a
//   new patient (key 7) registers, a second request is refused, and the
//   administrator creates the patient's record; both sign in again; the
//   patient books with the doctor and shares test reports "View and
//   edit"; the doctor sees the appointment and uploads a PDF report for
//   the patient; the patient sees it and stops sharing; the report no
//   longer opens for the doctor; a regulator verifies the upload's audit
//   event on /verify; the administrator deactivates the doctor, whose
//   next click ends the session and whose sign-in is refused; the
//   patient's old registration tab cannot send a second request.
//
// Every refusal is asserted on the words the person sees.
//
// Environment: as portal.test.mjs (web/browser_test.go sets it); the
// gateway must run on its embedded dev chain without --admins (dev
// account (9) administers), or with --admins naming dev account (9).
import { describe, it, before, after } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fhir, DEV_KEYS, DEV_ADMIN_KEY, REGULATOR_KEY, CAIP10 } from './lib/fixtures.mjs';
import { harness, waitFor, assertLabelled, route, sessionToken, tomorrow, T } from './lib/harness.mjs';
import { checkPage } from './lib/a11y.mjs';
import { keyboard } from './lib/keyboard.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.FHIRGATE_URL || '').replace(/\/+$/, '').replace(/\/fhir$/, '');
const REGULATOR = process.env.FHIRGATE_REGULATOR_TOKEN;
const EHR = process.env.FHIRGATE_ADMIN_TOKEN; // a system client: the clinic's own record of a patient
const SHOTS = process.env.FHIRGATE_SCREENSHOTS || join(here, '..', 'screenshots');
if (!BASE || !REGULATOR) throw new Error('set FHIRGATE_URL and FHIRGATE_REGULATOR_TOKEN (go test ./web does)');

const H = harness(BASE, SHOTS);
const { person, signIn } = H;
// Every page state the scenario stops at (each screenshot) is checked
// with axe-core and for plain words, as in portal.test.mjs.
async function shot(page, name) {
  await checkPage(page, `reg-${name}`);
  await H.shot(page, `reg-${name}`);
}

const DOCTOR = { key: DEV_KEYS[6], prefix: 'Dr.', given: 'Aroha', family: 'Ngata', name: 'Dr. Aroha Ngata', qualification: 'MD', specialty: 'Dermatology', licence: '1234567893' };
const OTHER = { key: DEV_KEYS[8], given: 'Sam', family: 'Vance', name: 'Dr. Sam Vance', licence: '1000000004' };
const PATIENT = { key: DEV_KEYS[7], given: 'Noor', family: 'Haddad', name: 'Noor Haddad', birthDate: '1990-07-21', email: 'noor.haddad@example.org' };
// Someone the clinic already knows: the EHR holds their record (number and
// birth date), and they register from key (8) after their practitioner
// requests (rejected, withdrawn).
const KNOWN = { given: 'Sam', family: 'Vance', name: 'Sam Vance', birthDate: '1984-11-02', email: 'sam.vance@example.org', mrn: 'MRN-77120' };
const REPORT = 'Skin biopsy'; // the doctor uploads it
const OWN_REPORT = 'Allergy test'; // the patient uploads it
const REJECT_REASON = 'We could not find this licence number in the register. Please call the clinic.';
const DEACTIVATE_REASON = 'Left the clinic at the end of the month.';

// A small PDF (one empty page), enough for the upload's "%PDF-" check.
const PDF = Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n');

async function registerPractitioner(page, p) {
  await page.check('#kind-practitioner');
  await page.selectOption('#reg-prefix', 'Dr.');
  await page.fill('#reg-given', p.given);
  await page.fill('#reg-family', p.family);
  await page.fill('#reg-qualification', p.qualification || 'MD');
  if (p.specialty) await page.fill('#reg-specialty', p.specialty);
  await page.fill('#reg-licence', p.licence);
}

async function registerPatient(page, p) {
  await page.check('#kind-patient');
  await page.fill('#reg-given', p.given);
  await page.fill('#reg-family', p.family);
  await page.fill('#reg-birth', p.birthDate);
  await page.fill('#reg-email', p.email);
}

/**
 * verifiedSeen checks again on "Your request" after the administrator
 * verified it: the applicant's session ends (the wallet now speaks for a
 * record) and the portal says so, or the request shows as verified.
 */
async function verifiedSeen(page) {
  await page.click('#request-refresh');
  const el = await page.waitForSelector('#request-status:text("Verified: sign in again to start."), :text("the clinic verified your request")', { timeout: T });
  if (await el.getAttribute('id') !== 'request-status') {
    await page.waitForSelector('text=Your session has ended: the clinic verified your request, and your wallet is now linked to your record. Sign in again to start.');
  }
}

/** request is the administrator's queue entry of a person. */
const request = (name) => `.reg-item:has(.reg-name:text-is("${name}"))`;

// The steps build on each other: after the first failure the rest skip.
let broken = '';
function step(name, fn) {
  it(name, async (t) => {
    if (broken) { t.skip(`after the failure of "${broken}"`); return; }
    try {
      await fn(t);
    } catch (e) {
      broken = name;
      for (const [i, c] of H.contexts.entries()) for (const p of c.pages()) await H.shot(p, `failed-${i}`).catch(() => {});
      throw e;
    }
  });
}

describe('registration in Chromium', { concurrency: false }, () => {
  let info, doctor, other, patient, admin, relayOn;
  let applicantSession; // the patient's registration tab, kept for the last step
  let reportId, uploadEvent;

  before(async () => { info = await H.open(); });
  after(() => H.close());

  step('a new doctor signs in: the portal offers to register', async () => {
    doctor = await person(DOCTOR.key);
    await signIn(doctor.page);
    await doctor.page.waitForSelector('h1:text("Register")', { timeout: T });
    await doctor.page.waitForSelector('#account .who:has-text("Not registered yet")');
    assert.match(doctor.page.url(), /#register$/, 'the URL names the page only');
    await shot(doctor.page, '01-register');
  });

  step('the doctor registers as a practitioner and sees the request waiting', async () => {
    const { page } = doctor;
    await registerPractitioner(page, DOCTOR);
    // the form says what is missing, in words
    await page.fill('#reg-licence', '');
    await page.click('#reg-submit');
    await page.waitForSelector('text=Write your licence number.');
    await page.fill('#reg-licence', DOCTOR.licence);
    await assertLabelled(page, 'register (practitioner)');
    await shot(page, '02-practitioner-form');
    await page.click('#reg-submit');
    await page.waitForSelector('h1:text("Your request")', { timeout: T });
    await page.waitForSelector('#request-status:text("Waiting for the clinic to check your details.")');
    await page.waitForSelector('.reg-history >> text=Request sent');
    await shot(page, '03-request-pending');
  });

  step('another wallet registers as a practitioner', async () => {
    other = await person(OTHER.key);
    await signIn(other.page);
    await other.page.waitForSelector('h1:text("Register")', { timeout: T });
    await registerPractitioner(other.page, OTHER);
    await other.page.click('#reg-submit');
    await other.page.waitForSelector('#request-status:text("Waiting for the clinic")', { timeout: T });
  });

  step('the administrator sees the queue, verifies the doctor and rejects the other with a reason', async () => {
    admin = await person(DEV_ADMIN_KEY);
    const { page } = admin;
    await signIn(page);
    await page.waitForSelector('h1:text("Requests")', { timeout: T });
    await page.waitForSelector('#account .who:has-text("Administrator")');
    await page.waitForSelector(`${request(DOCTOR.name)} >> text=${DOCTOR.licence}`, { timeout: T });
    await page.waitForSelector(`${request(DOCTOR.name)} >> text=Dermatology`);
    await page.waitForSelector(request(OTHER.name));
    await assertLabelled(page, 'requests');
    await shot(page, '04-admin-queue');
    // a rejection needs a reason the person will see
    await page.click(`${request(OTHER.name)} button.reject`);
    await page.waitForSelector(`${request(OTHER.name)} >> text=Write the reason`);
    await page.fill(`${request(OTHER.name)} textarea.reject-reason`, REJECT_REASON);
    await page.click(`${request(OTHER.name)} button.reject`);
    await page.waitForSelector(`#queue-outcome >> text=Not accepted: ${OTHER.name}'s request was rejected`, { timeout: T });
    await page.click(`${request(DOCTOR.name)} button.verify`);
    await page.waitForSelector(`#queue-outcome >> text=Verified: ${DOCTOR.name} is now a practitioner`, { timeout: T });
    await page.waitForSelector(request(DOCTOR.name), { state: 'detached', timeout: T });
    await shot(page, '05-admin-verified');
  });

  step('the rejected person sees why, in the administrator\'s words', async () => {
    const { page } = other;
    await page.click('#request-refresh');
    await page.waitForSelector(`#request-status:text("Not accepted: ${REJECT_REASON}")`, { timeout: T });
    await page.waitForSelector('.reg-history >> text=by an administrator');
    await shot(page, '06-request-rejected');
    // a new request, withdrawn after a confirmation
    await page.click('a:has-text("Send a new request")');
    await page.waitForSelector('h1:text("Register")', { timeout: T });
    await registerPractitioner(page, { ...OTHER, licence: '1000000012' });
    await page.click('#reg-submit');
    await page.waitForSelector('#request-status:text("Waiting for the clinic")', { timeout: T });
    const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent || '');
    await page.click('#withdraw');
    await page.waitForSelector('text=Withdraw this request? The clinic will not see it any more.');
    assert.equal(await focused(), 'withdraw-no', '"Keep it" has the focus');
    await page.keyboard.press('Escape'); // keeps the request
    await page.waitForSelector('#withdraw');
    assert.equal(await focused(), 'withdraw');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#withdraw-yes');
    await shot(page, '06b-withdraw-confirm');
    await page.focus('#withdraw-yes');
    await page.keyboard.press('Enter');
    await page.waitForSelector('text=Your request is withdrawn.', { timeout: T });
    assert.match(await focused(), /Your request is withdrawn/, 'the focus goes to what happened');
    await page.waitForSelector('#request-status:text("Withdrawn.")');
    await page.waitForSelector('text=Earlier requests');
  });

  step('a new patient registers; a second request is refused; the administrator creates the record', async () => {
    patient = await person(PATIENT.key);
    const { page } = patient;
    await signIn(page);
    await page.waitForSelector('h1:text("Register")', { timeout: T });
    await registerPatient(page, PATIENT);
    await page.fill('#reg-email', '');
    await page.click('#reg-submit');
    await page.waitForSelector('text=Give an email address or a phone number');
    await page.fill('#reg-email', PATIENT.email);
    await assertLabelled(page, 'register (patient)');
    await shot(page, '07-patient-form');
    await page.click('#reg-submit');
    await page.waitForSelector('#request-status:text("Waiting for the clinic to check your details.")', { timeout: T });
    // a second request while one waits
    await route(page, 'register');
    await page.waitForSelector('text=You already sent a request');
    await registerPatient(page, PATIENT);
    await page.click('#reg-submit');
    await page.waitForSelector('text=You already have a request waiting. Withdraw it first', { timeout: T });
    await shot(page, '08-second-request-refused');
    await route(page, 'request');
    await page.waitForSelector('#request-status', { timeout: T });

    const a = admin.page;
    await a.click('#queue-show');
    await a.waitForSelector(`${request(PATIENT.name)} >> text=${PATIENT.email}`, { timeout: T });
    await a.click(`${request(PATIENT.name)} button.verify`); // "Create a new record" is the default
    await a.waitForSelector(`#queue-outcome >> text=Verified: a new record was created for ${PATIENT.name}`, { timeout: T });
    applicantSession = await page.evaluate(() => sessionStorage.getItem('fhirgate.session'));
    await verifiedSeen(page);
    await shot(page, '09-request-verified');
  });

  step('both sign in again: now a practitioner and a patient', async () => {
    await verifiedSeen(doctor.page);
    await doctor.page.click('#signin-again, #signin');
    await doctor.page.waitForSelector('h1:text("My appointments")', { timeout: T });
    await doctor.page.waitForSelector('#account .who:has-text("Practitioner")');
    await patient.page.click('#signin-again, #signin');
    await patient.page.waitForSelector('h1:text("My record")', { timeout: T });
    await patient.page.waitForSelector(`text=${PATIENT.name}`);
  });

  step('the doctor\'s account page shows the verification', async () => {
    const { page } = doctor;
    await route(page, 'account');
    await page.waitForSelector('#account-history .reg-history >> text=Verified', { timeout: T });
    await page.waitForSelector('#account-history .reg-history >> text=by an administrator');
    await shot(page, '10-doctor-account');
  });

  step('the patient\'s activity shows the administrator who created the record', async () => {
    const { page } = patient;
    await route(page, 'activity');
    await waitFor(page, '.event >> text=An administrator', { timeout: 30000, reload: async () => { await page.click('#activity-refresh').catch(() => {}); } });
    await shot(page, '10b-patient-activity-admin');
  });

  step('the patient books with the doctor and shares test reports "View and edit"', async () => {
    const { page } = patient;
    await route(page, 'appointments');
    await page.fill('#book-q', DOCTOR.family);
    await page.click('#book-search');
    await page.waitForSelector(`label:has-text("${DOCTOR.name}")`, { timeout: T });
    await page.check('input[name="book-choice"]');
    await page.fill('#book-date', tomorrow());
    await page.fill('#book-time', '11:00');
    await page.fill('#book-reason', 'Mole check');
    await page.click('#book-submit');
    await page.waitForSelector(`text=Booked with ${DOCTOR.name}`, { timeout: T });

    // a report of the patient's own, which the doctor sees only while it is shared
    await route(page, 'reports');
    await page.fill('#rep-title', OWN_REPORT);
    await page.fill('#rep-desc', 'No reaction to penicillin.');
    await page.click('#rep-submit');
    await page.waitForSelector(`text="${OWN_REPORT}" was uploaded`, { timeout: T });

    await route(page, 'sharing');
    await page.waitForSelector('#grants >> text=You are not sharing', { timeout: T });
    relayOn = !(await page.isDisabled('#method input[value="relay"]'));
    await page.check(`#method input[value="${relayOn ? 'relay' : 'wallet'}"]`);
    await page.fill('#grant-q', DOCTOR.family);
    await page.click('#grant-search');
    await page.waitForSelector(`label:has-text("${DOCTOR.name}")`, { timeout: T });
    await page.check('#type-DiagnosticReport');
    await page.check('#level-crus');
    await page.click('#grant-submit');
    await page.waitForSelector('#changes li[data-state="confirmed"]', { timeout: 90000 });
    await page.waitForSelector('#grants >> text=Test reports', { timeout: T });
    await shot(page, '11-patient-shares');
  });

  step('the doctor sees the appointment and uploads a test report (PDF) for the patient', async () => {
    const { page } = doctor;
    await route(page, 'appointments');
    await page.waitForSelector('#upcoming >> text=Mole check', { timeout: T });
    await route(page, 'patients');
    // The grant is on chain at once; the gateway applies it when its follower has read the block.
    const ready = async () => {
      const b = await page.$('button:has-text("Upload a test report")');
      if (!b) return false;
      await b.click();
      return !!(await page.waitForSelector('#doc-rep-title', { timeout: 2000 }).catch(() => null));
    };
    let ok = false;
    for (let i = 0; i < 20 && !(ok = await ready()); i++) {
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#patients .patient-card') || /No patient/.test(document.querySelector('#patients')?.textContent || ''), null, { timeout: T });
    }
    assert.ok(ok, 'the doctor may upload a test report for the patient');
    await page.fill('#doc-rep-title', REPORT);
    await page.fill('#doc-rep-desc', 'Benign naevus. No further treatment needed.');
    await page.setInputFiles('#doc-rep-file', { name: 'skin-biopsy.pdf', mimeType: 'application/pdf', buffer: PDF });
    await assertLabelled(page, 'upload for a patient');
    await shot(page, '12-doctor-upload');
    await page.click('#doc-rep-submit');
    await page.waitForSelector(`.records >> text=${REPORT}`, { timeout: T });
    await page.waitForSelector(`.records >> text="${REPORT}" was uploaded`);
    await page.waitForSelector('.records button:has-text("Download (PDF")');
    await page.waitForSelector(`.records >> text=${OWN_REPORT}`);
    await shot(page, '13-doctor-uploaded');
  });

  // The doctor keeps reading what they wrote themselves (the access table:
  // a practitioner reads, updates and deletes what they authored); what the
  // patient stops sharing is the rest: the patient's own report no longer
  // opens, and no new report can be added.
  step('the patient sees the report and stops sharing; the patient\'s report no longer opens for the doctor, and uploads are refused', async () => {
    const { page } = patient;
    await route(page, 'reports');
    await page.waitForSelector(`.items .item:has-text("${REPORT}")`, { timeout: T });
    await page.waitForSelector(`.items .item:has-text("${REPORT}") button:has-text("Download (PDF")`);
    await shot(page, '14-patient-reports');
    const token = await sessionToken(page);
    const ref = await page.evaluate(() => JSON.parse(sessionStorage.getItem('fhirgate.session')).ref);
    const mine = await fhir(BASE, token, 'GET', `DiagnosticReport?patient=${ref}`);
    reportId = mine.data.entry.map((e) => e.resource).find((r) => r.code?.text === REPORT).id;

    await route(page, 'sharing');
    const stop = await waitFor(page, `button[aria-label="Stop sharing Test reports with ${DOCTOR.name}"]`);
    await page.check(`#method input[value="${relayOn ? 'relay' : 'wallet'}"]`);
    const n = await page.$$eval('#changes li[data-state="confirmed"]', (l) => l.length);
    await stop.click();
    await page.waitForFunction((k) => document.querySelectorAll('#changes li[data-state="confirmed"]').length === k + 1, n, { timeout: 90000 });

    const d = doctor.page;
    let refused = false;
    for (let i = 0; i < 30 && !refused; i++) {
      await d.click(`.records .item:has-text("${OWN_REPORT}") button:has-text("Open report")`);
      refused = !!(await d.waitForSelector('.report-open >> text=This report no longer opens: the patient stopped sharing it with you.', { timeout: 1500 }).catch(() => null));
    }
    assert.ok(refused, 'the doctor is told in words that the patient\'s report no longer opens');
    await shot(d, '15-doctor-refused');
    await d.click('button:has-text("Upload a test report")');
    await d.fill('#doc-rep-title', 'Follow-up biopsy');
    await d.fill('#doc-rep-desc', 'Healing well.');
    await d.click('#doc-rep-submit');
    await d.waitForSelector('text=The patient no longer lets you add test reports.', { timeout: T });
    await shot(d, '15b-doctor-upload-refused');
  });

  step('a regulator verifies the proof of the upload', async () => {
    const { page } = await person(null);
    // The upload's AuditEvent: the doctor's create of the report.
    let ev;
    for (let i = 0; i < 20 && !ev; i++) {
      const evs = await fhir(BASE, REGULATOR, 'GET', 'AuditEvent?_sort=-date&_count=200');
      assert.equal(evs.status, 200, evs.text);
      ev = (evs.data.entry || []).map((e) => e.resource).find((r) => r.subtype?.some((s) => s.code === 'create')
        && r.outcome === '0' && (r.entity || []).some((e) => e.what?.reference?.startsWith(`DiagnosticReport/${reportId}`)));
      if (!ev) await new Promise((r) => setTimeout(r, 1000));
    }
    assert.ok(ev, 'the upload is an AuditEvent');
    await page.goto(`${BASE}/verify`);
    await page.click('details.fetch summary');
    await page.fill('#reg-token', REGULATOR);
    await page.fill('#reg-ref', `AuditEvent/${ev.id}`);
    for (let i = 0; i < 20; i++) {
      await page.click('#fetch-proof');
      const m = await page.waitForSelector('text=/Proof and record fetched|not anchored yet/', { timeout: T });
      if (/fetched/.test(await m.textContent())) break;
      await page.waitForTimeout(1000);
    }
    await page.click('#verify');
    await page.waitForSelector('#verdict[data-verdict="valid"]', { timeout: T });
    await page.fill('#reg-token', ''); // never in a screenshot
    await shot(page, '16-regulator-verifies-upload');
    uploadEvent = ev.id;
  });

  step('a regulator signs in with a wallet and fetches the proof with that sign-in', async (t) => {
    if (process.env.FHIRGATE_WALLET_REGULATOR !== '1') { t.skip('this gateway names no wallet regulator (web/browser_test.go does: --regulators)'); return; }
    const { page } = await person(REGULATOR_KEY);
    await signIn(page);
    await page.waitForSelector('#account .who:has-text("Regulator")');
    await page.waitForSelector('h1:text("Verify proofs")');
    await page.click('a:has-text("Open the verification page")');
    await page.waitForSelector('h1:text("Verify a proof")', { timeout: T });
    await page.waitForSelector('text=Filled in from your sign-in as a regulator in this tab.');
    await page.fill('#reg-ref', `AuditEvent/${uploadEvent}`);
    await page.click('#fetch-proof');
    await page.waitForSelector('text=Proof and record fetched', { timeout: T });
    await page.click('#verify');
    await page.waitForSelector('#verdict[data-verdict="valid"]', { timeout: T });
  });

  step('the administrator deactivates the doctor: the doctor\'s next click ends the session, and sign-in is refused', async () => {
    const { page } = admin;
    await route(page, 'practitioners');
    const item = `.pract-item:has(.pract-name:text-is("${DOCTOR.name}"))`;
    await page.waitForSelector(`${item} >> text=Active`, { timeout: T });
    await page.click(`${item} button:has-text("Deactivate")`);
    await page.fill(`${item} textarea.pract-reason`, DEACTIVATE_REASON);
    await assertLabelled(page, 'practitioners');
    await shot(page, '17-admin-deactivate');
    await page.click(`${item} button.pract-confirm`);
    await page.waitForSelector(`#pract-outcome >> text=${DOCTOR.name} is deactivated`, { timeout: T });
    await page.waitForSelector(`${item} >> text=Deactivated`);
    await shot(page, '18-admin-deactivated');
    await route(page, 'lostwallet');
    await page.waitForSelector('h1:text("When someone loses their wallet")');
    await shot(page, '19-admin-lost-wallet');

    const d = doctor.page;
    let ended = false;
    for (let i = 0; i < 10 && !ended; i++) {
      await d.click(i % 2 ? 'nav a[href="#appointments"]' : 'nav a[href="#patients"]', { timeout: 2000 }).catch(() => {});
      ended = !!(await d.waitForSelector('text=Your session has ended: an administrator deactivated your practitioner account.', { timeout: 1500 }).catch(() => null));
    }
    assert.ok(ended, 'the deactivated doctor\'s next click says the session has ended');
    await d.waitForSelector('#signin');
    await shot(d, '20-doctor-session-ended');
    await d.click('#signin');
    await d.waitForSelector('text=Your practitioner account is not active', { timeout: T });
    await shot(d, '21-doctor-signin-refused');
  });

  step('the administrator reactivates the doctor; the doctor\'s lost wallet is replaced by a new one', async () => {
    const { page } = admin;
    await route(page, 'practitioners');
    const item = `.pract-item:has(.pract-name:text-is("${DOCTOR.name}"))`;
    await page.click(`${item} button:has-text("Reactivate")`);
    await page.fill(`${item} textarea.pract-reason`, 'Back at the clinic.');
    await page.click(`${item} button.pract-confirm`);
    await page.waitForSelector(`#pract-outcome >> text=${DOCTOR.name} is active again and can sign in.`, { timeout: T });

    // The doctor's new wallet (a key nobody used) registers with the same details.
    const fresh = await person('0x' + randomBytes(32).toString('hex'));
    await signIn(fresh.page);
    await fresh.page.waitForSelector('h1:text("Register")', { timeout: T });
    await registerPractitioner(fresh.page, DOCTOR);
    await fresh.page.click('#reg-submit');
    await fresh.page.waitForSelector('#request-status:text("Waiting for the clinic")', { timeout: T });

    await route(page, 'requests');
    const req = request(DOCTOR.name);
    await page.waitForSelector(req, { timeout: T });
    await page.check(`${req} input[value="replace"]`);
    await page.waitForSelector(`${req} select.replaces option:nth-child(2)`, { state: 'attached', timeout: T });
    const value = await page.$eval(`${req} select.replaces`, (sel, n) => [...sel.options].find((o) => o.textContent.startsWith(n))?.value, DOCTOR.name);
    assert.ok(value, 'the doctor is in the list of practitioners');
    await page.selectOption(`${req} select.replaces`, value);
    await assertLabelled(page, 'requests (replace a lost wallet)');
    await shot(page, '23-admin-replace-wallet');
    await page.click(`${req} button.verify`);
    await page.waitForSelector(`#queue-outcome >> text=Verified: the new wallet now signs in to ${DOCTOR.name}'s record; the lost wallet no longer works.`, { timeout: T });

    // The new wallet signs in to the same record; the old one is linked to nothing now.
    await verifiedSeen(fresh.page);
    await fresh.page.click('#signin');
    await fresh.page.waitForSelector('h1:text("My appointments")', { timeout: T });
    await route(fresh.page, 'account');
    await fresh.page.waitForSelector('#account-history .reg-history >> text=Verified', { timeout: T });
    await shot(fresh.page, '24-doctor-new-wallet-account');
    await doctor.page.click('#signin');
    await doctor.page.waitForSelector('#request-status:text("this wallet is no longer linked to your record")', { timeout: T });
    await shot(doctor.page, '26-old-wallet-no-longer-linked');
  });

  step('someone the clinic knows registers; the administrator links the clinic\'s record by its number', async (t) => {
    if (!EHR) { t.skip('no FHIRGATE_ADMIN_TOKEN: the clinic\'s own record cannot be created'); return; }
    const rec = await fhir(BASE, EHR, 'POST', 'Patient', {
      resourceType: 'Patient', name: [{ given: [KNOWN.given], family: KNOWN.family }], birthDate: KNOWN.birthDate,
      identifier: [{ system: 'urn:example:mrn', value: KNOWN.mrn, type: { text: 'Medical record number' } }],
    });
    assert.equal(rec.status, 201, rec.text);
    const { page } = other;
    await route(page, 'register');
    await page.waitForSelector('h1:text("Register")', { timeout: T });
    await registerPatient(page, KNOWN);
    await page.fill('#reg-clinic-number', 'MRN 77120');
    await page.click('#reg-submit');
    await page.waitForSelector('#request-status:text("Waiting for the clinic")', { timeout: T });

    const a = admin.page;
    await a.click('#queue-show');
    const req = request(KNOWN.name);
    await a.waitForSelector(`${req} >> text=MRN 77120`, { timeout: T });
    await a.check(`${req} input[value="link"]`);
    await a.fill(`${req} input.clinic-number`, 'MRN-77121'); // a typo
    await a.click(`${req} button.verify`);
    await a.waitForSelector(`${req} >> text=No single record has that record number and the birth date in the request.`, { timeout: T });
    await a.fill(`${req} input.clinic-number`, KNOWN.mrn);
    await assertLabelled(a, 'requests (link a record)');
    await shot(a, '25-admin-link-record');
    await a.click(`${req} button.verify`);
    await a.waitForSelector(`#queue-outcome >> text=Verified: ${KNOWN.name}'s wallet is now linked to the clinic's record ${KNOWN.mrn}`, { timeout: T });

    await verifiedSeen(page);
    await page.click('#signin');
    await page.waitForSelector('h1:text("My record")', { timeout: T });
    await page.waitForSelector(`text=${KNOWN.mrn}`);
  });

  step('a practitioner the clinic\'s EHR added but nobody verified is refused at sign-in, in words', async (t) => {
    if (!EHR) { t.skip('no FHIRGATE_ADMIN_TOKEN'); return; }
    const key = '0x' + randomBytes(32).toString('hex');
    const p = await person(key);
    const rec = await fhir(BASE, EHR, 'POST', 'Practitioner', {
      resourceType: 'Practitioner', active: false, name: [{ prefix: ['Dr.'], given: ['Ines'], family: 'Moreau' }],
      identifier: [{ system: CAIP10, value: `eip155:${info.chainId}:${p.wallet.address}` }],
    });
    assert.equal(rec.status, 201, rec.text);
    await signIn(p.page, { expect: null });
    await p.page.waitForSelector('[role="alert"]:has-text("Your practitioner account is not active: an administrator has not verified it yet, or deactivated it.")', { timeout: T });
    await shot(p.page, '27-unverified-practitioner-signin');
  });

  // A tab left open on the Register page since before the verification:
  // its registration session ended when the wallet was linked, so it can
  // send nothing; and the wallet, now a patient's, may not register again.
  step('the patient\'s old registration tab cannot send a second request', async () => {
    const p = await person(PATIENT.key);
    await p.ctx.addInitScript((s) => { if (!sessionStorage.getItem('fhirgate.session')) sessionStorage.setItem('fhirgate.session', s); }, applicantSession);
    await p.page.goto(`${BASE}/#register`);
    await p.page.waitForSelector('text=Your session has ended: the clinic verified your request', { timeout: T });
    await shot(p.page, '22-old-tab-session-ended');
    const old = JSON.parse(applicantSession).token;
    const res = await fetch(`${BASE}/registration`, { method: 'POST', headers: { Authorization: `Bearer ${old}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'patient', name: { given: PATIENT.given, family: PATIENT.family }, birthDate: PATIENT.birthDate, email: PATIENT.email }) });
    assert.equal(res.status, 401, 'the old registration session is over');
    const now = await sessionToken(patient.page);
    const again = await fetch(`${BASE}/registration`, { method: 'POST', headers: { Authorization: `Bearer ${now}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'patient', name: { given: PATIENT.given, family: PATIENT.family }, birthDate: PATIENT.birthDate, email: PATIENT.email }) });
    assert.equal(again.status, 403, 'a patient may not register again');
    assert.match(JSON.stringify(await again.json()), /already linked/i, 'the refusal says why in words');
  });

  step('registering and the queue work at phone width', async () => {
    const phone = { width: 390, height: 844 };
    const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const p = await person('0x' + randomBytes(32).toString('hex'), { viewport: phone });
    await signIn(p.page);
    await p.page.waitForSelector('h1:text("Register")', { timeout: T });
    await registerPractitioner(p.page, { ...OTHER, given: 'Lee', family: 'Okoro', licence: '1000000020' });
    assert.ok((await overflow(p.page)) <= 1, 'no sideways scrolling on Register at phone width');
    await shot(p.page, 'phone-register');
    await p.page.click('#reg-submit');
    await p.page.waitForSelector('#request-status:text("Waiting for the clinic")', { timeout: T });
    assert.ok((await overflow(p.page)) <= 1, 'no sideways scrolling on Your request at phone width');

    const { page } = admin;
    await page.setViewportSize(phone);
    await route(page, 'requests');
    await page.click('#queue-show');
    await page.waitForSelector(request('Dr. Lee Okoro'), { timeout: T });
    assert.ok((await overflow(page)) <= 1, 'no sideways scrolling in the queue at phone width');
    await shot(page, 'phone-admin-queue');
    await route(page, 'practitioners');
    await page.waitForSelector('.pract-item', { timeout: T });
    assert.ok((await overflow(page)) <= 1, 'no sideways scrolling in the practitioners at phone width');
    await page.setViewportSize({ width: 1100, height: 860 });
  });

  // The same flows with the keyboard alone (no click, no fill: Tab,
  // Shift+Tab, typing, Enter, Space, arrows), with wallets of this step
  // only: every stop shows its focus ring (lib/keyboard.mjs), a new page
  // puts the focus on its heading, and every outcome is announced where
  // the keyboard user is (it has the focus, is the focused field's
  // description, or comes next).
  step('keyboard only: a practitioner and a patient register, the administrator verifies one and rejects the other', async () => {
    const doc = { given: 'Ravi', family: 'Keyes', name: 'Dr. Ravi Keyes', qualification: 'MBBS', licence: '1000000038' };
    const pat = { given: 'Ana', family: 'Lindqvist', name: 'Ana Lindqvist', birthDate: '1979-03-08', email: 'ana.lindqvist@example.org' };
    const reason = 'We have no record of you: please bring an identity document to the front desk.';
    const open = async (key) => keyboard((await person(key)).page);
    /** signInKb: from the top of the portal, the skip link first, Tab to sign in, Enter; the focus lands on heading (ready: the page is drawn). */
    const signInKb = async (k, heading, ready) => {
      await k.kb.press('Tab');
      assert.equal((await k.focused()).id, 'skip', 'the skip link comes first');
      await k.tabTo('#signin');
      await k.kb.press('Enter');
      await k.onHeading(heading);
      await k.page.waitForSelector(ready, { timeout: T });
      await k.onHeading(heading);
    };
    const typeInto = async (k, selector, text) => { await k.tabTo(selector); await k.kb.type(text); };

    // 1. A practitioner: "I am a practitioner" by arrow key, the form, a complaint, the request.
    const d = await open('0x' + randomBytes(32).toString('hex'));
    await d.page.goto(`${BASE}/`);
    await signInKb(d, 'Register', '#kind-patient');
    await d.tabTo('#kind-patient'); // nothing is chosen yet: Tab enters the group at its first choice
    await d.kb.press('ArrowDown'); // moves to "I am a practitioner" and chooses it
    await d.page.waitForSelector('#reg-practitioner');
    assert.ok(await d.page.isChecked('#kind-practitioner'));
    assert.equal((await d.focused()).id, 'kind-practitioner', 'the focus stays on the choice (the form follows it)');
    await typeInto(d, '#reg-given', doc.given); // (the title "Dr." is chosen already)
    await typeInto(d, '#reg-family', doc.family);
    await typeInto(d, '#reg-qualification', doc.qualification);
    await d.tabTo('#reg-licence');
    await d.kb.press('Enter'); // no licence number yet
    await d.announced('Write your licence number.');
    assert.equal((await d.focused()).id, 'reg-licence', 'the complaint puts the focus on the field to correct');
    await checkPage(d.page, 'reg-keyboard-complaint');
    await d.kb.type(doc.licence);
    await d.kb.press('Enter');
    await d.onHeading('Your request');
    await d.announced('Waiting for the clinic to check your details.');

    // 2. A patient: Space chooses "I am a patient"; the date typed; Enter in the last field sends.
    const p = await open('0x' + randomBytes(32).toString('hex'));
    await p.page.goto(`${BASE}/`);
    await signInKb(p, 'Register', '#kind-patient');
    await p.tabTo('#kind-patient');
    await p.kb.press('Space');
    await p.page.waitForSelector('#reg-patient');
    assert.equal((await p.focused()).id, 'kind-patient');
    await typeInto(p, '#reg-given', pat.given);
    await typeInto(p, '#reg-family', pat.family);
    await p.tabTo('#reg-birth');
    // The date field's order (day or month first) follows the browser's
    // language: type it one way, and the other if it read wrongly.
    const [y, m, dd] = pat.birthDate.split('-');
    await p.kb.type(`${dd}${m}${y}`);
    if (await p.page.inputValue('#reg-birth') !== pat.birthDate) {
      await p.kb.press('Shift+Tab');
      await p.kb.press('Shift+Tab');
      await p.kb.type(`${m}${dd}${y}`);
    }
    assert.equal(await p.page.inputValue('#reg-birth'), pat.birthDate);
    await typeInto(p, '#reg-email', pat.email);
    await p.kb.press('Enter');
    await p.onHeading('Your request');
    await p.announced('Waiting for the clinic to check your details.');
    await checkPage(p.page, 'reg-keyboard-request');

    // 3. The administrator: verifies the practitioner (creates the record), then rejects the patient with a typed reason.
    const a = await open(DEV_ADMIN_KEY);
    await a.page.goto(`${BASE}/`);
    await signInKb(a, 'Requests', request(doc.name));
    await a.page.waitForSelector(request(pat.name));
    await a.tabTo(`${request(doc.name)} button.verify`, { max: 200 }); // "Create the record" is chosen already
    await a.kb.press('Enter');
    await a.announced(`Verified: ${doc.name} is now a practitioner on this gateway`);
    await a.page.waitForSelector(request(doc.name), { state: 'detached', timeout: T });
    await a.tabTo(`${request(pat.name)} button.reject`, { max: 200 });
    await a.kb.press('Enter'); // no reason yet
    await a.announced('Write the reason: the person sees it');
    assert.ok(await a.isFocused(`${request(pat.name)} textarea.reject-reason`), 'the complaint puts the focus on the reason');
    await a.kb.type(reason);
    await a.tabTo(`${request(pat.name)} button.reject`);
    await a.kb.press('Enter');
    await a.announced(`Not accepted: ${pat.name}'s request was rejected`);
    await checkPage(a.page, 'reg-keyboard-admin');

    // 4. The patient checks again: the reason, read out. The practitioner checks again: signed out
    //    (the wallet now speaks for the record), told why next to the heading, and signs in again.
    await p.tabTo('#request-refresh');
    await p.kb.press('Enter');
    await p.announced(`Not accepted: ${reason}`);
    await d.tabTo('#request-refresh');
    await d.kb.press('Enter');
    const ended = await d.page.waitForSelector('h1:text("Your health records, your decision"), #request-status:text("Verified: sign in again to start.")', { timeout: T });
    if (await ended.evaluate((el) => el.tagName === 'H1')) {
      await d.onHeading('Your health records, your decision');
      await d.announced('Your session has ended: the clinic verified your request');
      await d.tabTo('#signin');
    } else {
      await d.announced('Verified: sign in again to start.');
      await d.tabTo('#signin-again');
    }
    await d.kb.press('Enter');
    await d.onHeading('My appointments');
  });

  step('keeps everything on the gateway: no CSP violation, no outside request, no PHI in URLs', async () => {
    assert.deepEqual(H.problems, []);
    for (const u of H.urls) {
      // (a practitioner's name is the care directory's, searched by patients: not PHI)
      for (const phi of ['Haddad', 'Noor', '1990-07-21', 'Lindqvist', '1979-03-08', 'noor.haddad', 'Vance', '1984-11-02', 'MRN-7712', 'Okoro', 'Biopsy', 'biopsy', DOCTOR.licence]) {
        assert.ok(!decodeURIComponent(u).includes(phi), `PHI "${phi}" in a URL: ${u}`);
      }
    }
  });
});
