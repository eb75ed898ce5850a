// Scenarios 1 and 6: one visitor's whole visit, in token mode and in relay mode. Join, a real
// WebRTC call to the fake's werift peer, the scripted transcript, the 3-2-1 warnings, the end on
// time, and the hang-up the broker owes OpenAI.
import test from 'node:test';
import assert from 'node:assert/strict';
import { SHORT_SESSION, fakeSaw, recordState, runScenario, waitForState } from './lib/scenario.mjs';

const WARNINGS = ['3 seconds left', '2 seconds left', '1 second left'];
const SESSION_SECONDS = Number(SHORT_SESSION.SESSION_DURATION_SECONDS);

async function wholeVisit({ fake, broker, visitor }, { mode, shot }) {
  const { page, seen, history } = await visitor('solo');
  if (mode === 'token') await recordState(page, `${shot}-idle`);

  await page.getByTestId('start-button').click();
  await waitForState(page, 'active');
  // "Live" on the page is not enough: the fake's peer must have connected and opened the channel.
  await fakeSaw(fake, { connected: 1, channels: 1 });
  const transcript = page.getByTestId('transcript');
  await transcript.getByText('Hello assistant', { exact: true }).waitFor();
  await transcript.getByText('Hello! How can I help?', { exact: true }).waitFor();
  await recordState(page, `${shot}-active`);

  const banner = page.getByTestId('warning-banner');
  await banner.getByText(WARNINGS[0]).waitFor({ timeout: SESSION_SECONDS * 1000 });
  if (mode === 'token') await recordState(page, `${shot}-warning`);

  // The server ends the session; the page's own clock would only end it 4 s after zero.
  await page.getByTestId('ended-reason').and(page.locator('[data-reason=expired]')).waitFor({ timeout: 8000 });
  await waitForState(page, 'ended');
  assert.equal(await page.getByTestId('ended-reason').textContent(), 'Time is up');
  assert.ok(await page.getByTestId('queue-again-button').isEnabled(), 'Queue again is usable');
  await recordState(page, `${shot}-ended`);

  const { warnings, states } = await history();
  assert.deepEqual(warnings.map(text => text.replace(/ The conversation ends automatically\.$/, '')), WARNINGS,
    'each warning shown once, in order');
  assert.deepEqual(states, ['idle', 'joining', 'connecting', 'active', 'ended']);
  // The warnings and the end came as pushes from the server, in order.
  const pushes = seen.frames.filter(f => f.type !== 'status');
  assert.deepEqual(pushes.map(f => f.type === 'warning' ? f.remainingSeconds : f.type), [3, 2, 1, 'ended']);
  assert.equal(pushes.at(-1).reason, 'expired');

  // The broker ended it on time and hung the call up itself.
  await broker.waitForLog(/session: ended \(expired\)/, 5000);
  await fakeSaw(fake, { hangups: 1 });
  const state = fake.snapshot();
  assert.equal(state.calls.length, 1);
  assert.deepEqual(state.hangups, [state.calls[0].id], 'the call that was made is the one hung up');
  const admitted = seen.frames.find(f => f.type === 'status' && f.state === 'active');
  const hangup = state.requests.find(r => r.route === 'hangup');
  const late = Date.parse(hangup.at) - Date.parse(admitted.expiresAt);
  assert.ok(late > -1000 && late < 3000, `hung up ${late} ms after the session's expiresAt`);
  return state;
}

test('token mode: join, talk, warnings 3-2-1, time is up, the call is hung up', { timeout: 90_000 }, async () => {
  await runScenario({ broker: { ...SHORT_SESSION, REALTIME_MODE: 'token' } }, async world => {
    const state = await wholeVisit(world, { mode: 'token', shot: '1-visit' });
    // The browser dialled the fake with an ephemeral key and told the broker the call id.
    assert.equal(state.counts.client_secrets, 1);
    assert.equal(state.calls[0].authKind, 'ephemeral');
    assert.ok(state.calls[0].audio.packetsReceived > 0, 'the fake heard the fake microphone');
  });
});

test('relay mode: the same visit, with the offer relayed by the broker', { timeout: 90_000 }, async () => {
  await runScenario({ broker: { ...SHORT_SESSION, REALTIME_MODE: 'relay' } }, async world => {
    let offers = 0;
    const state = await wholeVisit({
      ...world,
      visitor: async name => {
        const visitor = await world.visitor(name);
        visitor.page.on('request', request => {
          if (request.url().endsWith('/api/session?action=connect') && request.method() === 'POST' &&
            request.headers()['content-type'] === 'application/sdp') offers++;
        });
        return visitor;
      },
    }, { mode: 'relay', shot: '6-relay' });
    assert.equal(offers, 1, 'the page posted its SDP offer to the broker');
    // No key ever reached the browser: the broker opened the call with the real key.
    assert.equal(state.counts.client_secrets, 0);
    assert.equal(state.calls[0].authKind, 'api_key');
    assert.ok(state.calls[0].audio.packetsReceived > 0, 'the fake heard the fake microphone');
  });
});
