// One visitor: Debian's Chromium, headless, with its own fresh profile (a persistent context, so
// every visitor is a separate browser with its own cookies), and what the test needs to see of it:
// console problems, CSP violations, the API requests it made, the frames its live channel got,
// and the history of the state pill and the warning banner.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from './broker.mjs';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const OUTPUT_DIR = path.join(REPO_ROOT, 'test-output/e2e');
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// Every page wait is bounded by this unless the step says otherwise.
export const STEP_TIMEOUT_MS = 10_000;

const BASE_ARGS = [
  '--use-fake-device-for-media-stream',
  // Without it Chromium gathers no loopback candidates, and loopback is all there is here.
  '--allow-loopback-in-peer-connection',
  // Not needed: --disable-features=WebRtcHideLocalIpsWithMdns. A page that holds the microphone
  // permission gets its real host candidates anyway (127.0.0.1 here, checked with and without it).
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Runs in the page before its own scripts: keeps the sequence of states, warnings and assistant
// activities, which a poll from the test could miss when two follow each other quickly; every
// text change of a live region (what a screen reader would announce); the notifications and
// vibrations the page asked for; and each WebSocket's life (created, opened, closed with which code).
// The wrappers only record: the real Notification, vibrate and WebSocket do the work.
function recordPageHistory() {
  const history = {
    states: [], warnings: [], warningShows: [], activity: [], announcements: [], notifications: [], vibrations: [], sockets: [],
  };
  window.__e2eHistory = history;
  // The page's sockets themselves (not clonable, so beside the history): a test may drop one.
  window.__e2eSockets = [];

  const RealWebSocket = window.WebSocket;
  window.WebSocket = class extends RealWebSocket {
    constructor(...args) {
      super(...args);
      const entry = { url: String(args[0]), createdAt: performance.now(), openedAt: null, closedAt: null, code: null };
      history.sockets.push(entry);
      window.__e2eSockets.push(this);
      this.addEventListener('open', () => { entry.openedAt = performance.now(); });
      this.addEventListener('close', event => {
        entry.closedAt = performance.now();
        entry.code = event.code;
      });
    }
  };
  if (window.Notification) {
    window.Notification = class extends window.Notification {
      constructor(title, options) {
        super(title, options);
        history.notifications.push({ title, body: options?.body ?? '' });
      }
    };
  }
  const vibrate = navigator.vibrate?.bind(navigator);
  navigator.vibrate = pattern => {
    history.vibrations.push(pattern);
    return vibrate ? vibrate(pattern) : false;
  };

  document.addEventListener('DOMContentLoaded', () => {
    const pill = document.getElementById('state-label');
    const banner = document.getElementById('warning-banner');
    const status = document.getElementById('call-status');
    const note = () => {
      const state = pill.dataset.state;
      if (history.states.at(-1) !== state) history.states.push(state);
    };
    // The operator's console has no state pill and no warning banner.
    if (pill) {
      note();
      new MutationObserver(note).observe(pill, { attributes: true, attributeFilter: ['data-state'] });
    }
    if (banner) {
      new MutationObserver(mutations => {
        const text = banner.textContent.trim();
        if (text && history.warnings.at(-1) !== text) history.warnings.push(text);
        // Every time the banner is filled anew, even with the same text: a warning shown twice.
        if (text && mutations.some(m => m.target === banner && m.addedNodes.length)) history.warningShows.push(text);
      }).observe(banner, { childList: true, subtree: true, characterData: true });
    }
    if (status) {
      new MutationObserver(() => {
        const activity = status.dataset.activity;
        if (history.activity.at(-1) !== activity) history.activity.push(activity);
      }).observe(status, { attributes: true, attributeFilter: ['data-activity'] });
    }
    new MutationObserver(mutations => {
      const regions = new Set();
      for (const mutation of mutations) {
        const node = mutation.target.nodeType === Node.ELEMENT_NODE ? mutation.target : mutation.target.parentElement;
        const region = node?.closest('[aria-live], [role=status], [role=alert], [role=log]');
        if (region && region.getAttribute('aria-live') !== 'off') regions.add(region);
      }
      for (const region of regions) {
        history.announcements.push({
          region: region.dataset.testid ?? region.id ?? region.className,
          text: region.textContent.replace(/\s+/g, ' ').trim(),
          at: performance.now(),
        });
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
}

// micDenied: no fake permission UI, and the microphone permission refused, as a visitor who
// clicked "Block" would have it.
// viewport, colorScheme, locale: the look of the visitor's browser (default desktop, light, en-US).
export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };

export async function launchVisitor(name, { micDenied = false, viewport = DESKTOP, colorScheme = 'light', locale = 'en-US' } = {}) {
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), `vb-e2e-${name}-`));
  const args = micDenied
    ? [...BASE_ARGS, '--deny-permission-prompts']
    : ['--use-fake-ui-for-media-stream', ...BASE_ARGS];
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport,
    locale,
    colorScheme,
    timeout: 30_000,
  }).catch(error => {
    fs.rmSync(profileDir, { recursive: true, force: true });
    throw error;
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  await context.addInitScript(recordPageHistory);

  const page = context.pages()[0] ?? await context.newPage();
  const seen = { problems: [], cspViolations: [], requests: [], frames: [], sockets: 0 };
  page.on('pageerror', error => seen.problems.push(`page error: ${error.message}`));
  page.on('console', message => {
    const text = message.text();
    if (/Content.Security.Policy/i.test(text)) seen.cspViolations.push(text);
    if (message.type() === 'error') seen.problems.push(`console error: ${text}`);
  });
  page.on('request', request => {
    const url = new URL(request.url());
    if (url.pathname === '/api/session') seen.requests.push(`${request.method()} ${url.searchParams.get('action')}`);
    else if (url.pathname.startsWith('/api/admin/')) seen.requests.push(`${request.method()} ${url.pathname}`);
  });
  page.on('websocket', socket => {
    seen.sockets++;
    socket.on('framereceived', frame => {
      try {
        seen.frames.push(JSON.parse(frame.payload));
      } catch {
        seen.frames.push({ unparsed: String(frame.payload) });
      }
    });
  });

  return {
    name,
    context,
    page,
    seen,
    history: () => page.evaluate(() => structuredClone(window.__e2eHistory)),
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profileDir, { recursive: true, force: true });
    },
  };
}

// test-output/e2e/<name>.png, the whole page.
export async function saveScreenshot(page, name) {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  const file = path.join(OUTPUT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
  return file;
}

// axe-core on the page as it is now. Injected through the DevTools protocol, which the page's CSP
// (no inline scripts) does not apply to, so the page keeps its real CSP during the test. Writes
// every finding to test-output/e2e/<name>.axe.json; returns the serious and critical ones, and how
// many rules passed (a run that checked nothing must not count as clean).
export async function accessibilityReport(page, name) {
  const hasAxe = await page.evaluate(() => typeof window.axe === 'object');
  if (!hasAxe) await page.evaluate(AXE_SOURCE);
  const { violations, passed } = await page.evaluate(async () => {
    const results = await window.axe.run(document, { resultTypes: ['violations'] });
    return {
      passed: results.passes.length,
      violations: results.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' ')),
      })),
    };
  });
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUTPUT_DIR, `${name}.axe.json`), `${JSON.stringify({ passed, violations }, null, 2)}\n`);
  return { passed, serious: violations.filter(v => v.impact === 'serious' || v.impact === 'critical') };
}
