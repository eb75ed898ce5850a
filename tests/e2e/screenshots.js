// Screenshots of static/ in every state, language and theme, with the API, WebSocket and OpenAI faked
// (a second browser page plays OpenAI's side of the WebRTC call). AXE=1 also runs axe-core.
const { chromium } = require('playwright-core');
const BASE = process.env.PAGE_URL ?? 'http://127.0.0.1:8765/';
const OUT = process.env.SHOTS_DIR ?? '/tmp/voice-broker-shots';
require('fs').mkdirSync(OUT, { recursive: true });

const LIMITS = { maxConcurrentUsers: 1, sessionSeconds: 300, warningSeconds: [180, 120, 60] };
const doc = extra => ({ ticket: 'tkt_abcdefghijklmnopqrstu', queueLength: 0, remainingSeconds: 0, limits: LIMITS, ...extra });
const queued = (position, eta) => doc({ state: 'queued', position, queueLength: 4, etaSeconds: eta });
const active = remaining => doc({ state: 'active', remainingSeconds: remaining, confirmed: true,
  startedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + remaining * 1000).toISOString() });

const problems = [];

async function withPage(browser, { lang = 'en', scheme = 'light', phone = false, api = {}, ws, micFails, fakeOpenAI }, body) {
  const context = await browser.newContext({
    viewport: phone ? { width: 360, height: 780 } : { width: 1280, height: 860 },
    deviceScaleFactor: 1, colorScheme: scheme, bypassCSP: !!process.env.AXE, locale: lang === 'ru' ? 'ru-RU' : 'en-US',
  });
  const page = await context.newPage();
  page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', e => problems.push(`pageerror: ${e.message}`));
  if (micFails) {
    await page.addInitScript(name => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', name));
    }, micFails);
  }
  const calls = [];
  await page.route('**/api/session?*', async route => {
    const action = new URL(route.request().url()).searchParams.get('action');
    calls.push(action);
    const answer = api[action] ? await api[action](route.request()) : { body: { ok: true } };
    await route.fulfill({
      status: answer.status ?? 200,
      headers: { 'Content-Type': answer.type ?? 'application/json', ...(answer.headers ?? {}) },
      body: typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body),
    });
  });
  const live = { socket: null };
  await page.routeWebSocket('**/api/session/ws*', socket => {
    live.socket = socket;
    live.received = [];
    socket.onMessage(m => live.received.push(m));
    ws?.(socket);
  });
  let fake = null;
  if (fakeOpenAI) {
    const fakeContext = await browser.newContext();
    fake = await fakeContext.newPage();
    await page.route('**/fake-openai/v1/realtime/calls', async route => {
      const auth = route.request().headers()['authorization'];
      calls.push(`openai:${auth}`);
      const answer = await fake.evaluate(async offer => {
        const pc = window.pc = new RTCPeerConnection();
        const ctx = new AudioContext();
        const dest = ctx.createMediaStreamDestination();
        const gain = ctx.createGain(); gain.gain.value = 0.0;
        const osc = ctx.createOscillator(); osc.connect(gain).connect(dest); osc.start();
        pc.addTrack(dest.stream.getAudioTracks()[0], dest.stream);
        window.channelOpen = new Promise(resolve => { pc.ondatachannel = e => { window.dc = e.channel; e.channel.onopen = resolve; }; });
        await pc.setRemoteDescription({ type: 'offer', sdp: offer });
        await pc.setLocalDescription(await pc.createAnswer());
        await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
        return pc.localDescription.sdp;
      }, route.request().postData());
      await route.fulfill({ status: 201, headers: { 'Content-Type': 'application/sdp', 'Location': '/v1/realtime/calls/rtc_fake123' }, body: answer });
    });
  }
  await page.goto(BASE);
  await body({ page, live, calls, fake });
  await page.context().close();
  if (fake) await fake.context().close();
}

async function shot(page, name) {
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
  if (process.env.AXE) {
    await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
    const result = await page.evaluate(() => axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'best-practice'] }));
    for (const v of result.violations) problems.push(`axe ${name}: ${v.id} (${v.impact}) ${v.nodes.map(n => n.target.join(' ')).slice(0, 4).join(', ')}`);
  }
  console.log('shot', name);
}

const VARIANTS = [
  { lang: 'en', scheme: 'light' }, { lang: 'ru', scheme: 'dark' },
  { lang: 'ru', scheme: 'light' }, { lang: 'en', scheme: 'dark' },
];
const tag = v => `${v.lang}-${v.scheme}${v.phone ? '-phone' : ''}`;

const scenarios = {
  async idle(browser, v) {
    await withPage(browser, v, async ({ page }) => shot(page, `idle-${tag(v)}`));
  },
  async queued(browser, v) {
    await withPage(browser, { ...v, api: { join: () => ({ body: queued(3, 245) }) },
      ws: s => s.send(JSON.stringify({ type: 'status', ...queued(3, 245) })) }, async ({ page, live }) => {
      await page.getByTestId('start-button').click();
      await page.getByTestId('queue-position').filter({ hasText: '3' }).waitFor();
      await page.waitForTimeout(2200);
      await shot(page, `queued-${tag(v)}`);
      live.socket.send(JSON.stringify({ type: 'status', ...queued(1, 40) }));
      await page.getByTestId('queue-next').waitFor();
      await shot(page, `next-${tag(v)}`);
    });
  },
  async active(browser, v) {
    await withPage(browser, { ...v, fakeOpenAI: true, api: {
      join: () => ({ body: active(287) }),
      token: () => ({ body: { value: 'ek_test', expiresAt: new Date(Date.now() + 60000).toISOString(), model: 'gpt-realtime', callsUrl: `${BASE}fake-openai/v1/realtime/calls` } }),
      call: req => ({ body: { ok: true, got: req.postDataJSON() } }),
    }, ws: s => s.send(JSON.stringify({ type: 'status', ...active(287) })) }, async ({ page, live, calls, fake }) => {
      await page.getByTestId('start-button').click();
      await page.getByTestId('call-status').filter({ hasText: v.lang === 'ru' ? 'Соединено' : 'Connected' }).waitFor({ timeout: 15000 });
      await fake.evaluate(() => window.channelOpen);
      const ru = v.lang === 'ru';
      const events = [
        { type: 'input_audio_buffer.committed', item_id: 'u1' },
        { type: 'response.output_audio_transcript.delta', item_id: 'a1', delta: ru ? 'Здравствуйте! ' : 'Hello! ' },
        { type: 'conversation.item.input_audio_transcription.completed', item_id: 'u1', transcript: ru ? 'Привет, какая завтра погода в Москве?' : 'Hi, what is the weather like in Lisbon tomorrow?' },
        { type: 'response.output_audio_transcript.delta', item_id: 'a1', delta: ru ? 'Я не вижу прогноз в реальном времени, но в это время года обычно около нуля и облачно.' : 'I can’t see live forecasts, but this time of year it’s usually mild, around 17 °C, with some sun.' },
        { type: 'response.output_audio_transcript.done', item_id: 'a1', transcript: ru ? 'Здравствуйте! Я не вижу прогноз в реальном времени, но в это время года обычно около нуля и облачно.' : 'Hello! I can’t see live forecasts, but this time of year it’s usually mild, around 17 °C, with some sun.' },
        { type: 'input_audio_buffer.committed', item_id: 'u2' },
        { type: 'response.audio_transcript.delta', item_id: 'a2', delta: ru ? 'Конечно, ' : 'Sure, ' },
      ];
      await fake.evaluate(list => list.forEach(e => window.dc.send(JSON.stringify(e))), events);
      await page.waitForTimeout(800);
      await shot(page, `active-${tag(v)}`);
      live.socket.send(JSON.stringify({ type: 'warning', minutesLeft: 2, remainingSeconds: 120 }));
      await page.getByTestId('warning-banner').filter({ hasText: ru ? 'минуты' : 'minutes' }).waitFor();
      await shot(page, `warning-${tag(v)}`);
      live.socket.send(JSON.stringify({ type: 'warning', minutesLeft: 1, remainingSeconds: 60 }));
      await page.waitForTimeout(300);
      await shot(page, `final-${tag(v)}`);
      live.socket.send(JSON.stringify({ type: 'ended', reason: 'expired' }));
      await page.getByTestId('queue-again-button').waitFor();
      await shot(page, `ended-${tag(v)}`);
      console.log('calls:', calls.join(' '), 'ws received:', live.received.join(' '));
    });
  },
  async failures(browser, v) {
    await withPage(browser, { ...v, api: { join: () => ({ status: 503, headers: { 'Retry-After': '45' }, body: { error: { code: 'queue_full', message: 'The queue is full (50 waiting).' } } }) } }, async ({ page }) => {
      await page.getByTestId('start-button').click();
      await page.getByTestId('error-box').waitFor();
      await shot(page, `queuefull-${tag(v)}`);
    });
    await withPage(browser, { ...v, micFails: 'NotAllowedError', api: { join: () => ({ body: active(300) }) } }, async ({ page, calls }) => {
      await page.getByTestId('start-button').click();
      await page.getByTestId('error-box').waitFor();
      await shot(page, `micdenied-${tag(v)}`);
      console.log('calls after mic denied:', calls.join(' '));
    });
    await withPage(browser, { ...v, api: { join: () => ({ body: active(300) }), token: () => ({ status: 503, body: { error: { code: 'not_configured', message: 'Set OPENAI_API_KEY in .env.local' } } }) } }, async ({ page }) => {
      await page.getByTestId('start-button').click();
      await page.getByTestId('error-box').waitFor();
      await shot(page, `notconfigured-${tag(v)}`);
    });
  },
  async reasons(browser, v) {
    for (const reason of ['shutdown', 'forced']) {
      await withPage(browser, { ...v, api: { join: () => ({ body: queued(2, 100) }) } }, async ({ page, live }) => {
        await page.getByTestId('start-button').click();
        await page.getByTestId('queue-position').filter({ hasText: '2' }).waitFor();
        live.socket.send(JSON.stringify({ type: 'ended', reason }));
        await page.getByTestId('queue-again-button').waitFor();
        await shot(page, `reason-${reason}-${tag(v)}`);
      });
    }
  },
  async keyboard(browser, v) {
    await withPage(browser, v, async ({ page }) => {
      await page.keyboard.press('Tab');
      await shot(page, `kbd-skip-${tag(v)}`);
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      await shot(page, `kbd-start-${tag(v)}`);
      await page.keyboard.press('Enter');
      await page.waitForTimeout(500);
      await shot(page, `kbd-after-${tag(v)}`);
    });
  },
  async interactions(browser, v) {
    const tokenAnswer = () => ({ body: { value: 'ek_test', expiresAt: '', model: 'm', callsUrl: `${BASE}fake-openai/v1/realtime/calls` } });
    await withPage(browser, { ...v, fakeOpenAI: true, api: { join: () => ({ body: active(200) }), token: tokenAnswer } }, async ({ page, calls, fake }) => {
      await page.getByTestId('start-button').click();
      await page.locator('[data-testid=state-label][data-state=active]').waitFor({ timeout: 15000 });
      await page.getByTestId('mute-button').click();
      const pressed = await page.getByTestId('mute-button').getAttribute('aria-pressed');
      const enabled = await page.evaluate(() => 'n/a');
      await page.getByTestId('language-ru').click();
      await shot(page, `muted-switched-${tag(v)}`);
      await page.getByTestId('end-button').click();
      await page.getByTestId('queue-again-button').waitFor();
      await page.waitForTimeout(200);
      await shot(page, `left-${tag(v)}`);
      console.log('mute pressed:', pressed, 'calls:', calls.join(' '), 'lang stored:', await page.evaluate(() => localStorage.getItem('voice-broker.language')));
    });
    // Relay mode: the token endpoint says so, the offer goes to ?action=connect.
    await withPage(browser, { ...v, fakeOpenAI: true, api: {
      join: () => ({ body: active(200) }),
      token: () => ({ status: 409, body: { error: { code: 'relay_mode', message: 'relay' } } }),
    } }, async ({ page, calls, fake }) => {
      await page.route('**/api/session?action=connect', async route => {
        calls.push('connect');
        const r = await page.request.fetch(`${BASE}fake-openai/v1/realtime/calls`, { method: 'POST', data: route.request().postData() }).catch(e => null);
        await route.fulfill({ status: 201, headers: { 'Content-Type': 'application/sdp' }, body: await fake.evaluate(async offer => {
          const pc = new RTCPeerConnection();
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(r => setTimeout(r, 500));
          window.keep = pc;
          return pc.localDescription.sdp;
        }, route.request().postData()) });
      });
      await page.getByTestId('start-button').click();
      await page.locator('[data-testid=state-label][data-state=active]').waitFor({ timeout: 15000 });
      console.log('relay calls:', calls.join(' '));
    });
    // Not a secure context.
    await withPage(browser, v, async ({ page }) => {}).catch(() => {});
    const context = await browser.newContext({ colorScheme: v.scheme, locale: v.lang === 'ru' ? 'ru-RU' : 'en-US', viewport: v.phone ? { width: 360, height: 780 } : { width: 1280, height: 860 } });
    const page = await context.newPage();
    await page.addInitScript(() => Object.defineProperty(window, 'isSecureContext', { value: false }));
    await page.goto(BASE);
    await shot(page, `insecure-${tag(v)}`);
    console.log('retry hidden:', await page.getByTestId('retry-button').isHidden());
    await context.close();
  },
  async dropped(browser, v) {
    let polls = 0;
    await withPage(browser, { ...v, api: {
      join: () => ({ body: queued(2, 130) }),
      status: () => (++polls > 1 ? { status: 502, type: 'text/html', body: '<h1>Bad gateway</h1>' } : { body: queued(2, 120) }),
    }, ws: s => s.close({ code: 1001, reason: 'going away' }) }, async ({ page }) => {
      await page.getByTestId('start-button').click();
      await page.getByTestId('connection-notice').filter({ hasText: /./ }).waitFor();
      await shot(page, `polling-${tag(v)}`);
      await page.waitForTimeout(3500);
      await shot(page, `restarting-${tag(v)}`);
    });
  },
};

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      '--autoplay-policy=no-user-gesture-required'],
  });
  const [only, variantFilter] = process.argv.slice(2);
  const variants = [...VARIANTS, { lang: 'en', scheme: 'light', phone: true }, { lang: 'ru', scheme: 'dark', phone: true }]
    .filter(v => !variantFilter || tag(v) === variantFilter);
  for (const [name, run] of Object.entries(scenarios)) {
    if (only && only !== 'all' && only !== name) continue;
    for (const v of variants) await run(browser, v).catch(e => problems.push(`${name} ${tag(v)}: ${e.message.split('\n')[0]}`));
  }
  await browser.close();
  console.log(problems.length ? `PROBLEMS:\n${[...new Set(problems)].join('\n')}` : 'no problems');
})();
