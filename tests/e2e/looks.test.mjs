// Every state a visitor can reach, in every look: axe-core finds nothing serious or critical in
// English and Russian, light and dark, on a phone and on a desktop, and each is saved as a
// screenshot (test-output/e2e/looks-<state>-<lang>-<theme>-<width>.png) to be looked at.
// One slot, a queue of two: idle, queued (with someone ahead), in a call, the warning, ended,
// failed (the queue is full), reconnecting (the live channel cut), and the server unreachable.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startProxy } from './lib/proxy.mjs';
import { fakeSaw, recordLooks, recordState, runScenario, waitForState } from './lib/scenario.mjs';

// The warning comes 30 s into the call: the looks of the call without it are taken before.
const SETTINGS = { MAX_CONCURRENT_USERS: '1', MAX_QUEUE_LENGTH: '2', SESSION_DURATION_SECONDS: '90', WARNING_SECONDS: '60' };

test('every visitor state passes axe in en/ru, light/dark, phone/desktop', { timeout: 300_000 }, async () => {
  let proxy = null;
  try {
    await runScenario({ broker: SETTINGS }, async ({ fake, broker, visitor }) => {
      proxy = await startProxy(broker.port);
      const talker = await visitor('talker');
      await talker.page.getByTestId('idle-facts').getByText('A place is free now').waitFor();
      await recordLooks(talker.page, 'looks-idle');

      await talker.page.getByTestId('start-button').click();
      await waitForState(talker.page, 'active');
      await fakeSaw(fake, { connected: 1, channels: 1 }, 20_000);
      await talker.page.getByTestId('transcript').getByText('Hello! How can I help?', { exact: true }).waitFor({ timeout: 20_000 });
      await recordLooks(talker.page, 'looks-active');
      assert.equal(await talker.page.getByTestId('warning-banner').textContent(), '', 'the call was seen before its warning');

      const next = await visitor('next');
      await next.page.getByTestId('start-button').click();
      await waitForState(next.page, 'next');
      await recordState(next.page, 'looks-queued-next-en-light-desktop');
      // The third visitor comes through the proxy, whose WebSockets the test can cut.
      const waiter = await visitor('waiter', { url: proxy.url });
      await waiter.page.getByTestId('start-button').click();
      await waitForState(waiter.page, 'queued');
      await waiter.page.getByTestId('queue-why').getByText('1 person is ahead of you.').waitFor();
      await recordLooks(waiter.page, 'looks-queued');

      const latecomer = await visitor('latecomer');
      await latecomer.page.getByTestId('idle-facts').getByText('2 people are waiting.').waitFor();
      await recordLooks(latecomer.page, 'looks-idle-busy', { widths: ['phone'] });
      await latecomer.page.getByTestId('start-button').click();
      await latecomer.page.getByTestId('error-box').and(latecomer.page.locator('[data-code=queue_full]')).waitFor();
      await recordLooks(latecomer.page, 'looks-failed');

      await talker.page.getByTestId('warning-banner').getByText('1 minute left').waitFor({ timeout: 60_000 });
      await recordLooks(talker.page, 'looks-warning');

      await talker.page.getByTestId('end-button').click();
      await talker.page.getByTestId('ended-reason').and(talker.page.locator('[data-reason=left]')).waitFor();
      await recordLooks(talker.page, 'looks-ended');
      await waitForState(next.page, 'active');

      // The live channel is cut and cannot come back; polling keeps the place meanwhile.
      proxy.refuseWebSockets(true);
      assert.equal(proxy.dropWebSockets(), 1);
      await waiter.page.getByTestId('connection-notice').getByText('reconnecting').waitFor();
      await waiter.page.waitForRequest(request => request.url().endsWith('action=status'));
      await recordLooks(waiter.page, 'looks-reconnecting');

      // The server is gone: the wait stops and says so.
      await broker.crash();
      await waiter.page.getByTestId('connection-notice').getByText('can’t be reached').waitFor();
      await waiter.page.getByTestId('queue-eta').getByText('paused').waitFor();
      await recordLooks(waiter.page, 'looks-unreachable');
    });
  } finally {
    await proxy?.close();
  }
});
