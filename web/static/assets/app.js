// The portal's shell: sign-in with the wallet, the session, navigation
// between pages (hash routes that name pages only: no identifiers or PHI
// in URLs), and plain-words error reporting.
import { h, clear, notice, button, busy, shortHex } from './ui.js';
import { loadSession, saveSession, clearSession, FHIR, setUnauthorizedHandler, wellKnown } from './api.js';
import * as wallet from './wallet.js';
import { patientPages } from './patient.js';
import { practitionerPages } from './practitioner.js';
import { applicantPages, firstApplicantPage } from './register.js';
import { adminPages } from './admin.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const account = document.getElementById('account');

let session = loadSession();
let generation = 0; // bumps on every render, so late answers of an old page are dropped

/** report shows an error in plain words in el (with the technical detail folded away). */
export function report(el, err, prefix = '') {
  const text = err?.friendly || err?.message || String(err);
  const detail = err?.detail && err.detail !== text ? err.detail : '';
  const n = notice('error', prefix ? `${prefix} ${text}` : text, detail ? h('details', null, h('summary', null, 'Technical details'), h('p', { class: 'mono' }, detail)) : null);
  clear(el, n);
  return n;
}

let signedOut = ''; // why the last session ended: kept for the render the hash change causes

function signOut(message) {
  clearSession();
  session = null;
  signedOut = message || '';
  location.hash = '';
  render(message);
}

// The gateway ends a session when the wallet's link or the practitioner's
// activation changes (401 "your session has ended: ..."): say why.
setUnauthorizedHandler((detail) => signOut(endedWords(detail)));

function endedWords(detail = '') {
  const d = detail.toLowerCase();
  if (/now linked to a record/.test(d)) return 'Your session has ended: the clinic verified your request, and your wallet is now linked to your record. Sign in again to start.';
  if (/deactivat|not active/.test(d)) return 'Your session has ended: an administrator deactivated your practitioner account.';
  if (/no longer named/.test(d)) return 'Your session has ended: this wallet is no longer an administrator\'s or a regulator\'s.';
  if (/wallet|link|removed/.test(d)) return 'Your session has ended: this wallet is no longer linked to the record you signed in to. Please sign in again.';
  return 'Your session has ended. Please sign in again.';
}

wallet.onChange((what) => {
  if (!session) return;
  if (what === 'accounts') {
    window.ethereum.request({ method: 'eth_accounts' }).then((a) => {
      if (!a?.length || a[0].toLowerCase() !== session.address.toLowerCase()) {
        signOut('Your wallet switched to another account, so you were signed out. Sign in again with the account linked to your record.');
      }
    }).catch(() => {});
  }
});

// A regulator signed in with a wallet checks proofs on the verification page.
const regulatorPages = {
  audit: {
    title: 'Verify proofs',
    render: async (main) => main.append(h('h1', null, 'Verify proofs'),
      h('section', { class: 'card' },
        h('p', null, 'As a regulator you check the audit trail and its proofs on the verification page: it needs no sign-in to check a proof, and fetches proofs with a regulator token.'),
        h('p', null, h('a', { href: '/verify', class: 'btn btn-primary' }, 'Open the verification page')))),
  },
};

const PAGES = { patient: patientPages, practitioner: practitionerPages, applicant: applicantPages, admin: adminPages, regulator: regulatorPages };
const ROLE_WORDS = { patient: 'Patient', practitioner: 'Practitioner', applicant: 'Not registered yet', admin: 'Administrator', regulator: 'Regulator' };

function pagesFor(s) {
  return PAGES[s.role] || applicantPages;
}

function renderNav() {
  clear(nav);
  clear(account);
  if (!session) return;
  const pages = pagesFor(session);
  const current = currentRoute();
  const ul = h('ul', { class: 'nav' });
  for (const [key, p] of Object.entries(pages)) {
    ul.append(h('li', null, h('a', { href: `#${key}`, 'aria-current': key === current ? 'page' : null }, p.title)));
  }
  nav.append(ul);
  account.append(
    h('span', { class: 'who', title: session.address }, ROLE_WORDS[session.role] || session.role, ' · ', shortHex(session.address, 4)),
    button('Sign out', () => signOut('You are signed out.'), { class: 'btn btn-small btn-quiet' }),
  );
}

function currentRoute() {
  const r = location.hash.replace(/^#/, '');
  if (!session) return '';
  const pages = pagesFor(session);
  return pages[r] ? r : Object.keys(pages)[0];
}

async function render(message) {
  const gen = ++generation;
  renderNav();
  if (!session) {
    renderSignIn(message || signedOut);
    return;
  }
  signedOut = '';
  const route = currentRoute();
  const page = pagesFor(session)[route];
  document.title = `${page.title} · fhirgate`;
  const ctx = {
    session,
    fhir: new FHIR(session.token),
    report,
    stale: () => gen !== generation,
    rerender: () => render(),
    // After a registration is verified the applicant's token stays an
    // applicant's: a new sign-in gets the patient's or practitioner's.
    signInAgain: () => {
      signOut('Sign in again with the same wallet: your wallet asks you to sign once more.');
      document.getElementById('signin')?.click();
    },
  };
  clear(main);
  if (message) main.append(notice('info', message));
  try {
    await page.render(main, ctx);
  } catch (e) {
    if (gen === generation) report(main.appendChild(h('div')), e);
  }
}

function focusMain() {
  const h1 = main.querySelector('h1');
  (h1 || main).setAttribute('tabindex', '-1');
  (h1 || main).focus({ preventScroll: false });
}

function renderSignIn(message) {
  document.title = 'Sign in · fhirgate';
  const status = h('div', { class: 'status-area', 'aria-live': 'polite' });
  const actions = h('div', { class: 'actions' });
  const signInBtn = button('Connect wallet and sign in', () => busy(signInBtn, () => start()), { class: 'btn btn-primary btn-large', id: 'signin' });
  actions.append(signInBtn);

  async function start() {
    clear(status);
    try {
      const address = await wallet.connect();
      const info = await wellKnown();
      const chainId = await wallet.currentChainId();
      if (chainId !== Number(info.chainId)) {
        const sw = button(`Switch to ${info.chainName || 'the gateway\'s network'}`, () => busy(sw, async () => {
          try {
            await wallet.switchChain();
            clear(status, notice('ok', 'Your wallet is now on the right network.'));
            await finish(address);
          } catch (e) {
            report(status, e);
            status.append(sw);
          }
        }), { class: 'btn btn-primary', id: 'switch-chain' });
        clear(status,
          notice('warn', h('strong', null, 'Your wallet is on another network. '),
            `This gateway keeps consent on "${info.chainName || 'its network'}" (chain ${info.chainId}); your wallet is on chain ${chainId}. Switch networks to continue: your wallet will ask you to approve it.`),
          sw);
        return;
      }
      await finish(address);
    } catch (e) {
      report(status, e);
      if (e.kind === 'no-wallet') status.append(h('p', null, 'Regulators and auditors do not need a wallet: ', h('a', { href: '/verify' }, 'verify a proof'), '.'));
    }
  }

  async function finish(address) {
    clear(status, notice('info', 'Check your wallet: it asks you to sign a sign-in message. Signing is free and does not send a transaction.'));
    const res = await wallet.signIn(address);
    // The gateway names the role; older gateways named only the record.
    const role = res.role || (res.patient ? 'patient' : res.practitioner ? 'practitioner' : '');
    if (!PAGES[role]) throw new wallet.WalletError('not-linked', 'This wallet is not linked to a patient or practitioner record.');
    session = {
      token: res.access_token,
      expiresAt: Date.now() + (res.expires_in || 3600) * 1000,
      role,
      ref: res.patient || res.practitioner || '',
      address,
      signedInAt: Date.now(),
    };
    saveSession(session);
    const target = '#' + (role === 'applicant' ? await firstApplicantPage(session.token) : Object.keys(pagesFor(session))[0]);
    if (location.hash !== target) {
      location.hash = target; // the hashchange handler draws the page once, and focuses it
      return;
    }
    await render(); // same route as before: no hashchange, draw it here
    focusMain();
  }

  clear(main,
    h('section', { class: 'hero' },
      h('h1', null, 'Your health records, your decision'),
      // why the last session ended: next after the heading, where the focus lands
      message ? notice('info', message) : null,
      h('p', { class: 'lead' }, 'See your records, book appointments, share test reports with the doctors you choose, and see everyone who looked at them. Your wallet is your key: no password.'),
      h('ol', { class: 'steps' },
        h('li', null, h('strong', null, 'Connect your wallet'), ' (for example MetaMask).'),
        h('li', null, h('strong', null, 'Use the gateway\'s network'), ': the portal offers to add it to your wallet.'),
        h('li', null, h('strong', null, 'Sign in'), ' by signing a short message. It is free and sends nothing.')),
      actions,
      status),
    h('section', { class: 'card muted' },
      h('h2', null, 'New here?'),
      h('p', null, 'Sign in with your wallet all the same: the portal offers to register you as a patient or a practitioner, and the clinic checks your details before your wallet opens anything.'),
      h('h2', null, 'For practitioners'),
      h('p', null, 'Sign in with the wallet your clinic verified. You see the records your patients shared with you.'),
      h('h2', null, 'For regulators and auditors'),
      h('p', null, 'You can check any proof without signing in: ', h('a', { href: '/verify' }, 'verify a proof'), '.')),
  );
}

document.getElementById('skip').addEventListener('click', (e) => { e.preventDefault(); focusMain(); });
window.addEventListener('hashchange', async () => { await render(); focusMain(); });
render();
