// The other two ways a call ends without the visitor pressing End: the visitor vanishes (the tab
// is closed) and the server shuts down. OpenAI does not end a started call for an hour by itself,
// so in both the broker must hang it up.
import test from 'node:test';
import assert from 'node:assert/strict';
import { LONG_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

test('a visitor who closes the tab mid-call is dropped, and the call is hung up', { timeout: 60_000 }, async () => {
  const settings = { ...LONG_SESSION, HEARTBEAT_TIMEOUT_SECONDS: '3', WS_IDLE_TIMEOUT_SECONDS: '3' };
  await runScenario({ broker: settings }, async ({ fake, broker, visitor }) => {
    const talker = await visitor('vanishing');
    await talker.page.getByTestId('start-button').click();
    await waitForState(talker.page, 'active');
    await fakeSaw(fake, { connected: 1, channels: 1 });

    await talker.page.close();
    await broker.waitForLog(/session: ended \(abandoned\)/, 10_000);
    await fakeSaw(fake, { hangups: 1 });
    const state = fake.snapshot();
    assert.deepEqual(state.hangups, [state.calls[0].id]);
  });
});

test('a server shutdown (SIGTERM) tells the visitor and hangs the call up', { timeout: 60_000 }, async () => {
  await runScenario({ broker: LONG_SESSION }, async ({ fake, broker, visitor }) => {
    const { page, seen } = await visitor('interrupted');
    await page.getByTestId('start-button').click();
    await waitForState(page, 'active');
    await fakeSaw(fake, { connected: 1, channels: 1 });

    const stopped = broker.stop();
    await page.getByTestId('ended-reason').and(page.locator('[data-reason=shutdown]')).waitFor();
    assert.equal(await page.getByTestId('ended-reason').textContent(), 'Server restarting');
    await recordState(page, '7-ended-shutdown');
    await fakeSaw(fake, { hangups: 1 });
    assert.deepEqual(seen.frames.filter(f => f.type === 'ended'), [{ type: 'ended', reason: 'shutdown' }]);
    await stopped;
  });
});

// A reload keeps the ticket (its cookie), so Start resumes the same session and opens a second
// call; the first one's browser side is gone, but OpenAI keeps it until it is hung up.
// The broker keeps every call id of a session and hangs up all of them.
for (const mode of ['token', 'relay']) {
  test(`${mode} mode: after a reload mid-call, every call of the session is hung up at its end`,
    { timeout: 60_000 }, async () => {
      await runScenario({ broker: { ...LONG_SESSION, REALTIME_MODE: mode } }, async ({ fake, visitor }) => {
        const { page } = await visitor(`reloader-${mode}`);
        await page.getByTestId('start-button').click();
        await waitForState(page, 'active');
        await fakeSaw(fake, { connected: 1, channels: 1 });

        await page.reload();
        await page.getByTestId('start-button').click();
        await waitForState(page, 'active');
        await fakeSaw(fake, { connected: 2, channels: 2 });
        await page.getByTestId('end-button').click();
        await page.getByTestId('ended-reason').and(page.locator('[data-reason=left]')).waitFor();

        await fakeSaw(fake, { hangups: 1 });
        const { ok } = await fake.waitFor({ hangups: 2 }, 3000);
        const state = fake.snapshot();
        const open = state.calls.filter(call => !call.hungUp).map(call => `${call.id} (${call.connectionState})`);
        assert.ok(ok, `calls the broker never hung up: ${open.join(', ')}`);
        assert.deepEqual([...state.hangups].sort(), state.calls.map(call => call.id).sort());
      });
    });
}
