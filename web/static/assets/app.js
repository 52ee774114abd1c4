// The portal's shell: sign-in with the wallet, the session, navigation
// between pages (hash routes that name pages only: no identifiers or PHI
// in URLs), and plain-words error reporting.
import { h, clear, notice, button, busy, shortHex } from './ui.js';
import { loadSession, saveSession, clearSession, FHIR, setUnauthorizedHandler, wellKnown } from './api.js';
import * as wallet from './wallet.js';
import { patientPages } from './patient.js';
import { practitionerPages } from './practitioner.js';

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

function signOut(message) {
  clearSession();
  session = null;
  location.hash = '';
  render(message);
}

setUnauthorizedHandler(() => signOut('Your session has ended. Please sign in again.'));

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

function pagesFor(s) {
  return s.role === 'patient' ? patientPages : practitionerPages;
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
    h('span', { class: 'who', title: session.address }, session.role === 'patient' ? 'Patient' : 'Practitioner', ' · ', shortHex(session.address, 4)),
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
    renderSignIn(message);
    return;
  }
  const route = currentRoute();
  const page = pagesFor(session)[route];
  document.title = `${page.title} · fhirgate`;
  const ctx = {
    session,
    fhir: new FHIR(session.token),
    report,
    stale: () => gen !== generation,
    rerender: () => render(),
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
    const role = res.patient ? 'patient' : res.practitioner ? 'practitioner' : '';
    if (!role) throw new wallet.WalletError('not-linked', 'This wallet is not linked to a patient or practitioner record.');
    session = {
      token: res.access_token,
      expiresAt: Date.now() + (res.expires_in || 3600) * 1000,
      role,
      ref: res.patient || res.practitioner,
      address,
    };
    saveSession(session);
    location.hash = Object.keys(pagesFor(session))[0];
    await render();
    focusMain();
  }

  clear(main,
    message ? notice('info', message) : null,
    h('section', { class: 'hero' },
      h('h1', null, 'Your health records, your decision'),
      h('p', { class: 'lead' }, 'See your records, book appointments, share test reports with the doctors you choose, and see everyone who looked at them. Your wallet is your key: no password.'),
      h('ol', { class: 'steps' },
        h('li', null, h('strong', null, 'Connect your wallet'), ' (for example MetaMask).'),
        h('li', null, h('strong', null, 'Use the gateway\'s network'), ': the portal offers to add it to your wallet.'),
        h('li', null, h('strong', null, 'Sign in'), ' by signing a short message. It is free and sends nothing.')),
      actions,
      status),
    h('section', { class: 'card muted' },
      h('h2', null, 'For practitioners'),
      h('p', null, 'Sign in with the wallet your clinic linked to your practitioner record. You see the records your patients shared with you.'),
      h('h2', null, 'For regulators and auditors'),
      h('p', null, 'You can check any proof without signing in: ', h('a', { href: '/verify' }, 'verify a proof'), '.')),
  );
}

document.getElementById('skip').addEventListener('click', (e) => { e.preventDefault(); focusMain(); });
window.addEventListener('hashchange', async () => { await render(); focusMain(); });
render();
