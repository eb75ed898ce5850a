// The visitor page's answers to what a visitor wonders (issue 16): where the focus goes, how an
// admission in another tab reaches them, what the assistant is doing, a warning that moves no
// button, a transcript they can take away, a live channel that comes back without losing the
// place, and a wait that stops when the server is gone.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { api } from './lib/broker.mjs';
import { DESKTOP, PHONE } from './lib/browser.mjs';
import { startProxy } from './lib/proxy.mjs';
import { LONG_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

const ONE_SLOT = { ...LONG_SESSION, MAX_CONCURRENT_USERS: '1' };

// The focused element is the h1 with this text (what a screen reader reads out).
async function focusedHeading(page, text) {
  await page.waitForFunction(
    expected => document.activeElement?.tagName === 'H1' && document.activeElement.textContent === expected, text,
  ).catch(async error => {
    const focused = await page.evaluate(() => document.activeElement?.outerHTML.slice(0, 200));
    throw new Error(`the focus is not on the heading "${text}" but on ${focused}`, { cause: error });
  });
}

async function switchLanguage(page, lang) {
  await page.getByTestId(`language-${lang}`).click();
  await page.locator(`html[lang=${lang}]`).waitFor({ state: 'attached' });
}

test('focus moves to the new heading; an admission in another tab changes the title, vibrates and notifies',
  { timeout: 90_000 }, async () => {
    await runScenario({ broker: ONE_SLOT }, async ({ fake, broker, visitor }) => {
      const talker = await visitor('talker');
      await talker.page.getByTestId('start-button').click();
      await waitForState(talker.page, 'active');
      await focusedHeading(talker.page, 'Conversation with the assistant');

      const waiter = await visitor('waiter');
      await waiter.page.getByTestId('idle-facts').getByText('Someone is talking now').waitFor();
      await waiter.page.getByTestId('start-button').click();
      await waitForState(waiter.page, 'next');
      await focusedHeading(waiter.page, 'You’re in the queue');
      assert.match(await waiter.page.getByTestId('queue-why').textContent(), /Someone is talking now\. Each conversation lasts up to 1 minute\./);

      // Notifications are asked for from the queue, when the visitor wants them, never on load.
      assert.deepEqual(await waiter.history().then(h => h.notifications), []);
      const offer = waiter.page.getByTestId('notify-button');
      assert.ok(await offer.isVisible(), 'the queue offers a notification');
      // The visitor clicks "Allow". The list replaces what the origin held, so the microphone is
      // in it too: without it Chromium hides the loopback candidates, and the call cannot connect.
      await waiter.context.grantPermissions(['notifications', 'microphone'], { origin: broker.url });
      await offer.click();
      await waiter.page.getByTestId('notify-state').getByText('You’ll get a notification when it’s your turn.').waitFor();
      assert.ok(!await offer.isVisible(), 'asked once');

      // Leave the queue, then queue again: the heading of each new view takes the focus.
      await waiter.page.getByTestId('leave-queue-button').click();
      await focusedHeading(waiter.page, 'You left');
      await waiter.page.getByTestId('queue-again-button').click();
      await waitForState(waiter.page, 'next');
      await focusedHeading(waiter.page, 'You’re in the queue');

      // The waiter turns to another tab (Chromium's focus emulation off, so focus is real).
      const cdp = await waiter.context.newCDPSession(waiter.page);
      await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false });
      await waiter.page.bringToFront();
      await waiter.page.waitForFunction(() => document.hasFocus());
      const otherTab = await waiter.context.newPage();
      await otherTab.bringToFront();
      await waiter.page.waitForFunction(() => !document.hasFocus());
      assert.equal(await waiter.page.title(), 'Voice assistant');

      await talker.page.getByTestId('end-button').click();
      await focusedHeading(talker.page, 'You left');
      await waitForState(waiter.page, 'active');
      await fakeSaw(fake, { connected: 2, channels: 2 }, 20_000);
      await waiter.page.waitForFunction(() => document.title === 'Your turn! · Voice assistant');
      const called = await waiter.history();
      assert.deepEqual(called.notifications, [
        { title: 'Your turn to talk', body: 'Come back to the voice assistant: your conversation is starting.' },
      ]);
      assert.deepEqual(called.vibrations, [[200, 100, 200]]);
      await focusedHeading(waiter.page, 'Conversation with the assistant');
      assert.deepEqual((await talker.history()).vibrations, [], 'admitted at once, the talker was not called back');

      // Back on the tab: the title is the page's again.
      await waiter.page.bringToFront();
      await waiter.page.waitForFunction(() => document.title === 'Voice assistant');
      await otherTab.close();
    });
  });

test('during a call: what the assistant is doing, a Mute button that says what it does, a warning that moves nothing',
  { timeout: 90_000 }, async () => {
    // The warning comes 15 s into the call, after the "before" measurements.
    await runScenario({ broker: { SESSION_DURATION_SECONDS: '25', WARNING_SECONDS: '10' } }, async ({ fake, visitor }) => {
      const { page, history } = await visitor('talker');
      await page.getByTestId('start-button').click();
      await waitForState(page, 'active');
      await fakeSaw(fake, { connected: 1, channels: 1 }, 20_000);
      await page.getByTestId('transcript').getByText('Hello! How can I help?', { exact: true }).waitFor();

      // The fake's opening: the visitor speaks, the assistant answers, then listens again.
      const status = page.getByTestId('call-status');
      await status.and(page.locator('[data-activity=listening]')).waitFor();
      assert.deepEqual((await history()).activity, ['listening', 'hearing', 'thinking', 'speaking', 'listening']);
      assert.equal(await status.textContent(), 'Listening — go ahead and talk');

      const mute = page.getByTestId('mute-button');
      assert.equal((await mute.textContent()).trim(), 'Mute microphone');
      await mute.click();
      assert.equal((await mute.textContent()).trim(), 'Unmute microphone');
      assert.equal(await status.getAttribute('data-activity'), 'muted');
      assert.equal(await status.textContent(), 'Microphone off: the assistant can’t hear you');
      assert.equal(await page.evaluate(() => document.getElementById('level-meter').classList.contains('meter--muted')), true);
      await switchLanguage(page, 'ru');
      assert.equal((await mute.textContent()).trim(), 'Включить микрофон', 'while muted, the button turns the microphone on');
      await mute.click();
      assert.equal((await mute.textContent()).trim(), 'Выключить микрофон');
      assert.equal(await status.textContent(), 'Слушает — говорите');
      await switchLanguage(page, 'en');

      // Where Mute and End are, in every look, before and after the warning.
      const looks = [['phone', PHONE, 'en'], ['phone', PHONE, 'ru'], ['desktop', DESKTOP, 'en'], ['desktop', DESKTOP, 'ru']];
      const places = async () => {
        const out = {};
        for (const [width, size, lang] of looks) {
          await page.setViewportSize(size);
          await switchLanguage(page, lang);
          out[`${width}-${lang}`] = {
            mute: await page.getByTestId('mute-button').boundingBox(),
            end: await page.getByTestId('end-button').boundingBox(),
          };
        }
        await page.setViewportSize(DESKTOP);
        await switchLanguage(page, 'en');
        return out;
      };
      const banner = page.getByTestId('warning-banner');
      const before = await places();
      assert.equal(await banner.textContent(), '', 'measured before the warning');
      await banner.getByText('10 seconds left').waitFor({ timeout: 20_000 });
      const after = await places();
      assert.match(await banner.textContent(), /10 seconds left/, 'measured with the warning shown');
      assert.deepEqual(after, before, 'the warning moved the buttons');

      // "Queue again" fits on one line on the narrowest phones, in both languages.
      await page.getByTestId('end-button').click();
      await page.getByTestId('ended-reason').and(page.locator('[data-reason=left]')).waitFor();
      for (const width of [320, 360, 390]) {
        await page.setViewportSize({ width, height: 800 });
        for (const lang of ['en', 'ru']) {
          await switchLanguage(page, lang);
          const fit = await page.getByTestId('queue-again-button').evaluate(button => {
            const range = document.createRange();
            range.selectNodeContents(button);
            return { lines: range.getClientRects().length, overflow: button.scrollWidth > button.clientWidth, text: button.textContent };
          });
          assert.deepEqual(fit, { lines: 1, overflow: false, text: lang === 'ru' ? 'Снова в очередь' : 'Queue again' }, `${width}px ${lang}`);
        }
      }
      await switchLanguage(page, 'en');
    });
  });

test('the transcript can be copied and downloaded, and stays when the visitor queues again', { timeout: 90_000 }, async () => {
  await runScenario({ broker: LONG_SESSION }, async ({ fake, broker, visitor }) => {
    const { page } = await visitor('talker');
    // With the microphone: the list replaces what the origin held (see the first test).
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write', 'microphone'], { origin: broker.url });
    await page.getByTestId('start-button').click();
    await waitForState(page, 'active');
    await page.getByTestId('transcript').getByText('Hello! How can I help?', { exact: true }).waitFor({ timeout: 20_000 });
    await page.getByTestId('end-button').click();
    await page.getByTestId('ended-reason').and(page.locator('[data-reason=left]')).waitFor();

    const oneCall = 'Voice assistant: transcript\nYou: Hello assistant\nAssistant: Hello! How can I help?\n';
    await page.getByTestId('transcript-copy').click();
    await page.getByTestId('transcript-feedback').getByText('Copied to the clipboard.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), oneCall);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('transcript-download').click()]);
    assert.match(download.suggestedFilename(), /^transcript-\d{4}-\d\d-\d\d-\d{4}\.txt$/);
    assert.equal(fs.readFileSync(await download.path(), 'utf8'), oneCall);
    await page.getByTestId('transcript-feedback').getByText(`Saved as ${download.suggestedFilename()}.`).waitFor();
    await recordState(page, 'transcript-ended');

    // Queue again: the first conversation is still there, the second is added below it.
    await page.getByTestId('queue-again-button').click();
    await waitForState(page, 'active');
    await fakeSaw(fake, { connected: 2, channels: 2 }, 20_000);
    const transcript = page.getByTestId('transcript');
    await transcript.locator('.turn').nth(3).getByText('Hello! How can I help?').waitFor({ timeout: 20_000 });
    assert.equal(await transcript.locator('.turn-divider').count(), 2);
    await page.getByTestId('end-button').click();
    await page.getByTestId('ended-reason').and(page.locator('[data-reason=left]')).waitFor();
    const [second] = await Promise.all([page.waitForEvent('download'), page.getByTestId('transcript-download').click()]);
    const text = fs.readFileSync(await second.path(), 'utf8');
    assert.match(text, /^Voice assistant: transcript\n\nConversation 1, \d\d:\d\d\nYou: Hello assistant\nAssistant: Hello! How can I help\?\n\nConversation 2, \d\d:\d\d\nYou: Hello assistant\nAssistant: Hello! How can I help\?\n$/);

    // In Russian, the same text in Russian.
    await switchLanguage(page, 'ru');
    await page.getByTestId('transcript-copy').click();
    await page.getByTestId('transcript-feedback').getByText('Скопировано в буфер обмена.').waitFor();
    assert.match(await page.evaluate(() => navigator.clipboard.readText()),
      /^Голосовой ассистент: текст разговора\n\nРазговор 1, \d\d:\d\d\nВы: Hello assistant\nАссистент: Hello! How can I help\?\n/);
    await recordState(page, 'transcript-two-calls-ru');
  });
});

test('the live channel comes back after a drop and after a 1012 restart with the same ticket and place; polling announces nothing twice',
  { timeout: 120_000 }, async () => {
    let proxy = null;
    try {
      await runScenario({ broker: ONE_SLOT }, async ({ fake, broker, visitor }) => {
        proxy = await startProxy(broker.port);
        const talker = await visitor('talker');
        await talker.page.getByTestId('start-button').click();
        await waitForState(talker.page, 'active');
        const next = await visitor('next', { url: proxy.url });
        await next.page.getByTestId('start-button').click();
        await waitForState(next.page, 'next');
        const second = await visitor('second', { url: proxy.url });
        await second.page.getByTestId('start-button').click();
        await waitForState(second.page, 'queued');
        await second.page.getByTestId('queue-why').getByText('1 person is ahead of you.').waitFor();
        const notice = page => page.getByTestId('connection-notice');
        const noticeCleared = (page, timeout) => page.waitForFunction(
          () => document.querySelector('[data-testid=connection-notice]').textContent === '', undefined, { timeout });
        const placesKept = async () => {
          assert.equal(await next.page.getByTestId('queue-position').textContent(), '1');
          assert.equal(await second.page.getByTestId('queue-position').textContent(), '2');
          const stats = await api(broker, 'stats');
          assert.equal(stats.body.queueLength, 2, JSON.stringify(stats.body));
        };

        // 1. A drop (1006 in the page): "reconnecting", then back after a jittered 0.5-1 s.
        assert.equal(proxy.dropWebSockets(), 2);
        for (const { page } of [next, second]) {
          await page.waitForFunction(() => window.__e2eHistory.sockets[1]?.openedAt);
          await noticeCleared(page);
        }
        for (const visitorWithDrop of [next, second]) {
          const { sockets, announcements } = await visitorWithDrop.history();
          assert.deepEqual(announcements.filter(a => a.region === 'connection-notice').map(a => a.text),
            ['Connection interrupted — reconnecting… Your place is kept.', ''], 'said while it was down, then cleared');
          const [first, again] = sockets;
          assert.equal(first.code, 1006);
          assert.equal(again.url, first.url, 'the same ticket');
          assert.ok(again.createdAt - first.closedAt >= 495, `back-off after a drop: ${again.createdAt - first.closedAt} ms`);
        }
        await placesKept();

        // 2. A service restart (1012): back at once (within the 250 ms spread).
        assert.equal(proxy.restartWebSockets(), 2);
        for (const visitorRestarted of [next, second]) {
          await visitorRestarted.page.waitForFunction(() => window.__e2eHistory.sockets[2]?.openedAt);
          const [, closed, again] = (await visitorRestarted.history()).sockets;
          assert.equal(closed.code, 1012);
          assert.equal(again.url, closed.url);
          assert.ok(again.createdAt - closed.closedAt < 450, `reconnect after 1012: ${again.createdAt - closed.closedAt} ms`);
        }
        await noticeCleared(second.page);
        await placesKept();

        // 3. The socket cannot come back for a while: polling keeps the page current, and what a
        // screen reader hears is the notice, once, not a position re-read every 2.5 s.
        const mark = (await second.history()).announcements.length;
        let polls = 0;
        second.page.on('request', request => { if (request.url().endsWith('action=status')) polls++; });
        proxy.refuseWebSockets(true);
        assert.equal(proxy.dropWebSockets(), 2);
        await notice(second.page).getByText('reconnecting').waitFor();
        const deadline = Date.now() + 30_000;
        while (polls < 3) {
          await second.page.waitForRequest(request => request.url().endsWith('action=status'), { timeout: deadline - Date.now() });
        }
        await second.page.waitForResponse(response => response.url().endsWith('action=status'));
        const heard = (await second.history()).announcements.slice(mark);
        assert.deepEqual(heard.map(a => `${a.region}: ${a.text}`),
          ['connection-notice: Connection interrupted — reconnecting… Your place is kept.'],
          `announced while polling (${polls} polls)`);
        await placesKept();

        // Back: the live channel reopens by itself, and the admission comes over it.
        proxy.refuseWebSockets(false);
        await noticeCleared(second.page, 20_000);
        await noticeCleared(next.page, 20_000);
        await talker.page.getByTestId('end-button').click();
        await waitForState(next.page, 'active');
        await fakeSaw(fake, { connected: 2, channels: 2 }, 20_000);
        await second.page.getByTestId('queue-position').getByText('1', { exact: true }).waitFor();
        await waitForState(second.page, 'next');
      });
    } finally {
      await proxy?.close();
    }
  });

test('when the server is unreachable, the wait stops and the page says so', { timeout: 60_000 }, async () => {
  await runScenario({ broker: ONE_SLOT }, async ({ broker, visitor }) => {
    const talker = await visitor('talker');
    await talker.page.getByTestId('start-button').click();
    await waitForState(talker.page, 'active');
    const { page } = await visitor('waiter');
    await page.getByTestId('start-button').click();
    await waitForState(page, 'next');
    await page.getByTestId('queue-eta').getByText(/^\d+:\d\d$/).waitFor();

    await broker.crash();
    await page.getByTestId('connection-notice')
      .getByText('The server can’t be reached — retrying. The wait time is paused until it answers.').waitFor();
    const eta = page.getByTestId('queue-eta');
    await eta.getByText('paused', { exact: true }).waitFor();
    // Nothing ticks any more: through two more failed attempts, the wait's text does not change.
    await eta.evaluate(element => {
      window.__etaChanges = 0;
      new MutationObserver(() => window.__etaChanges++).observe(element, { childList: true, characterData: true, subtree: true });
    });
    for (let failed = 0; failed < 2; failed++) {
      await page.waitForEvent('requestfailed', { predicate: request => request.url().endsWith('action=status'), timeout: 20_000 });
    }
    assert.equal(await page.evaluate(() => window.__etaChanges), 0);
    assert.equal(await eta.textContent(), 'paused');
    await talker.page.getByTestId('connection-notice').getByText('The server can’t be reached — retrying…').waitFor();
    await recordState(page, 'unreachable-queued');
  });
});
