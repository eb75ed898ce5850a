// The operator's console (issue 16), in Chromium, against the real server: sign in; two active
// visitors and a queue of three update live; end one and watch the next admitted on both pages;
// pause (a new visitor waits and its page says paused); resume; change the users from 1 to 2 and
// see the second admitted; sign out, after which the admin WebSocket is refused. And every state
// of the console in every look, checked by axe and saved as a screenshot.
//
// A binary that does not serve /api/admin yet (GET /api/admin/state answers 404) skips these
// tests with "admin API not served by this binary". ADMIN_API_DOUBLE=1 runs them against the
// admin API's test double (lib/admin-double.mjs) instead, which is how the page was developed
// before the server had the API.
import test from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ADMIN_TOKEN, startBroker } from './lib/broker.mjs';
import { startAdminDouble } from './lib/admin-double.mjs';
import { LOOK_WIDTHS, fakeSaw, recordLooks, recordState, runScenario, waitForState } from './lib/scenario.mjs';

const USE_DOUBLE = process.env.ADMIN_API_DOUBLE === '1';
const start = USE_DOUBLE ? startAdminDouble : startBroker;
const NOT_SERVED = 'admin API not served by this binary';
// Nobody's time runs out during the test, and visitors joined over plain HTTP (the looks test)
// are not dropped for missing heartbeats.
const SETTINGS = {
  MAX_CONCURRENT_USERS: '2', SESSION_DURATION_SECONDS: '600', WARNING_SECONDS: '60',
  HEARTBEAT_TIMEOUT_SECONDS: '600', ADMISSION_GRACE_SECONDS: '600',
};

async function adminApiServed(broker) {
  const response = await fetch(`${broker.url}/api/admin/state`, { signal: AbortSignal.timeout(5000) });
  return response.status !== 404;
}

// The admin API, as a script would use it (x-admin-token) or as a browser with a cookie.
async function adminRequest(broker, path, { method = 'GET', headers = {}, body } = {}) {
  const response = await fetch(`${broker.url}/api/admin/${path}`, {
    method, headers: { Origin: broker.url, ...headers }, body, signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, body: await response.json().catch(() => null), headers: response.headers };
}

// Opens /api/admin/ws from Node; resolves {opened, status, close} once it is refused or closed.
function adminSocket(broker, headers) {
  const socket = new WebSocket(`${broker.url.replace('http', 'ws')}/api/admin/ws`, { headers: { Origin: broker.url, ...headers } });
  const states = [];
  socket.on('message', data => states.push(JSON.parse(String(data))));
  const opened = new Promise(resolve => {
    socket.once('open', () => resolve({ opened: true }));
    socket.once('unexpected-response', (request, response) => resolve({ opened: false, status: response.statusCode }));
    socket.once('error', error => resolve({ opened: false, error: error.message }));
  });
  const closed = new Promise(resolve => socket.once('close', code => resolve(code)));
  return { socket, states, opened, closed };
}

async function signIn(page) {
  await page.getByTestId('admin-token').fill(ADMIN_TOKEN);
  await page.getByTestId('admin-signin-button').click();
  await page.locator('[data-testid=admin-link][data-link=live]').waitFor();
  assert.equal(await page.getByTestId('admin-token').inputValue(), '', 'the token field is cleared');
}

// Confirms the open dialog with its OK button (the dialog is the page's, not a browser prompt).
async function confirm(page) {
  const dialog = page.getByTestId('confirm-dialog');
  await dialog.waitFor();
  await page.getByTestId('confirm-ok').click();
  await dialog.waitFor({ state: 'hidden' });
}

// The ids the console lists, in order: [sessions, queue].
async function listed(page) {
  return page.evaluate(() => [
    [...document.querySelectorAll('[data-testid=admin-sessions] > li')].map(li => li.dataset.id),
    [...document.querySelectorAll('[data-testid=admin-queue] > li')].map(li => li.dataset.id),
  ]);
}

async function waitForLists(page, sessions, queue) {
  await page.waitForFunction(([s, q]) => {
    const ids = selector => [...document.querySelectorAll(selector)].map(li => li.dataset.id).join(',');
    return ids('[data-testid=admin-sessions] > li') === s.join(',') && ids('[data-testid=admin-queue] > li') === q.join(',');
  }, [sessions, queue]).catch(async error => {
    throw new Error(`the console shows ${JSON.stringify(await listed(page))}, not sessions ${JSON.stringify(sessions)} and queue ${JSON.stringify(queue)}: ${error.message}`);
  });
}

const row = (page, list, id) => page.getByTestId(list).locator(`li[data-id="${id}"]`);

test('the console follows the queue live and its actions steer it', { timeout: 300_000 }, async t => {
  await runScenario({ broker: SETTINGS, start }, async ({ fake, broker, visitor, operator }) => {
    if (!await adminApiServed(broker)) {
      t.skip(NOT_SERVED);
      return;
    }
    const admin = await operator();
    const page = admin.page;
    await signIn(page);
    await recordState(page, 'admin-1-signed-in');

    // Two talk, three wait; the console learns each one from its one WebSocket.
    const names = ['a', 'b', 'c', 'd', 'e'];
    const v = {};
    for (const name of names) {
      v[name] = await visitor(name);
      await v[name].page.getByTestId('start-button').click();
      await waitForState(v[name].page, ['a', 'b'].includes(name) ? 'active' : name === 'c' ? 'next' : 'queued', 20_000);
    }
    await fakeSaw(fake, { connected: 2 }, 20_000);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=admin-sessions] > li').length === 2
      && document.querySelectorAll('[data-testid=admin-queue] > li').length === 3);
    const [talking, waiting] = await listed(page);
    const id = { a: talking[0], b: talking[1], c: waiting[0], d: waiting[1], e: waiting[2] };
    // Both calls are connected, as the console shows once the pages registered them.
    for (const who of ['a', 'b']) await row(page, 'admin-sessions', id[who]).locator('[data-field=call][data-state=yes]').waitFor();
    assert.equal(await page.getByTestId('figure-active').textContent(), '2 of 2');
    assert.equal(await row(page, 'admin-queue', id.c).locator('.row__title').textContent(), 'Place 1');
    const history = await admin.history();
    const adminSockets = history.sockets.filter(s => s.url.includes('/api/admin/ws'));
    assert.equal(adminSockets.length, 1, 'one WebSocket carried every update');
    assert.equal(adminSockets[0].closedAt, null);
    // The time left runs down on the page between pushes.
    const left = row(page, 'admin-sessions', id.a).locator('[data-field=left]');
    const before = await left.textContent();
    await page.waitForFunction(([selector, text]) => document.querySelector(selector)?.textContent !== text,
      [`[data-testid=admin-sessions] li[data-id="${id.a}"] [data-field=left]`, before]);
    await recordState(page, 'admin-2-two-talking-three-waiting');

    // End A: its page says so, C is admitted, on both pages.
    await row(page, 'admin-sessions', id.a).getByTestId('end-session').click();
    await recordState(page, 'admin-3-confirm-end');
    await confirm(page);
    await v.a.page.getByTestId('ended-reason').and(v.a.page.locator('[data-reason=forced]')).waitFor();
    await waitForState(v.c.page, 'active', 20_000);
    await waitForLists(page, [id.b, id.c], [id.d, id.e]);
    await page.getByTestId('admin-announcer').getByText(`Session ${id.a} ended.`).waitFor();
    await fakeSaw(fake, { hangups: 1 });
    await broker.waitForLog(new RegExp(`admin: end_session id=${id.a} `));
    await recordState(page, 'admin-4-ended-one');

    // Pause: ending B admits nobody; a newcomer waits; the waiting pages say paused.
    await page.getByTestId('pause-button').click();
    await confirm(page);
    await page.getByTestId('admin-paused-banner').waitFor();
    await row(page, 'admin-sessions', id.b).getByTestId('end-session').click();
    await confirm(page);
    await waitForLists(page, [id.c], [id.d, id.e]);
    v.f = await visitor('f');
    await v.f.page.getByTestId('start-button').click();
    await waitForState(v.f.page, 'queued');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=admin-queue] > li').length === 3);
    id.f = (await listed(page))[1][2];
    await waitForLists(page, [id.c], [id.d, id.e, id.f]);
    for (const who of ['d', 'f']) {
      await v[who].page.getByTestId('queue-why').getByText('The operator has paused new conversations').waitFor();
    }
    assert.equal(await v.d.page.getByTestId('state-label').getAttribute('data-state'), 'next', 'D was not admitted while paused');
    await broker.waitForLog(/admin: pause /);
    await recordState(page, 'admin-5-paused');
    await recordState(v.f.page, 'admin-5-visitor-paused');

    // Resume: D takes the free place at once.
    await page.getByTestId('resume-button').click();
    await confirm(page);
    await waitForState(v.d.page, 'active', 20_000);
    await waitForLists(page, [id.c, id.d], [id.e, id.f]);
    assert.ok(await page.getByTestId('admin-paused-banner').isHidden());

    // Users 2 -> 1: nobody is cut off, and ending C admits nobody.
    await setUsers(page, 1);
    await page.getByTestId('figure-active').getByText('2 of 1').waitFor();
    await row(page, 'admin-sessions', id.c).getByTestId('end-session').click();
    await confirm(page);
    await waitForLists(page, [id.d], [id.e, id.f]);
    assert.equal(await v.e.page.getByTestId('state-label').getAttribute('data-state'), 'next');
    // Users 1 -> 2: the second place is filled at once.
    await setUsers(page, 2);
    await waitForState(v.e.page, 'active', 20_000);
    await waitForLists(page, [id.d, id.e], [id.f]);
    await broker.waitForLog(/admin: limits maxConcurrentUsers=2 /);
    await recordState(page, 'admin-6-limits-two');

    // Sign out: the login is over on the server; its WebSocket is refused and an open one closed.
    const [cookie] = (await admin.context.cookies()).filter(c => c.name === 'vb_admin');
    assert.ok(cookie?.httpOnly, 'the login cookie is HttpOnly');
    assert.equal(cookie.sameSite, 'Strict');
    const watcher = adminSocket(broker, { Cookie: `vb_admin=${cookie.value}` });
    assert.deepEqual(await watcher.opened, { opened: true });
    await page.getByTestId('signout-button').click();
    await page.getByTestId('admin-signin-message').getByText('You are signed out.').waitFor();
    assert.equal(await watcher.closed, 4401, 'an open admin WebSocket is closed with 4401 at sign-out');
    const refused = adminSocket(broker, { Cookie: `vb_admin=${cookie.value}` });
    assert.deepEqual(await refused.opened, { opened: false, status: 401 });
    const stale = await adminRequest(broker, 'state', { headers: { Cookie: `vb_admin=${cookie.value}` } });
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error.code, 'unauthorized');
    assert.equal((await admin.context.cookies()).filter(c => c.name === 'vb_admin').length, 0, 'the cookie is cleared');
    await recordState(page, 'admin-7-signed-out');

    // Nothing the console received or stored holds the token.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.documentElement.outerHTML);
    assert.ok(!stored.includes(ADMIN_TOKEN), 'the token is not in the page or its storage');
    assert.ok(!broker.lines.some(line => line.includes(ADMIN_TOKEN)), 'the token is not in the log');
  });
});

async function setUsers(page, users) {
  await page.getByTestId('limits-users').fill(String(users));
  await page.getByTestId('limits-apply').click();
  await confirm(page);
  await page.getByTestId('admin-announcer').getByText('Limits changed.').waitFor();
}

test('every console state passes axe in en/ru, light/dark, phone/desktop', { timeout: 480_000 }, async t => {
  await runScenario({ broker: { ...SETTINGS, MAX_QUEUE_LENGTH: '20' }, start }, async ({ broker, operator }) => {
    if (!await adminApiServed(broker)) {
      t.skip(NOT_SERVED);
      return;
    }
    const { page } = await operator();
    await recordLooks(page, 'admin-looks-signin');
    await page.getByTestId('admin-token').fill('not-the-token');
    await page.getByTestId('admin-signin-button').click();
    await page.getByTestId('admin-signin-message').getByText('That token is not right').waitFor();
    await recordLooks(page, 'admin-looks-signin-wrong');

    await signIn(page);
    await page.getByTestId('sessions-count').getByText('(0)').waitFor();
    await recordLooks(page, 'admin-looks-empty');

    // Visitors over plain HTTP: two talk, three wait (no browsers needed for the console's looks).
    for (let i = 0; i < 5; i++) {
      const joined = await fetch(`${broker.url}/api/session?action=join`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      assert.equal(joined.status, 200);
    }
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=admin-queue] > li').length === 3);
    await recordLooks(page, 'admin-looks-busy');

    // The modal dialog covers the language switch: it is opened anew in each language.
    await page.setViewportSize(LOOK_WIDTHS.phone);
    for (const lang of ['en', 'ru']) {
      await page.getByTestId(`language-${lang}`).click();
      await page.getByTestId('end-all-button').click();
      await page.getByTestId('confirm-dialog').waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'confirm-cancel', 'the safe choice has the focus');
      for (const theme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme: theme });
        await recordState(page, `admin-looks-confirm-${lang}-${theme}-phone`);
      }
      await page.keyboard.press('Escape');
      await page.getByTestId('confirm-dialog').waitFor({ state: 'hidden' });
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'end-all-button', 'focus returns to the button');
    }
    await page.getByTestId('language-en').click();
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(LOOK_WIDTHS.desktop);
    assert.equal(await page.getByTestId('sessions-count').textContent(), '(2)', 'Escape ended nobody');

    await page.getByTestId('pause-button').click();
    await confirm(page);
    await page.getByTestId('admin-paused-banner').waitFor();
    await page.getByTestId('limits-users').fill('0');
    await page.getByTestId('limits-apply').click();
    await page.getByTestId('limits-error').getByText('a whole number from 1 to 10000').waitFor();
    await recordLooks(page, 'admin-looks-paused-bad-limits');

    // What the cost-guard and multi-instance issues add: the double can show it today.
    if (broker.scenery) {
      const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
      broker.scenery({
        storeKind: 'redis', realCostUsd: 4.6, costPerSessionUsd: 0.12,
        budget: { dailyUsd: 5, spentUsd: 4.6, monthlyUsd: 100, monthSpentUsd: 12.3, exhausted: false, resetsAt: inAnHour },
        upstream: { lastError: { status: 429, code: 'upstream_quota', at: new Date(Date.now() - 90_000).toISOString() }, latencyMs: { p50: 180, p90: 420 }, quotaPausedUntil: inAnHour },
        instances: [
          { id: 'double-1', healthy: true, lastSeenSeconds: 1, activeSessions: 2, connections: 7 },
          { id: 'host-2', healthy: false, lastSeenSeconds: 45, activeSessions: 0, connections: 0 },
        ],
      });
      await page.getByTestId('admin-instances').locator('li').nth(1).waitFor();
      await page.locator('[data-testid=upstream-health][data-health=bad]').waitFor();
      await recordLooks(page, 'admin-looks-budget-instances');
      broker.scenery({ budget: { dailyUsd: 5, spentUsd: 5.2, monthlyUsd: 100, monthSpentUsd: 12.9, exhausted: true, resetsAt: inAnHour } });
      await page.getByTestId('budget-state').getByText('Budget used up').waitFor();
      await recordState(page, 'admin-looks-budget-exhausted-en-light-desktop');
    }

    await page.getByTestId('signout-button').click();
    await page.getByTestId('admin-signin-message').getByText('You are signed out.').waitFor();
    await recordLooks(page, 'admin-looks-signed-out', { widths: ['phone'] });
  });
});
