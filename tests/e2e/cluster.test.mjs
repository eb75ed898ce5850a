// Issue 12: a graceful restart of one instance in redis mode ends nothing. Two brokers share one
// Redis behind a real nginx; the visitor talks through nginx; the instance that carries the
// page's live channel gets SIGTERM mid-call. It closes the channel with 1012 (service restart) and
// hangs nothing up; the page comes back at once through nginx to the other instance with its
// ticket, the call goes on, the warnings and the end arrive over the new channel, and the call is
// hung up once, at the session's end.  A second drop, just after the first warning, brings that
// warning again on the next channel (marked "replay"): the page shows each warning once.
import test from 'node:test';
import assert from 'node:assert/strict';
import { runClusterScenario, websocketClients } from './lib/cluster.mjs';
import { fakeSaw, waitForState } from './lib/scenario.mjs';

const SESSION = { SESSION_DURATION_SECONDS: '14', WARNING_SECONDS: '3,2,1', SHUTDOWN_GRACE_SECONDS: '2' };

test('SIGTERM of the instance carrying a call: no hang-up, 1012, the page carries on through the other instance',
  { timeout: 90_000 }, async () => {
    await runClusterScenario({ instances: 2, broker: SESSION }, async ({ fake, brokers, visitor }) => {
      const { page, seen, history } = await visitor('rolling');
      await page.getByTestId('start-button').click();
      await waitForState(page, 'active');
      await fakeSaw(fake, { connected: 1, channels: 1 });
      const admitted = seen.frames.find(f => f.type === 'status' && f.state === 'active');
      assert.ok(admitted, 'the admission was pushed over the live channel');
      const expiresAt = Date.parse(admitted.expiresAt);

      // The instance that carries the page's live channel (its gauge), and the other one.
      const counts = await Promise.all(brokers.map(websocketClients));
      assert.deepEqual([...counts].sort(), [0, 1], `live channels per instance: ${counts}`);
      const doomed = counts.indexOf(1);
      const survivor = 1 - doomed;

      // SIGTERM: the broker exits 0 (no sanitizer report) after closing the channel with 1012.
      await brokers[doomed].stop();
      await page.waitForFunction(() => window.__e2eHistory.sockets[1]?.openedAt, null, { timeout: 5000 });
      const { sockets } = await history();
      assert.equal(sockets[0].code, 1012, 'the live channel was closed as a service restart');
      assert.ok(sockets[1].createdAt - sockets[0].closedAt < 450,
        `the page came back at once: ${sockets[1].createdAt - sockets[0].closedAt} ms after the close`);
      assert.equal(await websocketClients(brokers[survivor]), 1, 'the other instance carries the channel now');
      assert.equal(fake.snapshot().hangups.length, 0, 'a graceful restart hung a call up');
      assert.ok(Date.now() < expiresAt - 3500, 'too slow: the first warning is already due');

      // The page's channel drops right after the first warning (as a flaky network would drop it)
      // and comes back after its back-off: the warning that fired last is told again on the new
      // channel (at least once), and the page does not show it a second time.
      const banner = page.getByTestId('warning-banner');
      await banner.getByText('3 seconds left').waitFor({ timeout: 15_000 });
      await page.evaluate(() => window.__e2eSockets.at(-1).close(4000));
      await page.waitForFunction(() => window.__e2eHistory.sockets[2]?.openedAt, null, { timeout: 5000 });

      // The call goes on; the warnings and the end come from the survivor, each shown once.
      await page.getByTestId('ended-reason').and(page.locator('[data-reason=expired]')).waitFor({ timeout: 20_000 });
      await fakeSaw(fake, { hangups: 1 });
      const state = fake.snapshot();
      assert.deepEqual(state.hangups, [state.calls[0].id], 'one hang-up, of the call that was made');
      const hangup = state.requests.find(r => r.route === 'hangup');
      const late = Date.parse(hangup.at) - expiresAt;
      assert.ok(late > -200 && late < 1500, `hung up ${late} ms after the session's expiresAt`);
      const pushes = seen.frames.filter(f => f.type !== 'status');
      assert.deepEqual(pushes.filter(f => f.type !== 'warning').map(f => f.type), ['ended']);
      const warnings = pushes.filter(f => f.type === 'warning');
      const fresh = warnings.filter(f => !f.replay).map(f => f.warningSeconds);
      assert.equal(new Set(fresh).size, fresh.length, `a warning was pushed as new twice: ${JSON.stringify(warnings)}`);
      assert.ok(warnings.some(f => f.replay), `the reopened channel was not told the last warning: ${JSON.stringify(warnings)}`);
      assert.deepEqual([...new Set(warnings.map(f => f.warningSeconds))], [3, 2, 1], JSON.stringify(warnings));
      const { states, warningShows } = await history();
      assert.deepEqual(warningShows.map(text => text.replace(/ The conversation ends automatically\.$/, '')),
        ['3 seconds left', '2 seconds left', '1 second left'], 'each warning shown once, across the reconnects');
      assert.deepEqual(states, ['idle', 'joining', 'connecting', 'active', 'ended'], 'the page never left the call before its end');
    });
  });
