// Tests for the fake OpenAI Realtime API. Run: npm test (inside this folder) or
//   node --test tests/fakes/fake-openai/fake-openai.test.mjs
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { RTCPeerConnection, RtpHeader, RtpPacket } from 'werift';
import { startFakeOpenAI, loopbackPeerConfig, redactAuthorization, DEFAULT_KEY } from './server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const KEY = 'fake-real-key-for-tests';
const T = { timeout: 10_000 };

let fake;

async function api(p, { method = 'POST', key = KEY, json, body, headers = {}, signal } = {}) {
  const h = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (json !== undefined) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const res = await fetch(fake.url + p, { method, headers: h, body, signal });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: parsed };
}
const control = (p, opts = {}) => api(p, { key: null, ...opts });

async function mintKey(extra = {}) {
  const r = await api('/v1/realtime/client_secrets', { json: { session: { type: 'realtime' }, ...extra } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

const DUMMY_SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n';

function multipart(fields) {
  const boundary = `----fake${Date.now()}`;
  let body = '';
  for (const [name, { value, type }] of Object.entries(fields)) {
    body += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\nContent-Type: ${type}\r\n\r\n${value}\r\n`;
  }
  body += `--${boundary}--\r\n`;
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

function assertOpenAIError(r, status, code, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json?.error, `error body expected: ${r.text}`);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  assert.equal(e.code, code);
  if (param !== undefined) assert.equal(e.param, param);
  assert.match(r.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
  assert.match(r.headers.get('openai-processing-ms'), /^\d+$/);
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

before(async () => {
  fake = await startFakeOpenAI({ realKey: KEY });
});
after(async () => {
  await fake?.close();
});
beforeEach(async () => {
  await control('/__control/reset');
});

describe('client_secrets', () => {
  test('good request: ek_ key, expiry, session echoed with defaults', T, async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await api('/v1/realtime/client_secrets', {
      json: {
        expires_after: { anchor: 'created_at', seconds: 60 },
        session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.', audio: { output: { voice: 'marin' } } },
      },
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    assert.match(r.headers.get('x-request-id'), /^req_[0-9a-f]{32}$/);
    assert.match(r.headers.get('openai-processing-ms'), /^\d+$/);
    assert.match(r.json.value, /^ek_[0-9a-f]{32}$/);
    assert.ok(r.json.expires_at >= before + 60 && r.json.expires_at <= before + 62);
    const s = r.json.session;
    assert.equal(s.type, 'realtime');
    assert.equal(s.object, 'realtime.session');
    assert.match(s.id, /^sess_/);
    assert.equal(s.model, 'gpt-realtime');
    assert.equal(s.instructions, 'Be brief.');
    assert.equal(s.audio.output.voice, 'marin');
    assert.deepEqual(s.output_modalities, ['audio']);
    assert.equal(s.audio.input.turn_detection.type, 'server_vad');

    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.equal(st.counts.client_secrets, 1);
    assert.equal(st.keys.length, 1);
    assert.equal(st.keys[0].value, r.json.value);
    assert.equal(st.keys[0].expiresAt, r.json.expires_at);
  });

  test('defaults: no body fields -> realtime session, 600 s', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: {} });
    assert.equal(r.status, 200, r.text);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(r.json.expires_at - (now + 600)) <= 2);
    assert.equal(r.json.session.type, 'realtime');
  });

  test('transcription session', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: { session: { type: 'transcription' } } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.session.object, 'realtime.transcription_session');
  });

  test('missing session.type -> 400 missing_required_parameter', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: { session: { model: 'gpt-realtime' } } });
    assertOpenAIError(r, 400, 'missing_required_parameter', 'session.type');
    assert.equal(r.json.error.type, 'invalid_request_error');
  });

  test('bad session.type -> 400 invalid_value', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: { session: { type: 'chat' } } });
    assertOpenAIError(r, 400, 'invalid_value', 'session.type');
  });

  test('unknown top-level key -> 400 unknown_parameter', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: { session: { type: 'realtime' }, model: 'gpt-realtime' } });
    assertOpenAIError(r, 400, 'unknown_parameter', 'model');
    assert.equal(r.json.error.message, "Unknown parameter: 'model'.");
  });

  test('unknown nested key (GA moved voice under audio.output) -> 400', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: { session: { type: 'realtime', voice: 'alloy' } } });
    assertOpenAIError(r, 400, 'unknown_parameter', 'session.voice');
  });

  test('expires_after.seconds 5 and 8000 -> 400 below/above limits', T, async () => {
    let r = await api('/v1/realtime/client_secrets', { json: { expires_after: { anchor: 'created_at', seconds: 5 } } });
    assertOpenAIError(r, 400, 'integer_below_min_value', 'expires_after.seconds');
    assert.match(r.json.error.message, />= 10, but got 5/);
    r = await api('/v1/realtime/client_secrets', { json: { expires_after: { anchor: 'created_at', seconds: 8000 } } });
    assertOpenAIError(r, 400, 'integer_above_max_value', 'expires_after.seconds');
    assert.match(r.json.error.message, /<= 7200, but got 8000/);
    r = await api('/v1/realtime/client_secrets', { json: { expires_after: { seconds: 10.5 } } });
    assertOpenAIError(r, 400, 'invalid_type', 'expires_after.seconds');
  });

  test('expires_after.anchor other than created_at -> 400', T, async () => {
    const r = await api('/v1/realtime/client_secrets', { json: { expires_after: { anchor: 'now', seconds: 60 } } });
    assertOpenAIError(r, 400, 'invalid_value', 'expires_after.anchor');
  });

  test('body must be a JSON object', T, async () => {
    let r = await api('/v1/realtime/client_secrets', { json: [1, 2] });
    assertOpenAIError(r, 400, 'invalid_type', null);
    r = await api('/v1/realtime/client_secrets', { body: '{not json', headers: { 'content-type': 'application/json' } });
    assertOpenAIError(r, 400, null, null);
    assert.match(r.json.error.message, /could not parse the JSON body/);
  });

  test('bad auth -> 401 invalid_api_key; missing auth -> 401; ek_ key not accepted here', T, async () => {
    let r = await api('/v1/realtime/client_secrets', { key: 'wrong-key-123456', json: {} });
    assertOpenAIError(r, 401, 'invalid_api_key', null);
    assert.ok(!r.text.includes('wrong-key-123456'), 'the wrong key is masked in the message');
    r = await api('/v1/realtime/client_secrets', { key: null, json: {} });
    assertOpenAIError(r, 401, null, null);
    const { value } = await mintKey();
    r = await api('/v1/realtime/client_secrets', { key: value, json: {} });
    assertOpenAIError(r, 401, 'invalid_api_key', null);
  });
});

describe('calls', () => {
  test('application/sdp with a valid ek_ key -> 201 SDP answer + Location', T, async () => {
    const { value } = await mintKey();
    const r = await api('/v1/realtime/calls', { key: value, body: DUMMY_SDP, headers: { 'content-type': 'application/sdp' } });
    assert.equal(r.status, 201, r.text);
    assert.match(r.headers.get('content-type'), /^application\/sdp/);
    assert.match(r.headers.get('location'), /^\/v1\/realtime\/calls\/rtc_[0-9a-f]{32}$/);
    assert.match(r.text, /^v=0\r\n/);
    assert.match(r.text, /\r\nm=audio 9 UDP\/TLS\/RTP\/SAVPF 111\r\n/);
    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.equal(st.calls.length, 1);
    assert.equal(st.calls[0].id, r.headers.get('location').split('/').pop());
    assert.equal(st.calls[0].authKind, 'ephemeral');
    assert.equal(st.calls[0].webrtc, false);
    assert.equal(st.requests.at(-1).authorization, 'Bearer ek_…');
    assert.equal(st.keys[0].uses, 1);
  });

  test('unknown ek_ key -> 401', T, async () => {
    const r = await api('/v1/realtime/calls', {
      key: 'ek_00000000000000000000000000000000',
      body: DUMMY_SDP,
      headers: { 'content-type': 'application/sdp' },
    });
    assertOpenAIError(r, 401, 'invalid_api_key', null);
  });

  test('expired ek_ key -> 401 (clock advanced, and explicit expiry)', T, async () => {
    const a = await mintKey({ expires_after: { anchor: 'created_at', seconds: 10 } });
    let r = await control('/__control/clock', { json: { advanceSeconds: 11 } });
    assert.equal(r.status, 200);
    r = await api('/v1/realtime/calls', { key: a.value, body: DUMMY_SDP, headers: { 'content-type': 'application/sdp' } });
    assertOpenAIError(r, 401, 'invalid_api_key', null);

    await control('/__control/reset');
    const b = await mintKey();
    r = await control('/__control/expire', { json: { value: b.value } });
    assert.equal(r.json.expired, 1);
    r = await api('/v1/realtime/calls', { key: b.value, body: DUMMY_SDP, headers: { 'content-type': 'application/sdp' } });
    assertOpenAIError(r, 401, 'invalid_api_key', null);
    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.equal(st.keys[0].expired, true);
    assert.equal(st.requests.at(-1).authKind, 'expired_ephemeral');
  });

  test('not an SDP -> 400', T, async () => {
    const { value } = await mintKey();
    let r = await api('/v1/realtime/calls', { key: value, body: 'hello there', headers: { 'content-type': 'application/sdp' } });
    assertOpenAIError(r, 400, 'invalid_offer', 'sdp');
    r = await api('/v1/realtime/calls', { key: value, body: 'v=0\r\ns=-\r\n', headers: { 'content-type': 'application/sdp' } });
    assertOpenAIError(r, 400, 'invalid_offer', 'sdp');
    r = await api('/v1/realtime/calls', { key: value, json: { sdp: DUMMY_SDP } });
    assertOpenAIError(r, 400, null, null);
  });

  test('multipart sdp + session with the real key -> 201; session merged and recorded', T, async () => {
    const mp = multipart({
      sdp: { value: DUMMY_SDP, type: 'application/sdp' },
      session: { value: JSON.stringify({ type: 'realtime', instructions: 'Speak French.' }), type: 'application/json' },
    });
    const r = await api('/v1/realtime/calls', { body: mp.body, headers: { 'content-type': mp.contentType } });
    assert.equal(r.status, 201, r.text);
    assert.match(r.headers.get('location'), /^\/v1\/realtime\/calls\/rtc_/);
    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.equal(st.calls[0].via, 'multipart');
    assert.equal(st.calls[0].authKind, 'api_key');
    assert.equal(st.calls[0].session.instructions, 'Speak French.');
    const req = st.requests.at(-1);
    assert.equal(req.authorization, `Bearer ${KEY.slice(0, 3)}…`);
    assert.equal(req.body.session.instructions, 'Speak French.');
    assert.match(req.body.sdp, /^v=0/);
    assert.ok(!JSON.stringify(st).includes(KEY), 'state never contains the real key');
  });

  test('multipart without sdp / with a bad session -> 400', T, async () => {
    let mp = multipart({ session: { value: '{"type":"realtime"}', type: 'application/json' } });
    let r = await api('/v1/realtime/calls', { body: mp.body, headers: { 'content-type': mp.contentType } });
    assertOpenAIError(r, 400, 'missing_required_parameter', 'sdp');
    mp = multipart({ sdp: { value: DUMMY_SDP, type: 'application/sdp' }, session: { value: '{"type":"realtime","bogus":1}', type: 'application/json' } });
    r = await api('/v1/realtime/calls', { body: mp.body, headers: { 'content-type': mp.contentType } });
    assertOpenAIError(r, 400, 'unknown_parameter', 'session.bogus');
    mp = multipart({ sdp: { value: DUMMY_SDP, type: 'application/sdp' } });
    r = await api('/v1/realtime/calls', { key: 'nope-1234567890', body: mp.body, headers: { 'content-type': mp.contentType } });
    assertOpenAIError(r, 401, 'invalid_api_key', null);
  });
});

describe('hangup', () => {
  test('known call -> 200 with empty body; unknown -> 404; ek_ key -> 401', T, async () => {
    const { value } = await mintKey();
    const c = await api('/v1/realtime/calls', { key: value, body: DUMMY_SDP, headers: { 'content-type': 'application/sdp' } });
    const id = c.headers.get('location').split('/').pop();
    let r = await api(`/v1/realtime/calls/${id}/hangup`, { key: value });
    assertOpenAIError(r, 401, 'invalid_api_key', null);
    r = await api(`/v1/realtime/calls/${id}/hangup`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, '');
    r = await api('/v1/realtime/calls/rtc_doesnotexist/hangup');
    assertOpenAIError(r, 404, 'call_not_found', 'call_id');
    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.deepEqual(st.hangups, [id]);
    assert.equal(st.counts.hangup, 3);
    assert.equal(st.calls[0].hungUp, true);
  });
});

describe('faults', () => {
  const addFault = async (spec) => {
    const r = await control('/__control/faults', { json: spec });
    assert.equal(r.status, 200, r.text);
  };

  test('401, once, then normal', T, async () => {
    await addFault({ route: 'client_secrets', mode: '401', count: 1 });
    assertOpenAIError(await api('/v1/realtime/client_secrets', { json: {} }), 401, 'invalid_api_key', null);
    assert.equal((await api('/v1/realtime/client_secrets', { json: {} })).status, 200);
  });

  test('429 with Retry-After', T, async () => {
    await addFault({ route: 'client_secrets', mode: '429', count: 2, retryAfter: 7 });
    for (let i = 0; i < 2; i++) {
      const r = await api('/v1/realtime/client_secrets', { json: {} });
      assertOpenAIError(r, 429, 'rate_limit_exceeded', null);
      assert.equal(r.headers.get('retry-after'), '7');
    }
    assert.equal((await api('/v1/realtime/client_secrets', { json: {} })).status, 200);
  });

  test('500 and 503 (Retry-After), route-specific', T, async () => {
    await addFault({ route: 'calls', mode: '500', count: 1 });
    await addFault({ route: 'calls', mode: '503', count: 1, retryAfter: 3 });
    const { value } = await mintKey(); // client_secrets unaffected by a "calls" fault
    const post = () => api('/v1/realtime/calls', { key: value, body: DUMMY_SDP, headers: { 'content-type': 'application/sdp' } });
    let r = await post();
    assertOpenAIError(r, 500, null, null);
    assert.equal(r.json.error.type, 'server_error');
    r = await post();
    assertOpenAIError(r, 503, null, null);
    assert.equal(r.headers.get('retry-after'), '3');
    assert.equal((await post()).status, 201);
  });

  test('slow delays the answer', T, async () => {
    await addFault({ route: '*', mode: 'slow', delayMs: 300, count: 1 });
    const t0 = Date.now();
    const r = await api('/v1/realtime/client_secrets', { json: {} });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 290, `took ${Date.now() - t0} ms`);
  });

  test('drop destroys the connection', T, async () => {
    await addFault({ route: 'hangup', mode: 'drop', count: 1 });
    await assert.rejects(api('/v1/realtime/calls/rtc_x/hangup'), TypeError);
    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.equal(st.counts.hangup, 1);
    assert.equal(st.requests[0].status, 'dropped');
  });

  test('garbage answers 200 with a body that is not JSON', T, async () => {
    await addFault({ route: '*', mode: 'garbage' });
    const r = await api('/v1/realtime/client_secrets', { json: {} });
    assert.equal(r.status, 200);
    assert.equal(r.json, undefined);
    assert.throws(() => JSON.parse(r.text));
    assert.equal((await api('/v1/realtime/calls/rtc_x/hangup')).status, 200, 'unlimited count, any route');
    await control('/__control/faults', { method: 'DELETE' });
    assert.equal((await api('/v1/realtime/client_secrets', { json: {} })).status, 200);
  });

  test('hang never answers until the client gives up', T, async () => {
    await addFault({ route: 'client_secrets', mode: 'hang', count: 1 });
    await assert.rejects(api('/v1/realtime/client_secrets', { json: {}, signal: AbortSignal.timeout(300) }), /abort|timeout/i);
    const st = (await control('/__control/state', { method: 'GET' })).json;
    assert.equal(st.requests[0].status, 'hung');
    assert.equal(st.requests[0].fault, 'hang');
    assert.equal((await api('/v1/realtime/client_secrets', { json: {} })).status, 200);
  });

  test('bad fault spec -> 400', T, async () => {
    let r = await control('/__control/faults', { json: { route: 'calls', mode: 'explode' } });
    assert.equal(r.status, 400);
    r = await control('/__control/faults', { json: { route: 'nowhere', mode: '500' } });
    assert.equal(r.status, 400);
  });
});

describe('control', () => {
  test('wait answers as soon as the hangup arrives, 408 on timeout', T, async () => {
    const { value } = await mintKey();
    const c = await api('/v1/realtime/calls', { key: value, body: DUMMY_SDP, headers: { 'content-type': 'application/sdp' } });
    const id = c.headers.get('location').split('/').pop();
    const waiting = control('/__control/wait?hangups=1&timeoutMs=5000', { method: 'GET' });
    const h = await api(`/v1/realtime/calls/${id}/hangup`);
    assert.equal(h.status, 200);
    const w = await waiting;
    assert.equal(w.status, 200, w.text);
    assert.equal(w.json.hangups, 1);

    const t = await control('/__control/wait?hangups=2&timeoutMs=50', { method: 'GET' });
    assert.equal(t.status, 408);
    assert.equal(t.json.hangups, 1);
    assert.equal((await control('/__control/wait?bogus=1', { method: 'GET' })).status, 400);
  });

  test('redaction helper', () => {
    assert.equal(redactAuthorization('Bearer ek_abcdef'), 'Bearer ek_…');
    assert.equal(redactAuthorization(undefined), null);
    assert.equal(DEFAULT_KEY, 'test-openai-key');
  });
});

// ------------------------------------------------------------------------------------------------
// A real WebRTC round trip, werift on both sides, loopback only.

async function webrtcRoundTrip({ post }) {
  const t0 = Date.now();
  const pc = new RTCPeerConnection({ ...loopbackPeerConfig(), bundlePolicy: 'max-bundle' });
  try {
    const tr = pc.addTransceiver('audio', { direction: 'sendrecv' });
    const dc = pc.createDataChannel('oai-events');
    const received = [];
    const MARK = Buffer.from([0x78, 0x42, 0x42, 0x42]);
    const echoed = new Promise((resolve) => {
      tr.onTrack.subscribe((track) =>
        track.onReceiveRtp.subscribe((rtp) => {
          if (Buffer.from(rtp.payload).equals(MARK)) resolve();
        }),
      );
    });
    const sessionCreated = new Promise((resolve) => {
      dc.onMessage.subscribe((m) => {
        const ev = JSON.parse(m.toString());
        received.push(ev);
        if (ev.type === 'session.created') resolve(Date.now());
      });
    });
    const responseDone = new Promise((resolve) => {
      dc.onMessage.subscribe((m) => {
        if (JSON.parse(m.toString()).type === 'response.done') resolve();
      });
    });
    const dcClosed = new Promise((resolve) => dc.stateChanged.subscribe((s) => s === 'closed' && resolve()));

    await pc.setLocalDescription(await pc.createOffer());
    // Like a browser that posts at once: strip our candidates, the fake must learn us as peer-reflexive.
    const offer = pc.localDescription.sdp.replace(/^a=(candidate|end-of-candidates).*\r\n/gm, '');
    const r = await post(offer);
    assert.equal(r.status, 201, r.text);
    assert.match(r.text, /a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);
    assert.ok(!/a=candidate:(?!\S+ 1 udp \d+ 127\.0\.0\.1 )/.test(r.text), 'only loopback host candidates');
    assert.match(r.text, /m=audio[^]*a=sendrecv/);
    const callId = r.headers.get('location').split('/').pop();
    await pc.setRemoteDescription({ type: 'answer', sdp: r.text });

    const createdAt = await withTimeout(sessionCreated, 5000, 'session.created');
    const connectMs = createdAt - t0;
    await withTimeout(responseDone, 2000, 'response.done');

    // send a recognisable audio payload and wait for the fake to echo it back
    let seq = 1;
    let ts = 0;
    const audio = setInterval(() => {
      tr.sender.sendRtp(new RtpPacket(new RtpHeader({ payloadType: 111, sequenceNumber: seq++, timestamp: (ts += 960) }), MARK));
    }, 20);
    try {
      await withTimeout(echoed, 3000, 'echoed audio');
    } finally {
      clearInterval(audio);
    }
    return { pc, dc, callId, received, connectMs, dcClosed };
  } catch (e) {
    await pc.close();
    throw e;
  }
}

describe('webrtc', () => {
  test('browser path: ek_ key + application/sdp, oai-events opens, session.created, transcripts, echo, hangup', { timeout: 20_000 }, async (t) => {
    const { value } = await mintKey({ session: { type: 'realtime', instructions: 'Fake instructions.' } });
    const rt = await webrtcRoundTrip({
      post: (sdp) => api('/v1/realtime/calls', { key: value, body: sdp, headers: { 'content-type': 'application/sdp' } }),
    });
    try {
      t.diagnostic(`WebRTC connect (offer -> session.created over the data channel): ${rt.connectMs} ms`);
      const types = rt.received.map((e) => e.type);
      assert.equal(types[0], 'session.created');
      assert.equal(rt.received[0].session.instructions, 'Fake instructions.');
      assert.match(rt.received[0].event_id, /^event_/);
      const userT = rt.received.find((e) => e.type === 'conversation.item.input_audio_transcription.completed');
      assert.equal(userT.transcript, 'Hello assistant');
      const deltas = rt.received.filter((e) => e.type === 'response.output_audio_transcript.delta').map((e) => e.delta).join('');
      assert.equal(deltas, 'Hello! How can I help?');
      assert.equal(rt.received.find((e) => e.type === 'response.output_audio_transcript.done').transcript, 'Hello! How can I help?');

      // client events are answered too
      const updated = new Promise((resolve) =>
        rt.dc.onMessage.subscribe((m) => JSON.parse(m.toString()).type === 'session.updated' && resolve(JSON.parse(m.toString()))),
      );
      rt.dc.send(JSON.stringify({ type: 'session.update', session: { type: 'realtime', instructions: 'Changed.' } }));
      assert.equal((await withTimeout(updated, 2000, 'session.updated')).session.instructions, 'Changed.');

      let st = (await control('/__control/state', { method: 'GET' })).json;
      const call = st.calls.find((c) => c.id === rt.callId);
      assert.equal(call.webrtc, true);
      assert.equal(call.connectionState, 'connected');
      assert.equal(call.dataChannelOpen, true);
      assert.ok(call.audio.echoed >= 1);
      assert.ok(call.clientEvents.includes('session.update'));

      const h = await api(`/v1/realtime/calls/${rt.callId}/hangup`);
      assert.equal(h.status, 200);
      await withTimeout(rt.dcClosed, 2000, 'client data channel closed after hangup');
      const w = await control('/__control/wait?hangups=1&timeoutMs=2000', { method: 'GET' });
      assert.equal(w.status, 200);
      st = (await control('/__control/state', { method: 'GET' })).json;
      assert.equal(st.calls.find((c) => c.id === rt.callId).connectionState, 'closed');
    } finally {
      await rt.pc.close();
    }
  });

  test('server path: multipart with the real key', { timeout: 20_000 }, async (t) => {
    const rt = await webrtcRoundTrip({
      post: (sdp) => {
        const mp = multipart({
          sdp: { value: sdp, type: 'application/sdp' },
          session: { value: JSON.stringify({ type: 'realtime', instructions: 'Via multipart.' }), type: 'application/json' },
        });
        return api('/v1/realtime/calls', { body: mp.body, headers: { 'content-type': mp.contentType } });
      },
    });
    try {
      t.diagnostic(`WebRTC connect via multipart: ${rt.connectMs} ms`);
      assert.equal(rt.received[0].session.instructions, 'Via multipart.');
      const w = await control('/__control/wait?channels=1&connected=1&timeoutMs=1000', { method: 'GET' });
      assert.equal(w.status, 200, w.text);
    } finally {
      await rt.pc.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

function haveOpenssl() {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('tls and command line', () => {
  test('https with a CA bundle', { timeout: 15_000, skip: haveOpenssl() ? false : 'openssl not installed' }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-openai-tls-'));
    try {
      const cert = path.join(dir, 'cert.pem');
      const key = path.join(dir, 'key.pem');
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
          '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
        { stdio: 'ignore' },
      );
      const tlsFake = await startFakeOpenAI({ realKey: KEY, tls: { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } });
      try {
        assert.match(tlsFake.url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const request = (ca) =>
          new Promise((resolve, reject) => {
            const req = https.request(
              `${tlsFake.url}/v1/realtime/client_secrets`,
              { method: 'POST', ca, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } },
              (res) => {
                let body = '';
                res.on('data', (c) => (body += c));
                res.on('end', () => resolve({ status: res.statusCode, body }));
              },
            );
            req.on('error', reject);
            req.end('{}');
          });
        const ok = await request(fs.readFileSync(cert));
        assert.equal(ok.status, 200);
        assert.match(JSON.parse(ok.body).value, /^ek_/);
        await assert.rejects(request(undefined), /self[- ]signed|unable to verify|certificate/i);
      } finally {
        await tlsFake.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('CLI prints exactly {"listening":PORT}, honours FAKE_OPENAI_KEY, exits on SIGTERM', { timeout: 15_000 }, async () => {
    const child = spawn(process.execPath, [path.join(HERE, 'server.mjs'), '--port', '0'], {
      env: { ...process.env, FAKE_OPENAI_KEY: 'cli-key-for-test' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const lines = [];
      const rl = createInterface({ input: child.stdout });
      rl.on('line', (l) => lines.push(l));
      const [first] = await withTimeout(once(rl, 'line'), 10_000, 'listening line');
      assert.match(first, /^\{"listening":\d+\}$/);
      const { listening } = JSON.parse(first);
      const base = `http://127.0.0.1:${listening}`;
      let r = await fetch(`${base}/v1/realtime/client_secrets`, {
        method: 'POST',
        headers: { authorization: 'Bearer cli-key-for-test', 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(r.status, 200);
      r = await fetch(`${base}/v1/realtime/client_secrets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${DEFAULT_KEY}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(r.status, 401);
      r = await fetch(`${base}/__control/state`);
      assert.equal((await r.json()).counts.client_secrets, 2);
      child.kill('SIGTERM');
      const [code] = await withTimeout(once(child, 'exit'), 5000, 'exit');
      assert.equal(code, 0);
      assert.deepEqual(lines, [first], 'nothing else on stdout');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
