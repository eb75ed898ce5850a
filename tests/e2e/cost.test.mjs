// The cost guard as a visitor meets it (issue 14): a spent budget (the page says when new
// conversations start again, in the budget's time zone, in English and Russian; a visitor already
// waiting is told why nobody moves), a silent call that ends as idle, and the assistant's wrap-up
// before the end, heard in the transcript.
import test from 'node:test';
import assert from 'node:assert/strict';
import { LONG_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

const ZONE = 'Europe/Berlin';
// The budget's reset is local midnight in ZONE; the page writes it as 00:00.
const RESET = /00:00 \(Europe\/Berlin\)/;

// One 60 s session at $0.06/min is $0.06; a $0.01 day budget cannot fit even one.
const SPENT_BUDGET = { ...LONG_SESSION, COST_PER_MINUTE_USD: '0.06', DAILY_BUDGET_USD: '0.01', BUDGET_TIMEZONE: ZONE };

test('a spent budget: join is refused with the local reset time, in English and Russian', { timeout: 60_000 }, async () => {
  await runScenario({ fake: false, broker: SPENT_BUDGET }, async ({ visitor }) => {
    const { page } = await visitor('late');
    const languages = [];
    page.on('request', request => {
      if (request.url().endsWith('action=join')) languages.push(request.headers()['x-visitor-language']);
    });
    await page.getByTestId('start-button').click();
    await waitForState(page, 'failed');
    assert.equal(await page.getByTestId('error-box').getAttribute('data-code'), 'budget_exhausted');
    assert.equal(await page.locator('#error-title').textContent(), 'No more conversations today');
    const text = await page.locator('#error-text').textContent();
    assert.match(text, /^Today’s budget for conversations is spent\. New conversations start again at /);
    assert.match(text, RESET);
    await recordState(page, 'cost-budget-exhausted');

    // The message follows the language switch, and the next join says which language it asks in.
    await page.getByTestId('language-ru').click();
    assert.match(await page.locator('#error-text').textContent(), /^Дневной бюджет на разговоры исчерпан\. Новые разговоры начнутся в 00:00 \(Europe\/Berlin\)\.$/);
    await page.getByTestId('retry-button').click();
    await page.locator('#error-text').getByText(/начнутся в 00:00/).waitFor();
    assert.deepEqual(languages, ['en', 'ru']);
    await recordState(page, 'cost-budget-exhausted-ru');
  });
});

// One session of 6 s at $0.30/min is $0.03 and the budget $0.05: the first fits, and once it has
// been spent the next no longer does.  The visitor waiting behind it keeps the place and is told.
test('a visitor waiting when the budget runs out is told why nobody moves, and until when', { timeout: 60_000 }, async () => {
  const settings = { SESSION_DURATION_SECONDS: '6', WARNING_SECONDS: '', COST_PER_MINUTE_USD: '0.3',
    DAILY_BUDGET_USD: '0.05', BUDGET_TIMEZONE: ZONE };
  await runScenario({ fake: false, broker: settings }, async ({ broker, visitor }) => {
    const { page } = await visitor('waiting');
    // The one talking needs no browser: its join admits it, and its session runs out 6 s later,
    // while the page (already loaded) waits behind it.
    const first = await fetch(`${broker.url}/api/session?action=join`, { method: 'POST' });
    assert.equal(first.status, 200);
    assert.equal((await first.json()).state, 'active');
    await page.getByTestId('start-button').click();
    await waitForState(page, 'next');
    const busy = page.locator('#queue-busy');
    await busy.and(page.locator('[data-hold=budget_exhausted]')).waitFor({ timeout: 10_000 });
    assert.match(await busy.textContent(), /^The budget for conversations is spent: nobody is admitted until .+, 00:00 \(Europe\/Berlin\)\. Your place is kept\.$/);
    assert.equal(await page.getByTestId('queue-eta').textContent(), 'paused');
    assert.ok(await page.getByTestId('queue-next').isHidden(), 'not "get ready to talk" while nobody is admitted');
    await waitForState(page, 'next');  // still in the queue, first in line
    await recordState(page, 'cost-queue-held');
    await page.getByTestId('language-ru').click();
    assert.match(await busy.textContent(), /^Бюджет на разговоры исчерпан: до .+, 00:00 \(Europe\/Berlin\) новых разговоров не будет\. Ваше место сохраняется\.$/);
  });
});

test('OpenAI out of credit: the page says new conversations are paused, and OpenAI is asked once', { timeout: 60_000 }, async () => {
  await runScenario({ broker: { ...LONG_SESSION, QUOTA_PAUSE_SECONDS: '30' } }, async ({ fake, visitor }) => {
    fake.addFault({ route: 'client_secrets', mode: 'insufficient_quota' });
    const { page } = await visitor('broke');
    await page.getByTestId('start-button').click();
    await page.getByTestId('error-box').and(page.locator('[data-code=upstream_quota]')).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#error-title').textContent(), 'New conversations are paused');
    assert.match(await page.locator('#error-text').textContent(), /run out of credit with OpenAI/);
    assert.equal(fake.snapshot().counts.client_secrets, 1, 'not retried');
    await recordState(page, 'cost-upstream-quota');
    // A second try during the pause is refused at join, without asking OpenAI.
    await page.getByTestId('retry-button').click();
    await page.getByTestId('error-box').and(page.locator('[data-code=upstream_quota]')).waitFor();
    await waitForState(page, 'failed');
    assert.equal(fake.snapshot().counts.client_secrets, 1);
  });
});

for (const mode of ['token', 'relay']) {
  test(`${mode} mode: a call where no one speaks ends as idle, and the page says for how long`, { timeout: 60_000 }, async () => {
    const settings = { ...LONG_SESSION, REALTIME_MODE: mode, SILENCE_TIMEOUT_SECONDS: '2' };
    await runScenario({ fakeScript: { mode: 'silent' }, broker: settings }, async ({ fake, broker, visitor }) => {
      const { page, seen } = await visitor(`quiet-${mode}`);
      await page.getByTestId('start-button').click();
      await waitForState(page, 'active');
      await fakeSaw(fake, { connected: 1, sidebandsOpen: 1 });
      await page.getByTestId('ended-reason').and(page.locator('[data-reason=idle]')).waitFor({ timeout: 8000 });
      assert.equal(await page.getByTestId('ended-reason').textContent(), 'The conversation went quiet');
      assert.equal(await page.locator('#ended-text').textContent(), 'Ended: no one spoke for 2 seconds.');
      assert.deepEqual(seen.frames.filter(f => f.type === 'ended'), [{ type: 'ended', reason: 'idle', silenceSeconds: 2 }]);
      await broker.waitForLog(/session: ended \(idle\)/, 5000);
      await fakeSaw(fake, { hangups: 1 });
      if (mode === 'token') {
        await recordState(page, 'cost-ended-idle');
        await page.getByTestId('language-ru').click();
        assert.equal(await page.locator('#ended-text').textContent(), 'Завершено: никто не говорил 2 секунды.');
      }
    });
  });
}

// The wrap-up goes to the assistant 4 s before the end; the assistant's goodbye reaches the page's
// transcript once, in the language the page speaks.
for (const lang of ['en', 'ru']) {
  test(`the assistant wraps up before the end, once, and the visitor reads it (${lang})`, { timeout: 60_000 }, async () => {
    const settings = { SESSION_DURATION_SECONDS: '8', WARNING_SECONDS: '', WRAP_UP_SECONDS: '4',
      REALTIME_MODE: lang === 'en' ? 'token' : 'relay' };
    const goodbye = lang === 'en'
      ? 'We are almost out of time, so let me wrap up here. Thank you for talking with me. Goodbye!'
      : 'Наше время почти вышло, так что я закругляюсь. Спасибо за разговор. До свидания!';
    await runScenario({ broker: settings }, async ({ fake, broker, visitor }) => {
      const { page } = await visitor(`wrap-${lang}`);
      if (lang === 'ru') await page.getByTestId('language-ru').click();
      await page.getByTestId('start-button').click();
      await waitForState(page, 'active');
      const transcript = page.getByTestId('transcript');
      await transcript.getByText(goodbye, { exact: true }).waitFor({ timeout: 8000 });
      await page.getByTestId('ended-reason').and(page.locator('[data-reason=expired]')).waitFor({ timeout: 8000 });
      assert.equal(await transcript.getByText(goodbye, { exact: true }).count(), 1, 'the goodbye is heard once');
      await broker.waitForLog(/session: ended \(expired\)/, 5000);
      const calls = fake.snapshot().calls;
      assert.equal(calls.length, 1);
      const wrapUps = calls[0].responses.filter(r => r.wrapUp);
      assert.equal(wrapUps.length, 1, 'one wrap-up');
      assert.equal(wrapUps[0].wrapUp.lang, lang);
      assert.equal(wrapUps[0].transcript, goodbye);
    });
  });
}
