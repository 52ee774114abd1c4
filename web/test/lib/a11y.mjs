// Accessibility checks with axe-core (the npm package, run in the page).
//
// The portal's CSP is "script-src 'self'": a <script> with inline content
// (page.addScriptTag({content})) is refused, and the CSP must not be
// weakened for a test. axe's source is run with page.evaluate instead:
// Playwright evaluates it through the DevTools protocol, which the page's
// CSP does not govern, and axe itself needs neither eval nor inline code.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];
const BLOCKING = new Set(['serious', 'critical']);

/** timings records how long each check took (ms), for the run's log. */
export const timings = [];

/** format turns axe violations into a readable list: rule, impact, help, targets. */
export function format(violations) {
  return violations.map((v) => {
    const nodes = v.nodes.slice(0, 8).map((n) => `      ${n.target.join(' ')}${n.failureSummary ? `\n        ${n.failureSummary.split('\n').join('\n        ')}` : ''}`);
    if (v.nodes.length > 8) nodes.push(`      … and ${v.nodes.length - 8} more`);
    return `  - ${v.id} (${v.impact}): ${v.help}\n    ${v.helpUrl}\n${nodes.join('\n')}`;
  }).join('\n');
}

/**
 * checkA11y runs axe-core on the page as it is now. It throws with a
 * readable list when a violation is serious or critical, and returns the
 * moderate and minor ones (logged here) so that a run shows them.
 */
export async function checkA11y(page, name, { exclude = [] } = {}) {
  const start = Date.now();
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async ({ tags, exclude }) => {
    const r = await window.axe.run({ include: [document], exclude: exclude.map((s) => [s]) }, {
      runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations'],
    });
    // Only what the report needs crosses back (axe's result holds DOM-sized strings).
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String), failureSummary: n.failureSummary || '' })),
    }));
  }, { tags: TAGS, exclude });
  timings.push({ name, ms: Date.now() - start });
  const blocking = result.filter((v) => BLOCKING.has(v.impact));
  const minor = result.filter((v) => !BLOCKING.has(v.impact));
  if (minor.length) console.log(`a11y ${name}: ${minor.length} moderate/minor:\n${format(minor)}`);
  if (blocking.length) {
    throw new Error(`accessibility (axe-core) on ${name}: ${blocking.length} serious or critical violation(s):\n${format(blocking)}`);
  }
  return minor;
}

// What a person must never read on the portal: the server's or the
// browser's own words, which belong under "Technical details" (closed
// <details> are not rendered, so their text is not visible here).
export const RAW_WORDS = [
  /OperationOutcome/,
  /access denied/i,
  /\bdiagnostics\b/i,
  /\bHTTP\b/,
  /\bstatus (?:code )?[1-5]\d\d\b/i,
  /\b[45]\d\d (?:Bad Request|Unauthorized|Forbidden|Not Found|Conflict|Gone|Precondition|Payload|Unprocessable|Too Many|Internal|Bad Gateway|Service Unavailable)/i,
  /\b(?:TypeError|ReferenceError|SyntaxError|RangeError)\b/,
  /\[object \w+\]/,
  /\bundefined\b/,
  /\bNaN\b/,
  /It said:/,
  /\bexecution reverted\b/i,
];

/** visibleText returns the text a person sees on the page (form fields' contents left out). */
export function visibleText(page) {
  return page.evaluate(() => {
    const out = [];
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n; (n = walk.nextNode());) {
      const el = n.parentElement;
      if (!el || !n.data.trim() || el.closest('textarea, script, style, noscript')) continue;
      if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
      out.push(n.data.trim());
    }
    return out.join('\n');
  });
}

/** assertPlainWords fails when the visible text holds raw server or browser words. */
export async function assertPlainWords(page, name) {
  const text = await visibleText(page);
  const hits = RAW_WORDS.flatMap((re) => text.split('\n').filter((line) => re.test(line)).map((line) => `${re}: "${line.slice(0, 160)}"`));
  if (hits.length) throw new Error(`plain words on ${name}: the page shows technical words instead of plain ones:\n  ${hits.join('\n  ')}`);
}

/** checkPage is what every page state of the browser tests gets: axe-core, then plain words. */
export async function checkPage(page, name) {
  await checkA11y(page, name);
  await assertPlainWords(page, name);
}
