// Scenarios 4 and 5: what the visitor sees when a call cannot start (OpenAI failing, OpenAI not
// configured, the microphone refused), and that the page stays usable and gives the slot back.
import test from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/broker.mjs';
import { LONG_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

// Waits for the failure view with this error code; returns its title and text.
async function failureShown(page, code, timeout) {
  const box = page.getByTestId('error-box');
  await box.and(page.locator(`[data-code=${code}]`)).waitFor({ timeout });
  await waitForState(page, 'failed', 1000);
  const retry = page.getByTestId('retry-button');
  assert.ok(await retry.isVisible(), 'the retry button is shown');
  assert.ok(await retry.isEnabled(), 'the retry button is usable');
  return { title: await page.locator('#error-title').textContent(), text: await page.locator('#error-text').textContent() };
}

// The page gave its slot back (it posts leave on a failure: the count-th time the broker ends a
// session as "left"), so nobody waits behind a call that cannot start.
async function slotFreed(broker, count = 1) {
  await broker.waitForLog(/session: ended \(left\)/, 5000, { count });
  const stats = await api(broker, 'stats');
  assert.equal(stats.status, 200);
  assert.equal(stats.body.activeSessions, 0, `no session left behind: ${JSON.stringify(stats.body)}`);
  assert.equal(stats.body.queueLength, 0);
}

test('OpenAI failing (500 on client_secrets) shows the upstream message; retry works once it recovers', { timeout: 60_000 }, async () => {
  await runScenario({ broker: { ...LONG_SESSION, OPENAI_TIMEOUT_SECONDS: '5' } }, async ({ fake, broker, visitor }) => {
    fake.addFault({ route: 'client_secrets', mode: '500' });
    const { page, seen } = await visitor('unlucky');
    await page.getByTestId('start-button').click();

    const shown = await failureShown(page, 'upstream_error', 15_000);
    assert.equal(shown.title, 'The voice service didn’t answer');
    assert.match(shown.text, /OpenAI is unavailable or slow right now/);
    await recordState(page, '4-failed-upstream');
    assert.ok(fake.snapshot().counts.client_secrets >= 1, 'the broker did ask OpenAI');
    assert.equal(fake.snapshot().counts.calls, 0, 'no call without a key');
    await broker.waitForLog(/openai: .*answered 500/, 5000);
    await slotFreed(broker);
    assert.ok(seen.requests.includes('POST leave'), `the page gave the slot back: ${seen.requests}`);

    // OpenAI recovers: the same page, without a reload, gets a call.
    const cleared = await fetch(`${fake.url}/__control/faults`, { method: 'DELETE' });
    assert.equal(cleared.status, 200);
    await page.getByTestId('retry-button').click();
    await waitForState(page, 'active');
    await fakeSaw(fake, { connected: 1, channels: 1 });
    await page.getByTestId('transcript').getByText('Hello! How can I help?', { exact: true }).waitFor();
    await page.getByTestId('end-button').click();
    await page.getByTestId('ended-reason').and(page.locator('[data-reason=left]')).waitFor();
    await fakeSaw(fake, { hangups: 1 });
  });
});

test('OpenAI not configured (no OPENAI_API_KEY) shows the set-up message; the page stays usable', { timeout: 60_000 }, async () => {
  await runScenario({ fake: false, broker: LONG_SESSION }, async ({ broker, visitor }) => {
    const { page, seen, history } = await visitor('early');
    await page.getByTestId('start-button').click();

    const shown = await failureShown(page, 'not_configured');
    assert.equal(shown.title, 'The voice service is not set up');
    assert.match(shown.text, /no OpenAI key/);
    await recordState(page, '4-failed-not-configured');
    await slotFreed(broker);

    // Trying again really tries again (a new join), and ends the same way, still usable.
    const joins = seen.requests.filter(r => r === 'POST join').length;
    await page.getByTestId('retry-button').click();
    await page.waitForFunction(n => window.__e2eHistory.states.filter(s => s === 'failed').length === n, 2);
    await failureShown(page, 'not_configured');
    assert.equal(seen.requests.filter(r => r === 'POST join').length, joins + 1);
    const { states } = await history();
    assert.deepEqual(states, ['idle', 'joining', 'connecting', 'failed', 'joining', 'connecting', 'failed']);
    await slotFreed(broker, 2);
  });
});

test('microphone refused shows how to allow it, and frees the slot', { timeout: 60_000 }, async () => {
  await runScenario({ broker: LONG_SESSION }, async ({ fake, broker, visitor }) => {
    const { page } = await visitor('no-mic', { micDenied: true });
    await page.getByTestId('start-button').click();

    const shown = await failureShown(page, 'mic_denied');
    assert.equal(shown.title, 'Microphone access is blocked');
    assert.match(shown.text, /Allow the microphone for this site/);
    assert.match(shown.text, /set Microphone to Allow/);
    await recordState(page, '5-failed-mic-denied');
    await slotFreed(broker);
    // Nothing was spent upstream for a visitor who cannot speak.
    assert.equal(fake.snapshot().counts.total, 0);
  });
});

// Issue 12: an instance that cannot reach Redis answers join with 503 store_unavailable and a
// Retry-After. The page asks again by itself, with growing waits stretched at random (never
// sooner than Retry-After), and says it is trying. The two refusals are made in the browser
// (page.route), the third join goes to the real broker.
test('join refused with store_unavailable is retried by the page with jittered back-off', { timeout: 60_000 }, async () => {
  await runScenario({ broker: LONG_SESSION }, async ({ visitor }) => {
    const { page } = await visitor('patient');
    const joins = [];
    await page.route(/\/api\/session\?action=join$/, async route => {
      joins.push(Date.now());
      if (joins.length > 2) return route.continue();
      return route.fulfill({
        status: 503,
        headers: { 'Content-Type': 'application/json', 'Retry-After': '1' },
        body: JSON.stringify({ error: { code: 'store_unavailable', message: 'The server cannot reach its shared store right now; try again in a few seconds.' } }),
      });
    });
    await page.getByTestId('start-button').click();
    await page.getByTestId('connection-notice').getByText('The server is busy — trying again…').waitFor();
    await waitForState(page, 'active', 15_000);
    assert.equal(joins.length, 3);
    const gaps = [joins[1] - joins[0], joins[2] - joins[1]];
    // 2 s then 4 s, each stretched by up to half (a little slack for the browser's own timers).
    assert.ok(gaps[0] >= 1950 && gaps[0] <= 3200, `first wait ${gaps[0]} ms`);
    assert.ok(gaps[1] >= 3950 && gaps[1] <= 6200, `second wait ${gaps[1]} ms`);
    assert.equal(await page.getByTestId('connection-notice').textContent(), '', 'the notice goes once joined');
  });
});
