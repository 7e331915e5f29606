/**
 * chromium.ts — drives the system's Chromium (Debian's `chromium` package; .ci/run installs it)
 * through playwright-core for the browser tests and the report screenshot script: finds the
 * executable, opens a local page while recording every console error, page error and network
 * request, so a test can demand a page that loads nothing from elsewhere and logs no error.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Where Chromium is looked for: $MOTIF_CHROMIUM, then Debian's and other usual paths. */
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium executable, or undefined when there is none ($MOTIF_CHROMIUM, when set, is the only candidate). */
export function findChromium(): string | undefined {
  const fromEnv = process.env.MOTIF_CHROMIUM;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

/** A page opened from a local file, with what it reported while loading. */
export interface OpenedPage {
  browser: Browser;
  page: Page;
  /** Console errors and warnings, uncaught page errors, failed requests. */
  problems: string[];
  /** Every URL the page requested. */
  requests: string[];
  close(): Promise<void>;
}

/** Opens `file` in headless Chromium at the given viewport and waits for it to load. */
export async function openLocalPage(
  executablePath: string,
  file: string,
  viewport = { width: 1280, height: 900 },
): Promise<OpenedPage> {
  const browser = await chromium.launch({ executablePath, headless: true });
  try {
    const page = await browser.newPage({ viewport });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    return { browser, page, problems, requests, close: () => browser.close() };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
