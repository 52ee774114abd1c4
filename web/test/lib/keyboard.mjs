// Keyboard-only driving of a page, for the tests that use no click and no
// fill (Tab, Shift+Tab, typing, Enter, Space, arrows, Escape): every stop
// must show its focus ring, a new page puts the focus on its heading, and
// an action's outcome is announced where the keyboard user is.
import assert from 'node:assert/strict';
import { T } from './harness.mjs';

/** keyboard(page) returns the helpers bound to page. */
export function keyboard(page) {
  const kb = page.keyboard;

  /** focused describes the focused element, and whether its focus ring is drawn. */
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    const cs = getComputedStyle(el);
    const ring = el.matches(':focus-visible') && (cs.boxShadow !== 'none' || (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0 && !/rgba\(.*, 0\)|transparent/.test(cs.outlineColor)));
    return { tag: el.tagName, id: el.id, text: (el.getAttribute('aria-label') || el.textContent || '').trim().slice(0, 80), ring, inView: el.getBoundingClientRect().left >= 0 };
  });

  /** isFocused tells whether the element selector names (a Playwright selector: :has-text and the like too) has the focus. */
  const isFocused = async (selector) => {
    for (const el of await page.$$(selector)) if (await el.evaluate((e) => e === document.activeElement)) return true;
    return false;
  };

  /** tabTo presses Tab (Shift+Tab when back) until the focused element matches selector; its focus must show. */
  const tabTo = async (selector, { back = false, max = 60 } = {}) => {
    for (let i = 0; i < max; i++) {
      await kb.press(back ? 'Shift+Tab' : 'Tab');
      if (await isFocused(selector)) {
        const f = await focused();
        assert.ok(f.ring, `no visible focus indicator on ${f.tag} "${f.text}"`);
        return f;
      }
    }
    throw new Error(`${selector} not reached with ${back ? 'Shift+Tab' : 'Tab'} (focus on ${JSON.stringify(await focused())})`);
  };

  /** onHeading waits until the focus is on the page's h1 that reads heading (where a new page puts it). */
  const onHeading = (heading) => page.waitForFunction((h) => document.activeElement?.tagName === 'H1' && document.activeElement.textContent === h, heading, { timeout: T });

  /** openPage goes to a page through the menu: Shift+Tab back to its link, Enter; focus lands on the heading. */
  const openPage = async (route, heading) => {
    await tabTo(`nav a[href="#${route}"]`, { back: true });
    await kb.press('Enter');
    await onHeading(heading);
  };

  /**
   * announced waits for a visible message that says text, and checks that
   * a screen reader hears it (it is, or is inside, an element with role
   * alert or status or aria-live) and that the keyboard user is on it: it
   * has the focus, or it is what comes next after the focused element
   * (nothing that takes the focus lies between them).
   */
  const announced = async (text) => {
    await page.waitForFunction((t) => [...document.querySelectorAll('[role="alert"], [role="status"], [aria-live]')]
      .some((el) => el.textContent.includes(t) && el.checkVisibility()), text, { timeout: T });
    const r = await page.evaluate((t) => {
      const live = [...document.querySelectorAll('[role="alert"], [role="status"], [aria-live]')]
        .filter((el) => el.textContent.includes(t) && el.checkVisibility());
      // the innermost region that says it
      const el = live.find((x) => !live.some((y) => y !== x && x.contains(y)));
      const a = document.activeElement;
      if (el === a || el.contains(a) || a.contains(el)) return { ok: true };
      // a complaint the focused field names as its description is read with it
      const described = (a.getAttribute('aria-describedby') || '').split(/\s+/).map((id) => id && document.getElementById(id));
      if (described.some((d) => d && (d === el || d.contains(el) || el.contains(d)))) return { ok: true };
      if (!(a.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING)) return { ok: false, why: 'it comes before the focused element' };
      const tabbable = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
      const between = [...document.querySelectorAll(tabbable)].filter((x) => x.checkVisibility()
        && (a.compareDocumentPosition(x) & Node.DOCUMENT_POSITION_FOLLOWING) && (x.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING));
      return between.length ? { ok: false, why: `${between.length} control(s) between the focus and it, first "${(between[0].textContent || between[0].id).trim().slice(0, 60)}"` } : { ok: true };
    }, text);
    const f = await focused();
    assert.ok(r.ok, `"${text}" is announced but not where the keyboard user is (focus on ${f.tag} "${f.text}"): ${r.why}`);
  };

  return { page, kb, focused, isFocused, tabTo, onHeading, openPage, announced };
}
