// Launches Debian's Chromium headless for Playwright (playwright-core does
// not download browsers). The machine has no internet: Chromium's
// background connections are switched off.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.FHIRGATE_CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  // Playwright starts Chromium with a fresh temporary --user-data-dir of
  // its own on every launch (it refuses one in args), and every context
  // is a separate incognito-like profile: one per person in the tests.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--disable-extensions', '--metrics-recording-only', '--no-default-browser-check',
    ],
  });
}
