// What every browser test of the portal does: one Chromium for the run,
// one browser context per person (each with its dev-chain wallet as
// window.ethereum), screenshots, sign-in, page routes and waits, and a
// watch on every request and CSP report (nothing may leave the gateway and
// its chain).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { DevWallet, attach } from './devwallet.mjs';

export const T = 30000; // UI waits

/** harness(base, shots) returns the run's state and helpers; open() before use, close() after. */
export function harness(base, shots) {
  const H = {
    base,
    shots,
    browser: null,
    info: null, // GET /.well-known/fhirgate
    contexts: [],
    problems: [], // CSP violations and requests leaving the gateway and its chain
    urls: [], // every URL requested, to check that none carries PHI

    async open() {
      mkdirSync(shots, { recursive: true });
      H.info = await (await fetch(`${base}/.well-known/fhirgate`)).json();
      assert.ok(H.info.rpc, 'the gateway publishes its chain RPC');
      H.browser = await launch();
      return H.info;
    },

    async close() {
      for (const c of H.contexts) await c.close().catch(() => {});
      await H.browser?.close();
    },

    async shot(page, name, opts = {}) {
      await page.evaluate(() => document.activeElement?.blur?.());
      await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true, ...opts });
    },

    /** person opens a browser context (one per person), with a wallet unless key is null. */
    async person(key, { startChainId, knowsChain, viewport } = {}) {
      const { info } = H;
      const ctx = await H.browser.newContext({ viewport: viewport || { width: 1100, height: 860 }, locale: 'en-GB', timezoneId: 'UTC' });
      H.contexts.push(ctx);
      let wallet = null;
      if (key) wallet = await attach(ctx, new DevWallet({ key, rpc: info.rpc, chainId: info.chainId, startChainId, knowsChain }));
      const page = await ctx.newPage();
      const allowed = new Set([new URL(base).origin, new URL(info.rpc).origin]);
      page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) H.problems.push(`CSP: ${m.text()}`); });
      page.on('pageerror', (e) => H.problems.push(`page error: ${e.message}`));
      page.on('request', (r) => {
        H.urls.push(r.url());
        const u = new URL(r.url());
        if (!['data:', 'blob:'].includes(u.protocol) && !allowed.has(u.origin)) H.problems.push(`request outside the gateway: ${r.url()}`);
      });
      return { ctx, page, wallet };
    },

    /** signIn opens the portal and signs in with the page's wallet; expect: a selector to wait for (null: none). */
    async signIn(page, { expect = '#account .who' } = {}) {
      await page.goto(`${base}/`);
      await page.click('#signin');
      if (expect) await page.waitForSelector(expect, { timeout: T });
    },
  };
  return H;
}

/** waitFor waits until selector is visible (calling reload between tries when given). */
export async function waitFor(page, selector, { timeout = 60000, reload } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const el = await page.$(selector);
    if (el && (await el.isVisible())) return el;
    if (Date.now() > end) throw new Error(`timed out waiting for ${selector}`);
    if (reload) await reload();
    await page.waitForTimeout(1000);
  }
}

/** assertLabelled checks that every visible form control has an accessible name. */
export async function assertLabelled(page, where) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    .map((el) => el.id || el.name || el.outerHTML.slice(0, 60)));
  assert.deepEqual(unlabelled, [], `unlabelled form controls on ${where}`);
}

/** route opens a page of the portal by its hash route and waits for the navigation to mark it. */
export async function route(page, name) {
  await page.evaluate((r) => { location.hash = r; }, name);
  await page.waitForFunction((r) => document.querySelector(`nav a[href="#${r}"][aria-current="page"]`), name, { timeout: T });
}

/** sessionToken is the signed-in page's access token (kept in the tab's sessionStorage). */
export const sessionToken = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('fhirgate.session') || 'null')?.token);

export const tomorrow = () => new Date(Date.now() + 86400000).toISOString().slice(0, 10);
