// One scenario's world: the fake OpenAI (in this process), the real broker pointed at it, and the
// visitors' browsers; torn down in that order's reverse, whatever happened. A failure message
// carries the broker's log and each page's state, which is what one needs to understand it.
import assert from 'node:assert/strict';
import { startFakeOpenAI } from '../../fakes/fake-openai/server.mjs';
import { ADMIN_TOKEN, startBroker } from './broker.mjs';
import { DESKTOP, PHONE, accessibilityReport, launchVisitor, saveScreenshot } from './browser.mjs';

export const OPENAI_KEY = 'e2e-fake-openai-key-0123456789';

// Second-scale sessions: long enough for a WebRTC call to connect (about 0.5-1.5 s here) and the
// transcript to arrive before the first warning.
export const SHORT_SESSION = { SESSION_DURATION_SECONDS: '8', WARNING_SECONDS: '3,2,1' };
// For scenarios that end the call some other way: the clock must not end it first.
export const LONG_SESSION = { SESSION_DURATION_SECONDS: '60', WARNING_SECONDS: '3,2,1' };

// options.fake: start the fake OpenAI and give the broker its key and URL (default true).
// options.fakeScript: the fake's conversation script (e.g. {mode: 'silent'}; default its opening).
// options.broker: the broker's settings for this scenario.
// options.start: what starts the server (default the real binary; the admin tests pass the admin
// API's test double, lib/admin-double.mjs, when ADMIN_API_DOUBLE=1).
export async function runScenario({ fake: withFake = true, fakeScript, broker: settings = {}, start = startBroker }, body) {
  const fake = withFake ? await startFakeOpenAI({ realKey: OPENAI_KEY, script: fakeScript }) : null;
  const visitors = [];
  let broker = null;
  let failed = null;
  try {
    broker = await start({
      ADMIN_TOKEN,
      ...(fake ? { OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: fake.url } : {}),
      ...settings,
    });
    const world = {
      fake,
      broker,
      // A new browser on the broker's page (or on `url`, say a proxy in front of it); goto waits
      // for load, so the page's modules have run.
      async visitor(name, { url = broker.url, ...options } = {}) {
        const visitor = await launchVisitor(name, options);
        visitors.push(visitor);
        await visitor.page.goto(url);
        await visitor.page.getByTestId('start-button').waitFor();
        return visitor;
      },
      // A browser on the operator's console (/admin/), signed out: the token field is shown.
      async operator(name = 'operator', options = {}) {
        const operator = await launchVisitor(name, options);
        visitors.push(operator);
        await operator.page.goto(`${broker.url}/admin/`);
        await operator.page.getByTestId('admin-signin').waitFor();
        return operator;
      },
    };
    await body(world);
    for (const visitor of visitors) {
      assert.deepEqual(visitor.seen.cspViolations, [], `${visitor.name}: the page broke its own CSP`);
      assert.deepEqual(visitor.seen.problems.filter(p => p.startsWith('page error')), [],
        `${visitor.name}: uncaught errors in the page`);
    }
  } catch (error) {
    failed = error;
    // The reporter prints the stack, which was made before this was known.
    const report = await diagnostics(broker, fake, visitors);
    if (error instanceof Error) error.stack = `${error.stack}${report}`;
  }
  for (const visitor of visitors) await visitor.close();
  try {
    // Stopping checks the exit code and the sanitizers' output: a finding fails the scenario.
    await broker?.stop();
  } catch (error) {
    if (failed instanceof Error) failed.stack += `\n--- and stopping the broker: ${error.message}`;
    else failed = error;
  }
  await fake?.close();
  if (failed) throw failed;
}

async function diagnostics(broker, fake, visitors) {
  const parts = [];
  for (const visitor of visitors) {
    const state = await visitor.page.evaluate(() => ({
      state: document.getElementById('state-label')?.dataset.state,
      history: window.__e2eHistory,
      error: document.getElementById('error-box')?.dataset.code,
      visible: document.querySelector('.view:not([hidden])')?.innerText.replace(/\s+/g, ' ').trim(),
    })).catch(error => ({ unavailable: error.message }));
    parts.push(`visitor ${visitor.name}: ${JSON.stringify(state)}`,
      `  requests: ${visitor.seen.requests.join(', ')}`,
      `  live channel: ${JSON.stringify(visitor.seen.frames)}`,
      `  console: ${visitor.seen.problems.join(' | ')}`);
  }
  if (fake) parts.push(`fake OpenAI: ${JSON.stringify(fake.metrics())}`);
  if (broker) {
    const interesting = broker.lines.filter(line => !/ GET \/(?!api)\S* (200|304) /.test(line));
    parts.push(`broker log (last lines, static files left out):\n${interesting.slice(-40).join('\n')}`);
  }
  return `\n--- diagnostics ---\n${parts.join('\n')}`;
}

// Screenshot and accessibility check of one main state, under one name.
export async function recordState(page, name) {
  await saveScreenshot(page, name);
  const { passed, serious } = await accessibilityReport(page, name);
  assert.ok(passed >= 10, `${name}: axe-core checked only ${passed} rules`);
  assert.deepEqual(serious, [], `${name}: serious or critical accessibility violations`);
}

// One state in every look a visitor may have: English and Russian (through the page's own
// language switch), light and dark, phone and desktop. axe-core runs in each, and each is saved
// as <name>-<lang>-<theme>-<width>.png. The page is left in English, light, at its old size.
export const LOOK_WIDTHS = { phone: PHONE, desktop: DESKTOP };

export async function recordLooks(page, name, { widths = ['phone', 'desktop'], languages = ['en', 'ru'], themes = ['light', 'dark'] } = {}) {
  const size = page.viewportSize();
  try {
    for (const width of widths) {
      await page.setViewportSize(LOOK_WIDTHS[width]);
      for (const lang of languages) {
        await page.getByTestId(`language-${lang}`).click();
        await page.locator(`html[lang=${lang}]`).waitFor({ state: 'attached' });
        for (const theme of themes) {
          await page.emulateMedia({ colorScheme: theme });
          await recordState(page, `${name}-${lang}-${theme}-${width}`);
        }
      }
    }
  } finally {
    await page.getByTestId('language-en').click();
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(size);
  }
}

// Waits for the state pill (data-state) to read state.
export async function waitForState(page, state, timeout) {
  await page.locator(`[data-testid=state-label][data-state=${state}]`).waitFor({ timeout });
}

// fake.waitFor, bounded, failing with what the fake saw instead.
export async function fakeSaw(fake, thresholds, timeoutMs = 10_000) {
  const { ok, metrics } = await fake.waitFor(thresholds, timeoutMs);
  assert.ok(ok, `the fake OpenAI did not see ${JSON.stringify(thresholds)} within ${timeoutMs} ms: ${JSON.stringify(metrics)}`);
  return metrics;
}
