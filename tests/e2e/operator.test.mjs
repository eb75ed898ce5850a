// Scenario 3: the operator's forceEndAll ends a running call; the visitor is told who ended it,
// and OpenAI is told to hang up.
import test from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_TOKEN, api } from './lib/broker.mjs';
import { LONG_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

test('forceEndAll ends the call with the "ended by the operator" message', { timeout: 60_000 }, async () => {
  await runScenario({ broker: LONG_SESSION }, async ({ fake, broker, visitor }) => {
    const { page, seen } = await visitor('talker');
    await page.getByTestId('start-button').click();
    await waitForState(page, 'active');
    await fakeSaw(fake, { connected: 1, channels: 1 });

    const refused = await api(broker, 'forceEndAll', { headers: { 'x-admin-token': 'not-the-token' } });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'unauthorized');
    await waitForState(page, 'active', 1000);

    const forced = await api(broker, 'forceEndAll', { method: 'POST', headers: { 'x-admin-token': ADMIN_TOKEN } });
    assert.equal(forced.status, 200);
    assert.deepEqual(forced.body, { success: true, endedSessions: 1 });

    await page.getByTestId('ended-reason').and(page.locator('[data-reason=forced]')).waitFor();
    assert.equal(await page.getByTestId('ended-reason').textContent(), 'Ended by the operator');
    assert.ok(await page.getByTestId('queue-again-button').isEnabled());
    await recordState(page, '3-operator-ended');
    assert.deepEqual(seen.frames.filter(f => f.type === 'ended'), [{ type: 'ended', reason: 'forced' }]);

    await broker.waitForLog(/session: ended \(forced\)/, 5000);
    await fakeSaw(fake, { hangups: 1 });
    const state = fake.snapshot();
    assert.deepEqual(state.hangups, [state.calls[0].id]);
    const stats = await api(broker, 'stats');
    assert.equal(stats.body.activeSessions, 0);
  });
});
