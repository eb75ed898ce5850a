// Scenario 2: two visitors, one slot. The second waits at position 1 and is admitted by a push on
// the live channel (not by polling, not by a reload) as soon as the first one ends.
import test from 'node:test';
import assert from 'node:assert/strict';
import { api } from './lib/broker.mjs';
import { LONG_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

test('two visitors: the second waits at position 1 and is admitted when the first ends', { timeout: 90_000 }, async () => {
  await runScenario({ broker: { ...LONG_SESSION, MAX_CONCURRENT_USERS: '1' } }, async ({ fake, broker, visitor }) => {
    const first = await visitor('first');
    await first.page.getByTestId('start-button').click();
    await waitForState(first.page, 'active');
    await fakeSaw(fake, { connected: 1, channels: 1 });

    const second = await visitor('second');
    await second.page.getByTestId('start-button').click();
    await waitForState(second.page, 'next');
    assert.equal(await second.page.getByTestId('queue-position').textContent(), '1');
    await second.page.getByTestId('queue-next').waitFor();
    // The wait is bounded by what is left of the first session.
    const eta = await second.page.getByTestId('queue-eta').textContent();
    const match = /^(\d+):(\d\d)$/.exec(eta);
    assert.ok(match, `an ETA like 0:59, not "${eta}"`);
    assert.ok(Number(match[1]) * 60 + Number(match[2]) <= Number(LONG_SESSION.SESSION_DURATION_SECONDS), eta);
    assert.ok(await second.page.getByTestId('leave-queue-button').isEnabled());
    await recordState(second.page, '2-queue-second-waiting');

    const stats = await api(broker, 'stats');
    assert.equal(stats.status, 200);
    assert.equal(stats.body.activeSessions, 1);
    assert.equal(stats.body.queueLength, 1);
    await waitForState(first.page, 'active', 1000);

    // The first visitor ends the call; the slot passes on at once.
    await first.page.getByTestId('end-button').click();
    await first.page.getByTestId('ended-reason').and(first.page.locator('[data-reason=left]')).waitFor();
    await recordState(first.page, '2-queue-first-left');

    await waitForState(second.page, 'active');
    await fakeSaw(fake, { connected: 2, channels: 2 });
    await second.page.getByTestId('transcript').getByText('Hello! How can I help?', { exact: true }).waitFor();
    await recordState(second.page, '2-queue-second-admitted');

    const { states } = await second.history();
    assert.deepEqual(states, ['idle', 'joining', 'next', 'connecting', 'active']);
    const statuses = second.seen.frames.filter(f => f.type === 'status').map(f => f.state);
    assert.equal(statuses[0], 'queued');
    assert.ok(statuses.includes('active'), `the admission came over the live channel: ${statuses}`);
    assert.equal(second.seen.sockets, 1, 'one live channel, never reconnected');
    assert.ok(!second.seen.requests.includes('GET status'), `no polling: ${second.seen.requests}`);

    // The broker hung up the first call when its visitor left.
    await fakeSaw(fake, { hangups: 1 });
    const state = fake.snapshot();
    assert.equal(state.calls.length, 2);
    assert.deepEqual(state.hangups, [state.calls[0].id]);

    await second.page.getByTestId('end-button').click();
    await second.page.getByTestId('ended-reason').and(second.page.locator('[data-reason=left]')).waitFor();
    await fakeSaw(fake, { hangups: 2 });
    assert.deepEqual(fake.snapshot().hangups, [state.calls[0].id, state.calls[1].id]);
  });
});
