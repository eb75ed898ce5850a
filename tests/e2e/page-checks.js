// Behaviour checks of static/ in Chromium against a faked API and WebSocket (no server needed).
const { chromium } = require('playwright-core');
const BASE = process.env.PAGE_URL ?? 'http://127.0.0.1:8765/';
const LIMITS = { maxConcurrentUsers: 1, sessionSeconds: 300, warningSeconds: [180, 120, 60] };
const doc = extra => ({ ticket: 'tkt_abcdefghijklmnopqrstu', queueLength: 1, remainingSeconds: 0, limits: LIMITS, ...extra });
let failures = 0;
const check = (what, ok, detail = '') => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what} ${detail}`); if (!ok) failures++; };

async function setup(browser, { api, ws, micFails = true }) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const log = [];
  page.on('pageerror', e => log.push(`pageerror ${e.message}`));
  if (micFails) await page.addInitScript(() => { navigator.mediaDevices.getUserMedia = () => new Promise(() => {}); });
  await page.route('**/api/session?*', async route => {
    const action = new URL(route.request().url()).searchParams.get('action');
    log.push(`${route.request().method()} ${action} ${route.request().headers()['x-session-ticket'] ?? '-'}`);
    const a = await api(action, route);
    if (a === 'abort') return route.abort('connectionrefused');
    await route.fulfill({ status: a.status ?? 200, headers: { 'Content-Type': 'application/json', ...(a.headers ?? {}) }, body: JSON.stringify(a.body) });
  });
  const live = { sockets: [] };
  await page.routeWebSocket('**/api/session/ws*', socket => {
    live.sockets.push(socket);
    log.push(`ws open ${new URL(socket.url()).search}`);
    socket.onMessage(m => log.push(`ws> ${m}`));
    ws?.(socket, live.sockets.length);
  });
  await page.goto(BASE);
  return { page, log, live, context };
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });

  { // unconfirmed admission: heartbeat at once over the socket; then every 10 s
    const { page, log, context } = await setup(browser, {
      api: () => ({ body: doc({ state: 'queued', position: 1, etaSeconds: 30 }) }),
      ws: (s) => setTimeout(() => s.send(JSON.stringify({ type: 'status', ...doc({ state: 'active', remainingSeconds: 300, confirmed: false }) })), 300),
    });
    await page.getByTestId('start-button').click();
    await page.locator('[data-state=connecting]').waitFor();
    await page.waitForTimeout(300);
    check('ws url carries ?ticket=', log.some(l => l === 'ws open ?ticket=tkt_abcdefghijklmnopqrstu'));
    check('heartbeat sent at once when unconfirmed', log.filter(l => l.startsWith('ws> ')).length >= 1, log.filter(l => l.startsWith('ws')).join(' | '));
    await page.waitForTimeout(10500);
    check('heartbeat every 10 s', log.filter(l => l === 'ws> {"type":"heartbeat"}').length >= 2);
    check('countdown is running', /^4:(4|5)\d$/.test(await page.getByTestId('countdown').textContent()), await page.getByTestId('countdown').textContent());
    await context.close();
  }

  { // socket dropped: polling status every ~2.5 s and heartbeats by POST; socket reconnects
    let opens = 0;
    const { page, log, context } = await setup(browser, {
      api: () => ({ body: doc({ state: 'queued', position: 2, etaSeconds: 100 }) }),
      ws: (s, n) => { opens = n; if (n === 1) setTimeout(() => s.close({ code: 1006 }), 200); else s.send(JSON.stringify({ type: 'status', ...doc({ state: 'queued', position: 1, etaSeconds: 50 }) })); },
    });
    await page.getByTestId('start-button').click();
    await page.getByTestId('connection-notice').filter({ hasText: /./ }).waitFor();
    check('notice while polling', true, await page.getByTestId('connection-notice').textContent());
    await page.waitForTimeout(11000);
    const polls = log.filter(l => l.startsWith('GET status')).length;
    check('polls status while the socket is down, or reconnected', polls >= 1 || opens >= 2, `polls=${polls} opens=${opens}`);
    check('header carries the ticket', log.some(l => l.endsWith('tkt_abcdefghijklmnopqrstu')));
    check('socket reconnected', opens >= 2, `opens=${opens}`);
    check('notice gone after reconnect', (await page.getByTestId('connection-notice').textContent()) === '');
    check('position from the new socket', (await page.getByTestId('queue-position').textContent()) === '1');
    await context.close();
  }

  { // socket never comes back: polling then 404 unknown_ticket -> ended (unknown)
    let n = 0;
    const { page, log, context } = await setup(browser, {
      api: a => (a === 'status' && ++n >= 2 ? { status: 404, body: { error: { code: 'unknown_ticket', message: 'x' } } } : { body: doc({ state: 'queued', position: 2, etaSeconds: 100 }) }),
      ws: s => s.close({ code: 1001 }),
    });
    await page.getByTestId('start-button').click();
    await page.getByTestId('queue-again-button').waitFor({ timeout: 15000 });
    check('unknown ticket ends the visit', (await page.getByTestId('ended-reason').getAttribute('data-reason')) === 'unknown');
    await context.close();
  }

  { // server restarting on join: retried with back-off, then joined
    let n = 0;
    const { page, log, context } = await setup(browser, {
      api: a => (a === 'join' && ++n <= 2 ? 'abort' : { body: doc({ state: 'queued', position: 3, etaSeconds: 100 }) }),
    });
    await page.getByTestId('start-button').click();
    await page.getByTestId('connection-notice').filter({ hasText: /restarting/ }).waitFor();
    check('restarting notice on a failed join', true);
    await page.getByTestId('queue-position').filter({ hasText: '3' }).waitFor({ timeout: 15000 });
    check('joined after retries', n === 3, `joins=${n}`);
    await context.close();
  }

  { // no pushes at all: warnings and the end come from the local clock
    const { page, log, context } = await setup(browser, {
      api: () => ({ body: doc({ state: 'active', remainingSeconds: 3, confirmed: true, limits: { ...LIMITS, sessionSeconds: 10, warningSeconds: [2, 1] } }) }),
      ws: () => {},
    });
    await page.getByTestId('start-button').click();
    await page.getByTestId('warning-banner').filter({ hasText: /2 seconds left/ }).waitFor({ timeout: 5000 });
    check('local warning at 2 s', true);
    await page.getByTestId('warning-banner').filter({ hasText: /1 second left/ }).waitFor({ timeout: 5000 });
    check('local warning at 1 s (singular)', true);
    await page.getByTestId('queue-again-button').waitFor({ timeout: 10000 });
    check('local expiry ends the call', (await page.getByTestId('ended-reason').getAttribute('data-reason')) === 'expired');
    await context.close();
  }

  { // pushed warning, then leave queue sends leave
    const { page, log, context } = await setup(browser, { api: () => ({ body: doc({ state: 'queued', position: 2, etaSeconds: 5 }) }) });
    await page.getByTestId('start-button').click();
    await page.getByTestId('queue-eta').filter({ hasText: 'any moment' }).waitFor({ timeout: 8000 });
    check('eta counts down to "any moment"', true);
    await page.getByTestId('leave-queue-button').click();
    await page.waitForTimeout(300);
    check('leave queue posts leave', log.some(l => l.startsWith('POST leave')));
    check('left view', (await page.getByTestId('ended-reason').getAttribute('data-reason')) === 'left');
    await context.close();
  }

  await browser.close();
  console.log(failures ? `${failures} failed` : 'all passed');
  process.exitCode = failures ? 1 : 0;
})();
