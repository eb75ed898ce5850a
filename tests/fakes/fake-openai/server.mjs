#!/usr/bin/env node
// Fake OpenAI Realtime API for voice-broker tests.
//
//   node server.mjs --port 0 [--host 127.0.0.1] [--tls-cert F --tls-key F] [--verbose]
//
// Prints exactly one line on stdout when ready: {"listening":PORT}
// Embeddable: import { startFakeOpenAI } from './server.mjs'
//
// Mimics POST /v1/realtime/client_secrets, POST /v1/realtime/calls (application/sdp and
// multipart/form-data) and POST /v1/realtime/calls/{id}/hangup, answers real WebRTC offers with a
// loopback-only werift peer, and offers a control API under /__control (faults, state, wait).
// See README.md.

import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { pathToFileURL } from 'node:url';
import { RTCPeerConnection, RtpHeader, RtpPacket } from 'werift';

export const DEFAULT_KEY = 'test-openai-key';
export const DEFAULT_MODEL = 'gpt-realtime';
const DEFAULT_INSTRUCTIONS =
  'You are a helpful, witty, and friendly AI. Act like a human, but remember that you are not a human.';
const MAX_BODY = 8 * 1024 * 1024;
const MAX_RECORDED_REQUESTS = 1000;
const ROUTES = ['client_secrets', 'calls', 'hangup'];
const FAULT_MODES = ['401', '429', '500', '503', 'slow', 'drop', 'garbage', 'hang'];
// A 20 ms Opus "silence" frame (TOC 0xF8: CELT fullband 20 ms, mono, one frame).
const OPUS_SILENCE = Buffer.from([0xf8, 0xff, 0xfe]);

// ---------------------------------------------------------------------------------------------
// small helpers

const hex = (bytes) => crypto.randomBytes(bytes).toString('hex');
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function alnum(n) {
  const buf = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[buf[i] % ALNUM.length];
  return s;
}
const eventId = () => `event_${alnum(21)}`;
const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function describeType(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a decimal number';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

function deepMerge(base, over) {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(base[k]) ? deepMerge(base[k], v) : v;
  }
  return out;
}

/** Reduce an Authorization header to "Bearer <first 3 chars>…" so state never holds a secret. */
export function redactAuthorization(value) {
  if (typeof value !== 'string' || value === '') return null;
  const m = /^(\S+)\s+(.*)$/.exec(value.trim());
  if (!m) return `${value.slice(0, 3)}…`;
  return `${m[1]} ${m[2].slice(0, 3)}…`;
}

function maskKey(k) {
  if (k.length <= 8) return '***';
  return `${k.slice(0, 3)}${'*'.repeat(Math.min(40, k.length - 7))}${k.slice(-4)}`;
}

class HttpError extends Error {
  constructor(status, message, { type = 'invalid_request_error', param = null, code = null, headers = {} } = {}) {
    super(message);
    this.status = status;
    this.body = { error: { message, type, param, code } };
    this.headers = headers;
  }
}

const err = {
  unknownParameter: (p) => new HttpError(400, `Unknown parameter: '${p}'.`, { param: p, code: 'unknown_parameter' }),
  missing: (p) => new HttpError(400, `Missing required parameter: '${p}'.`, { param: p, code: 'missing_required_parameter' }),
  invalidType: (p, expected, v) =>
    new HttpError(400, `Invalid type for '${p}': expected ${expected}, but got ${describeType(v)} instead.`, {
      param: p,
      code: 'invalid_type',
    }),
  invalidValue: (p, v, allowed) =>
    new HttpError(
      400,
      `Invalid value: '${typeof v === 'string' ? v : JSON.stringify(v)}'. Supported values are: ${allowed
        .map((a) => `'${a}'`)
        .join(allowed.length === 2 ? ' and ' : ', ')}.`,
      { param: p, code: 'invalid_value' },
    ),
  belowMin: (p, min, v) =>
    new HttpError(400, `Invalid '${p}': integer below minimum value. Expected a value >= ${min}, but got ${v} instead.`, {
      param: p,
      code: 'integer_below_min_value',
    }),
  aboveMax: (p, max, v) =>
    new HttpError(400, `Invalid '${p}': integer above maximum value. Expected a value <= ${max}, but got ${v} instead.`, {
      param: p,
      code: 'integer_above_max_value',
    }),
  badJson: () =>
    new HttpError(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
    ),
  noKey: () =>
    new HttpError(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
    ),
  badKey: (k) =>
    new HttpError(
      401,
      `Incorrect API key provided: ${maskKey(k)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      { code: 'invalid_api_key' },
    ),
  expiredKey: () =>
    new HttpError(401, 'The ephemeral client secret has expired. Create a new one with POST /v1/realtime/client_secrets.', {
      code: 'invalid_api_key',
    }),
  invalidUrl: (method, path) => new HttpError(404, `Invalid URL (${method} ${path})`),
};

// ---------------------------------------------------------------------------------------------
// session configuration (GA shapes)

const REALTIME_SESSION_KEYS = [
  'type', 'model', 'instructions', 'audio', 'include', 'max_output_tokens', 'output_modalities', 'prompt',
  'tool_choice', 'tools', 'tracing', 'truncation', 'reasoning', 'parallel_tool_calls',
];
const TRANSCRIPTION_SESSION_KEYS = ['type', 'audio', 'include'];
const AUDIO_INPUT_KEYS = ['format', 'noise_reduction', 'transcription', 'turn_detection'];
const AUDIO_OUTPUT_KEYS = ['format', 'speed', 'voice'];

function defaultSession(type, model) {
  if (type === 'transcription') {
    return {
      type: 'transcription',
      object: 'realtime.transcription_session',
      id: `sess_${alnum(24)}`,
      expires_at: 0,
      audio: {
        input: {
          format: { type: 'audio/pcm', rate: 24000 },
          transcription: { model: 'gpt-4o-transcribe', language: null, prompt: '' },
          noise_reduction: null,
          turn_detection: { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 200 },
        },
      },
      include: null,
    };
  }
  return {
    type: 'realtime',
    object: 'realtime.session',
    id: `sess_${alnum(24)}`,
    model,
    output_modalities: ['audio'],
    instructions: DEFAULT_INSTRUCTIONS,
    tools: [],
    tool_choice: 'auto',
    max_output_tokens: 'inf',
    tracing: null,
    truncation: 'auto',
    prompt: null,
    expires_at: 0,
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: 24000 },
        transcription: null,
        noise_reduction: null,
        turn_detection: {
          type: 'server_vad',
          threshold: 0.5,
          prefix_padding_ms: 300,
          silence_duration_ms: 200,
          idle_timeout_ms: null,
          create_response: true,
          interrupt_response: true,
        },
      },
      output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 },
    },
    include: null,
  };
}

function checkKeys(obj, allowed, prefix) {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw err.unknownParameter(`${prefix}.${k}`);
}

/** Validates a session request object (as in client_secrets.session or the multipart `session` part). */
function validateSession(session, p = 'session', { allowTranscription = true } = {}) {
  if (!isPlainObject(session)) throw err.invalidType(p, 'an object', session);
  if (!('type' in session)) throw err.missing(`${p}.type`);
  const allowedTypes = allowTranscription ? ['realtime', 'transcription'] : ['realtime'];
  if (!allowedTypes.includes(session.type)) throw err.invalidValue(`${p}.type`, session.type, allowedTypes);
  const transcription = session.type === 'transcription';
  checkKeys(session, transcription ? TRANSCRIPTION_SESSION_KEYS : REALTIME_SESSION_KEYS, p);
  for (const k of ['model', 'instructions']) {
    if (k in session && typeof session[k] !== 'string') throw err.invalidType(`${p}.${k}`, 'a string', session[k]);
  }
  if ('output_modalities' in session) {
    const om = session.output_modalities;
    if (!Array.isArray(om)) throw err.invalidType(`${p}.output_modalities`, 'an array', om);
    om.forEach((m, i) => {
      if (!['text', 'audio'].includes(m)) throw err.invalidValue(`${p}.output_modalities[${i}]`, m, ['text', 'audio']);
    });
  }
  if ('audio' in session) {
    const a = session.audio;
    if (!isPlainObject(a)) throw err.invalidType(`${p}.audio`, 'an object', a);
    checkKeys(a, transcription ? ['input'] : ['input', 'output'], `${p}.audio`);
    if ('input' in a) {
      if (!isPlainObject(a.input)) throw err.invalidType(`${p}.audio.input`, 'an object', a.input);
      checkKeys(a.input, AUDIO_INPUT_KEYS, `${p}.audio.input`);
    }
    if ('output' in a) {
      if (!isPlainObject(a.output)) throw err.invalidType(`${p}.audio.output`, 'an object', a.output);
      checkKeys(a.output, AUDIO_OUTPUT_KEYS, `${p}.audio.output`);
      if ('voice' in a.output && typeof a.output.voice !== 'string' && !isPlainObject(a.output.voice)) {
        throw err.invalidType(`${p}.audio.output.voice`, 'a string', a.output.voice);
      }
    }
  }
}

function buildSession(request, model) {
  const type = request?.type ?? 'realtime';
  const base = defaultSession(type, model);
  const merged = deepMerge(base, request ?? {});
  merged.object = base.object;
  merged.id = base.id;
  return merged;
}

// ---------------------------------------------------------------------------------------------
// SDP helpers

export function analyzeSdp(sdp) {
  if (typeof sdp !== 'string') return { ok: false };
  const lines = sdp.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (lines[0] !== 'v=0') return { ok: false };
  if (lines.some((l) => !/^[a-z]=/.test(l))) return { ok: false };
  const media = lines.filter((l) => l.startsWith('m='));
  if (!media.length) return { ok: false };
  const has = (prefix) => lines.some((l) => l.startsWith(prefix));
  const webrtc = has('a=ice-ufrag:') && has('a=ice-pwd:') && has('a=fingerprint:');
  return { ok: true, webrtc, lines };
}

/** A syntactically plausible answer for offers that are SDP but not a real WebRTC offer. */
function cannedAnswer(lines) {
  const fp = Array.from(crypto.randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  const ufrag = alnum(8);
  const pwd = alnum(24);
  const sections = [];
  let cur = null;
  for (const l of lines) {
    if (l.startsWith('m=')) {
      cur = { m: l, mid: null };
      sections.push(cur);
    } else if (cur && l.startsWith('a=mid:')) cur.mid = l.slice(6);
  }
  sections.forEach((s, i) => {
    if (s.mid === null) s.mid = String(i);
  });
  const out = [
    'v=0',
    `o=- ${Date.now()} 1 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    `a=group:BUNDLE ${sections.map((s) => s.mid).join(' ')}`,
    'a=msid-semantic:WMS *',
  ];
  for (const s of sections) {
    const [kind, , proto, ...fmts] = s.m.slice(2).split(/\s+/);
    out.push(`m=${kind} 9 ${proto ?? 'UDP/TLS/RTP/SAVPF'} ${fmts.join(' ')}`.trimEnd());
    out.push('c=IN IP4 0.0.0.0', `a=mid:${s.mid}`, `a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`);
    out.push(`a=fingerprint:sha-256 ${fp}`, 'a=setup:active');
    if (kind === 'application') out.push('a=sctp-port:5000');
    else out.push('a=sendrecv', 'a=rtcp-mux');
    out.push('a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host');
  }
  return `${out.join('\r\n')}\r\n`;
}

function parseMultipart(buf, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new HttpError(400, 'Invalid multipart/form-data body: no boundary in the Content-Type header.');
  const boundary = `--${m[1] ?? m[2]}`;
  const text = buf.toString('latin1');
  const chunks = text.split(boundary);
  const parts = {};
  for (let i = 1; i < chunks.length; i++) {
    let c = chunks[i];
    if (c.startsWith('--')) break;
    c = c.replace(/^\r?\n/, '');
    const sep = c.search(/\r?\n\r?\n/);
    if (sep < 0) continue;
    const head = c.slice(0, sep);
    let body = c.slice(sep).replace(/^\r?\n\r?\n/, '');
    body = body.replace(/\r?\n$/, '');
    const name = /name="([^"]*)"/i.exec(head)?.[1];
    if (name === undefined) continue;
    parts[name] = Buffer.from(body, 'latin1').toString('utf8');
  }
  return parts;
}

// ---------------------------------------------------------------------------------------------
// the loopback WebRTC peer

function loopbackPeerConfig() {
  return {
    iceServers: [],
    iceUseIpv4: false, // no interface enumeration at all ...
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'], // ... only one host candidate on loopback
    iceInterfaceAddresses: { udp4: '127.0.0.1' }, // and its socket bound to loopback
  };
}
export { loopbackPeerConfig };

function waitIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((s) => {
      if (s === 'complete') done();
    });
    function done() {
      clearTimeout(timer);
      unSubscribe();
      resolve();
    }
  });
}

// ---------------------------------------------------------------------------------------------

export async function startFakeOpenAI(options = {}) {
  const {
    port = 0,
    host = '127.0.0.1',
    tls = null,
    realKey = process.env.FAKE_OPENAI_KEY || DEFAULT_KEY,
    model = DEFAULT_MODEL,
    log = () => {},
  } = options;

  const events = new EventEmitter();
  events.setMaxListeners(0);
  const changed = () => events.emit('change');

  const script = {
    userTranscript: 'Hello assistant',
    assistantTranscript: 'Hello! How can I help?',
    autoRespond: true,
    ...(options.script ?? {}),
  };

  const state = {
    counts: { client_secrets: 0, calls: 0, hangup: 0, other: 0, total: 0 },
    requests: [],
    keys: new Map(), // value -> key record
    calls: new Map(), // id -> call record
    hangups: [],
    faults: [],
    clockOffsetMs: 0,
  };
  const hanging = new Set();
  const waiters = new Set();

  const now = () => Date.now() + state.clockOffsetMs;

  // -- snapshot for GET /__control/state ------------------------------------------------------
  function callView(c) {
    return {
      id: c.id,
      createdAt: c.createdAt,
      via: c.via,
      authKind: c.authKind,
      webrtc: c.webrtc,
      session: c.session,
      connectionState: c.connectionState,
      connectedMs: c.connectedMs,
      dataChannelOpen: c.dataChannelOpen,
      dataChannels: c.dataChannels,
      eventsSent: c.eventsSent,
      clientEvents: c.clientEvents,
      audio: { ...c.audio },
      hungUp: c.hungUp,
      hangups: c.hangupCount,
    };
  }
  function snapshot() {
    return {
      counts: { ...state.counts },
      requests: state.requests,
      keys: [...state.keys.values()].map((k) => ({
        value: k.value,
        createdAt: k.createdAt,
        expiresAt: k.expiresAt,
        expired: k.expiresAt * 1000 <= now(),
        sessionId: k.session.id,
        sessionType: k.session.type,
        uses: k.uses,
      })),
      calls: [...state.calls.values()].map(callView),
      hangups: [...state.hangups],
      faults: state.faults.map((f) => ({ ...f, count: f.count === Infinity ? null : f.count })),
      clockOffsetMs: state.clockOffsetMs,
      script: { ...script },
    };
  }
  function metrics() {
    const calls = [...state.calls.values()];
    return {
      requests: state.counts.total,
      client_secrets: state.counts.client_secrets,
      keys: state.keys.size,
      calls: calls.length,
      connected: calls.filter((c) => c.connectedMs !== null).length,
      channels: calls.filter((c) => c.dataChannelOpen).length,
      hangups: state.hangups.length,
    };
  }

  // -- fault handling ---------------------------------------------------------------------------
  function addFault(spec) {
    if (!isPlainObject(spec)) throw new HttpError(400, 'A fault must be a JSON object.');
    const route = spec.route ?? '*';
    if (![...ROUTES, '*'].includes(route)) throw err.invalidValue('route', route, [...ROUTES, '*']);
    const mode = String(spec.mode ?? '');
    if (!FAULT_MODES.includes(mode)) throw err.invalidValue('mode', spec.mode, FAULT_MODES);
    let count = Infinity;
    if (spec.count !== undefined && spec.count !== null) {
      if (!Number.isInteger(spec.count) || spec.count < 1) throw err.invalidType('count', 'a positive integer', spec.count);
      count = spec.count;
    }
    for (const k of ['retryAfter', 'delayMs']) {
      if (spec[k] !== undefined && (typeof spec[k] !== 'number' || spec[k] < 0)) {
        throw err.invalidType(k, 'a non-negative number', spec[k]);
      }
    }
    const fault = { route, mode, count, retryAfter: spec.retryAfter ?? null, delayMs: spec.delayMs ?? 1000, hits: 0 };
    state.faults.push(fault);
    return fault;
  }
  function takeFault(route) {
    const f = state.faults.find((x) => (x.route === route || x.route === '*') && x.count > 0);
    if (!f) return null;
    f.count -= 1;
    f.hits += 1;
    return f;
  }

  // -- calls and peers --------------------------------------------------------------------------
  function newCall({ via, authKind, session, webrtc }) {
    const call = {
      id: `rtc_${hex(16)}`,
      createdAt: new Date(now()).toISOString(),
      startedAt: Date.now(),
      via,
      authKind,
      webrtc,
      session,
      connectionState: webrtc ? 'new' : 'none',
      connectedMs: null,
      dataChannelOpen: false,
      dataChannels: [],
      eventsSent: [],
      clientEvents: [],
      audio: { packetsReceived: 0, packetsSent: 0, echoed: 0 },
      hungUp: false,
      hangupCount: 0,
      pc: null,
      timer: null,
      closed: false,
    };
    state.calls.set(call.id, call);
    return call;
  }

  async function closeCall(call) {
    if (call.closed) return;
    call.closed = true;
    if (call.timer) clearInterval(call.timer);
    call.timer = null;
    // Close the data channels first (SCTP stream reset) so the client learns at once: a werift
    // client's channel closes, Chromium's goes to "closing" (then "disconnected" ~5 s later, by
    // ICE consent expiry). Then tear the peer down.
    await Promise.all(
      (call.dcs ?? []).map(
        (dc) =>
          new Promise((resolve) => {
            if (dc.readyState === 'closed') return resolve();
            const timer = setTimeout(resolve, 500);
            dc.stateChanged.subscribe((s) => {
              if (s === 'closed') {
                clearTimeout(timer);
                resolve();
              }
            });
            try {
              dc.close();
            } catch {
              clearTimeout(timer);
              resolve();
            }
          }),
      ),
    );
    if (call.pc) {
      try {
        await call.pc.close();
      } catch {
        /* already closed */
      }
    }
  }

  function sendEvent(call, dc, ev) {
    const full = { event_id: eventId(), ...ev };
    try {
      dc.send(JSON.stringify(full));
      call.eventsSent.push(full.type);
    } catch (e) {
      log(`send ${full.type} failed: ${e.message}`);
    }
  }

  function sendResponseScript(call, dc, previousItemId) {
    const responseId = `resp_${alnum(21)}`;
    const itemId = `item_${alnum(21)}`;
    const text = script.assistantTranscript;
    const baseResponse = {
      object: 'realtime.response',
      id: responseId,
      conversation_id: call.conversationId,
      output_modalities: call.session.output_modalities ?? ['audio'],
      max_output_tokens: 'inf',
      audio: { output: { format: { type: 'audio/pcm', rate: 24000 }, voice: call.session.audio?.output?.voice ?? 'alloy' } },
      metadata: null,
      status_details: null,
      usage: null,
    };
    const item = { id: itemId, type: 'message', object: 'realtime.item', status: 'in_progress', role: 'assistant', content: [] };
    sendEvent(call, dc, { type: 'response.created', response: { ...baseResponse, status: 'in_progress', output: [] } });
    sendEvent(call, dc, { type: 'response.output_item.added', response_id: responseId, output_index: 0, item });
    sendEvent(call, dc, { type: 'conversation.item.added', previous_item_id: previousItemId, item });
    const ids = { response_id: responseId, item_id: itemId, output_index: 0, content_index: 0 };
    sendEvent(call, dc, { type: 'response.content_part.added', ...ids, part: { type: 'audio', transcript: '' } });
    sendEvent(call, dc, { type: 'output_audio_buffer.started', response_id: responseId });
    const pieces = text.match(/\S+\s*/g) ?? [text];
    for (const delta of pieces) sendEvent(call, dc, { type: 'response.output_audio_transcript.delta', ...ids, delta });
    sendEvent(call, dc, { type: 'response.output_audio_transcript.done', ...ids, transcript: text });
    sendEvent(call, dc, { type: 'response.content_part.done', ...ids, part: { type: 'audio', transcript: text } });
    const doneItem = { ...item, status: 'completed', content: [{ type: 'output_audio', transcript: text }] };
    sendEvent(call, dc, { type: 'response.output_item.done', response_id: responseId, output_index: 0, item: doneItem });
    sendEvent(call, dc, { type: 'conversation.item.done', previous_item_id: previousItemId, item: doneItem });
    sendEvent(call, dc, {
      type: 'response.done',
      response: {
        ...baseResponse,
        status: 'completed',
        output: [doneItem],
        usage: {
          total_tokens: 60,
          input_tokens: 40,
          output_tokens: 20,
          input_token_details: { text_tokens: 30, audio_tokens: 10, cached_tokens: 0 },
          output_token_details: { text_tokens: 5, audio_tokens: 15 },
        },
      },
    });
    sendEvent(call, dc, { type: 'output_audio_buffer.stopped', response_id: responseId });
    return itemId;
  }

  function sendOpeningScript(call, dc) {
    call.conversationId = `conv_${alnum(21)}`;
    sendEvent(call, dc, { type: 'session.created', session: call.session });
    if (!script.autoRespond) return;
    const userItem = `item_${alnum(21)}`;
    sendEvent(call, dc, { type: 'input_audio_buffer.speech_started', audio_start_ms: 100, item_id: userItem });
    sendEvent(call, dc, { type: 'input_audio_buffer.speech_stopped', audio_end_ms: 1300, item_id: userItem });
    sendEvent(call, dc, { type: 'input_audio_buffer.committed', previous_item_id: null, item_id: userItem });
    const item = {
      id: userItem,
      type: 'message',
      object: 'realtime.item',
      status: 'completed',
      role: 'user',
      content: [{ type: 'input_audio', transcript: null }],
    };
    sendEvent(call, dc, { type: 'conversation.item.added', previous_item_id: null, item });
    sendEvent(call, dc, { type: 'conversation.item.done', previous_item_id: null, item });
    sendEvent(call, dc, {
      type: 'conversation.item.input_audio_transcription.delta',
      item_id: userItem,
      content_index: 0,
      delta: script.userTranscript,
    });
    sendEvent(call, dc, {
      type: 'conversation.item.input_audio_transcription.completed',
      item_id: userItem,
      content_index: 0,
      transcript: script.userTranscript,
      usage: { type: 'tokens', total_tokens: 12, input_tokens: 8, output_tokens: 4, input_token_details: { text_tokens: 0, audio_tokens: 8 } },
    });
    call.lastItemId = sendResponseScript(call, dc, userItem);
  }

  function onClientEvent(call, dc, data) {
    let ev;
    try {
      ev = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
    } catch {
      sendEvent(call, dc, {
        type: 'error',
        error: { type: 'invalid_request_error', code: 'invalid_json', message: 'Invalid JSON in client event.', param: null, event_id: null },
      });
      return;
    }
    if (call.clientEvents.length < 200) call.clientEvents.push(ev?.type ?? null);
    changed();
    if (ev?.type === 'session.update' && isPlainObject(ev.session)) {
      const { type: _t, ...rest } = ev.session;
      call.session = deepMerge(call.session, rest);
      sendEvent(call, dc, { type: 'session.updated', session: call.session });
    } else if (ev?.type === 'response.create') {
      call.lastItemId = sendResponseScript(call, dc, call.lastItemId ?? null);
    }
  }

  function attachDataChannel(call, dc) {
    const entry = { label: dc.label, state: dc.readyState };
    call.dataChannels.push(entry);
    (call.dcs ??= []).push(dc);
    let started = false;
    const onState = (s) => {
      entry.state = s;
      if (s === 'open' && !started && dc.label === 'oai-events') {
        started = true;
        call.dataChannelOpen = true;
        sendOpeningScript(call, dc);
        changed();
      }
    };
    dc.stateChanged.subscribe(onState);
    dc.onMessage.subscribe((data) => onClientEvent(call, dc, data));
    onState(dc.readyState);
  }

  function attachAudio(call, transceiver) {
    if (transceiver.kind !== 'audio') return;
    const queue = [];
    transceiver.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        call.audio.packetsReceived += 1;
        queue.push(Buffer.from(rtp.payload));
        if (queue.length > 50) queue.shift();
      });
    });
    call.startAudio = () => {
      if (call.timer || call.closed) return;
      const ssrc = crypto.randomBytes(4).readUInt32BE(0);
      let seq = crypto.randomBytes(2).readUInt16BE(0);
      let ts = crypto.randomBytes(4).readUInt32BE(0);
      let first = true;
      call.timer = setInterval(() => {
        const echoed = queue.shift();
        const payload = echoed ?? OPUS_SILENCE;
        const header = new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: ts, ssrc, marker: first });
        first = false;
        seq = (seq + 1) & 0xffff;
        ts = (ts + 960) >>> 0; // 20 ms at 48 kHz
        transceiver.sender
          .sendRtp(new RtpPacket(header, payload))
          .then(() => {
            call.audio.packetsSent += 1;
            if (echoed) call.audio.echoed += 1;
          })
          .catch(() => {});
      }, 20);
      call.timer.unref?.();
    };
  }

  async function answerWithPeer(call, offerSdp) {
    const pc = new RTCPeerConnection(loopbackPeerConfig());
    call.pc = pc;
    const attached = new Set();
    const onTransceiver = (t) => {
      if (attached.has(t)) return;
      attached.add(t);
      attachAudio(call, t);
    };
    pc.onTransceiverAdded.subscribe(onTransceiver);
    pc.onDataChannel.subscribe((dc) => attachDataChannel(call, dc));
    pc.connectionStateChange.subscribe((s) => {
      call.connectionState = s;
      if (s === 'connected' && call.connectedMs === null) {
        call.connectedMs = Date.now() - call.startedAt;
        call.startAudio?.();
      }
      if (s === 'failed' || s === 'closed') {
        if (call.timer) clearInterval(call.timer);
        call.timer = null;
      }
      changed();
    });
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    for (const t of pc.getTransceivers()) {
      onTransceiver(t);
      // werift creates remotely offered transceivers as recvonly; answer audio as sendrecv so the
      // browser gets a remote track (the "model's voice"), as the real API does.
      if (t.kind === 'audio') t.setDirection('sendrecv');
    }
    await pc.setLocalDescription(await pc.createAnswer());
    await waitIceGathering(pc, 3000);
    return pc.localDescription.sdp;
  }

  // -- HTTP plumbing ----------------------------------------------------------------------------
  function baseHeaders(ctx) {
    return {
      'x-request-id': ctx.requestId,
      'openai-processing-ms': String(Date.now() - ctx.started),
      'openai-version': '2020-10-01',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'Location, x-request-id, openai-processing-ms, Retry-After',
    };
  }
  function send(ctx, status, body, headers = {}) {
    const { res } = ctx;
    if (res.headersSent || res.destroyed || ctx.done) return;
    ctx.done = true;
    const payload = body === undefined || body === null ? '' : Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body);
    const h = { ...baseHeaders(ctx), ...headers, 'content-length': Buffer.byteLength(payload) };
    if (typeof body === 'object' && body !== null && !Buffer.isBuffer(body) && !headers['content-type']) {
      h['content-type'] = 'application/json';
    }
    if (ctx.record) ctx.record.status = status;
    res.writeHead(status, h);
    res.end(payload);
  }
  function sendError(ctx, e) {
    if (e instanceof HttpError) return send(ctx, e.status, e.body, e.headers);
    log(`internal error: ${e.stack ?? e}`);
    return send(ctx, 500, {
      error: { message: 'The server had an error while processing your request. Sorry about that!', type: 'server_error', param: null, code: null },
    });
  }

  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (c) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new HttpError(413, 'Request body too large.'));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }

  function authOf(req) {
    const h = req.headers.authorization;
    if (!h) return { kind: 'none', token: null };
    const m = /^Bearer\s+(.+)$/i.exec(h.trim());
    if (!m) return { kind: 'invalid', token: h };
    const token = m[1].trim();
    if (token === realKey) return { kind: 'api_key', token };
    if (token.startsWith('ek_')) {
      const k = state.keys.get(token);
      if (!k) return { kind: 'unknown_ephemeral', token };
      if (k.expiresAt * 1000 <= now()) return { kind: 'expired_ephemeral', token, key: k };
      return { kind: 'ephemeral', token, key: k };
    }
    return { kind: 'invalid', token };
  }
  function requireAuth(auth, allowed) {
    if (allowed.includes(auth.kind)) return;
    if (auth.kind === 'none') throw err.noKey();
    if (auth.kind === 'expired_ephemeral') throw err.expiredKey();
    throw err.badKey(auth.token ?? '');
  }

  function routeOf(method, path) {
    if (path === '/v1/realtime/client_secrets') return { route: 'client_secrets' };
    if (path === '/v1/realtime/calls') return { route: 'calls' };
    const m = /^\/v1\/realtime\/calls\/([^/]+)\/hangup$/.exec(path);
    if (m) return { route: 'hangup', callId: decodeURIComponent(m[1]) };
    return { route: 'other' };
  }

  function recordBody(contentType, raw) {
    if (!raw.length) return null;
    const ct = (contentType ?? '').toLowerCase();
    if (ct.startsWith('multipart/form-data')) {
      try {
        const parts = parseMultipart(raw, contentType);
        let session = parts.session;
        try {
          session = session === undefined ? undefined : JSON.parse(session);
        } catch {
          /* keep text */
        }
        return { sdp: parts.sdp, session };
      } catch {
        return raw.toString('utf8');
      }
    }
    const text = raw.toString('utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  // -- API handlers -----------------------------------------------------------------------------
  async function handleClientSecrets(ctx, raw) {
    const auth = authOf(ctx.req);
    requireAuth(auth, ['api_key']);
    let body;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw err.badJson();
    }
    if (!isPlainObject(body)) {
      throw new HttpError(400, `Invalid body: expected an object, but got ${describeType(body)} instead.`, { code: 'invalid_type' });
    }
    for (const k of Object.keys(body)) if (!['expires_after', 'session'].includes(k)) throw err.unknownParameter(k);
    let seconds = 600;
    if ('expires_after' in body) {
      const ea = body.expires_after;
      if (!isPlainObject(ea)) throw err.invalidType('expires_after', 'an object', ea);
      checkKeys(ea, ['anchor', 'seconds'], 'expires_after');
      if ('anchor' in ea && ea.anchor !== 'created_at') throw err.invalidValue('expires_after.anchor', ea.anchor, ['created_at']);
      if ('seconds' in ea) {
        const s = ea.seconds;
        if (!Number.isInteger(s)) throw err.invalidType('expires_after.seconds', 'an integer', s);
        if (s < 10) throw err.belowMin('expires_after.seconds', 10, s);
        if (s > 7200) throw err.aboveMax('expires_after.seconds', 7200, s);
        seconds = s;
      }
    }
    if ('session' in body) validateSession(body.session, 'session');
    const session = buildSession(body.session ?? { type: 'realtime' }, model);
    const createdAt = Math.floor(now() / 1000);
    const key = { value: `ek_${hex(16)}`, createdAt, expiresAt: createdAt + seconds, session, uses: 0 };
    state.keys.set(key.value, key);
    changed();
    send(ctx, 200, { value: key.value, expires_at: key.expiresAt, session });
  }

  async function handleCalls(ctx, raw) {
    const { req } = ctx;
    const auth = authOf(req);
    requireAuth(auth, ['api_key', 'ephemeral']);
    const ct = (req.headers['content-type'] ?? '').toLowerCase();
    let sdp;
    let session;
    let via;
    if (ct.startsWith('application/sdp')) {
      via = 'sdp';
      sdp = raw.toString('utf8');
      session = auth.kind === 'ephemeral' ? structuredClone(auth.key.session) : buildSession({ type: 'realtime' }, model);
    } else if (ct.startsWith('multipart/form-data')) {
      via = 'multipart';
      const parts = parseMultipart(raw, req.headers['content-type']);
      if (parts.sdp === undefined) throw err.missing('sdp');
      sdp = parts.sdp;
      let requested = null;
      if (parts.session !== undefined) {
        try {
          requested = JSON.parse(parts.session);
        } catch {
          throw new HttpError(400, "Invalid 'session': expected a JSON object.", { param: 'session', code: 'invalid_json' });
        }
        validateSession(requested, 'session', { allowTranscription: false });
      }
      const base = auth.kind === 'ephemeral' ? structuredClone(auth.key.session) : buildSession({ type: 'realtime' }, model);
      session = requested ? deepMerge(base, requested) : base;
    } else {
      throw new HttpError(
        400,
        `Unsupported content type: '${req.headers['content-type'] ?? ''}'. This API method only accepts 'application/sdp' and 'multipart/form-data' requests.`,
      );
    }
    const info = analyzeSdp(sdp);
    if (!info.ok) {
      throw new HttpError(400, 'Invalid SDP offer. Please provide a valid WebRTC SDP offer.', { param: 'sdp', code: 'invalid_offer' });
    }
    if (auth.kind === 'ephemeral') auth.key.uses += 1;
    const call = newCall({ via, authKind: auth.kind, session, webrtc: info.webrtc });
    ctx.record.callId = call.id;
    let answer;
    if (info.webrtc) {
      try {
        answer = await answerWithPeer(call, sdp);
      } catch (e) {
        log(`werift could not answer: ${e.stack ?? e}`);
        state.calls.delete(call.id);
        await closeCall(call);
        throw new HttpError(400, `Invalid SDP offer: ${e.message}`, { param: 'sdp', code: 'invalid_offer' });
      }
    } else {
      answer = cannedAnswer(info.lines);
    }
    changed();
    send(ctx, 201, answer, { 'content-type': 'application/sdp', location: `/v1/realtime/calls/${call.id}` });
  }

  async function handleHangup(ctx, callId) {
    const auth = authOf(ctx.req);
    requireAuth(auth, ['api_key']);
    const call = state.calls.get(callId);
    if (!call) {
      throw new HttpError(404, `Call '${callId}' not found.`, { param: 'call_id', code: 'call_not_found' });
    }
    call.hungUp = true;
    call.hangupCount += 1;
    state.hangups.push(callId);
    await closeCall(call);
    changed();
    send(ctx, 200, '');
  }

  async function applyFault(ctx, fault) {
    const { mode } = fault;
    ctx.record.fault = mode;
    const retry = fault.retryAfter !== null ? { 'retry-after': String(fault.retryAfter) } : {};
    switch (mode) {
      case '401':
        throw new HttpError(401, 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', {
          code: 'invalid_api_key',
        });
      case '429':
        throw new HttpError(429, 'Rate limit reached for requests. Please try again later.', {
          type: 'requests',
          code: 'rate_limit_exceeded',
          headers: retry,
        });
      case '500':
        throw new HttpError(500, 'The server had an error while processing your request. Sorry about that!', { type: 'server_error' });
      case '503':
        throw new HttpError(503, 'The server is overloaded or not ready yet.', { type: 'server_error', headers: retry });
      case 'slow':
        await new Promise((r) => setTimeout(r, fault.delayMs));
        return false; // continue normally
      case 'drop':
        ctx.record.status = 'dropped';
        ctx.done = true;
        ctx.req.socket.destroy();
        return true;
      case 'garbage':
        send(ctx, 200, 'this is not JSON <html><body>upstream garbage</body>', { 'content-type': 'application/json' });
        return true;
      case 'hang':
        ctx.record.status = 'hung';
        ctx.done = true;
        hanging.add(ctx);
        ctx.res.on('close', () => hanging.delete(ctx));
        return true;
      default:
        return false;
    }
  }

  async function handleApi(ctx) {
    const { req } = ctx;
    const url = new URL(req.url, 'http://x');
    const { route, callId } = routeOf(req.method, url.pathname);
    state.counts[route] += 1;
    state.counts.total += 1;
    const raw = await readBody(req);
    const headers = { ...req.headers };
    if (headers.authorization !== undefined) headers.authorization = redactAuthorization(headers.authorization);
    const auth = authOf(req);
    const record = {
      requestId: ctx.requestId,
      at: new Date(now()).toISOString(),
      method: req.method,
      path: req.url,
      route,
      authorization: headers.authorization ?? null,
      authKind: auth.kind,
      headers,
      body: recordBody(req.headers['content-type'], raw),
      status: null,
      fault: null,
    };
    if (callId !== undefined) record.callId = callId;
    ctx.record = record;
    state.requests.push(record);
    if (state.requests.length > MAX_RECORDED_REQUESTS) state.requests.shift();
    changed();

    if (route === 'other' || req.method !== 'POST') throw err.invalidUrl(req.method, url.pathname);
    const fault = takeFault(route);
    if (fault && (await applyFault(ctx, fault))) return;
    if (route === 'client_secrets') return handleClientSecrets(ctx, raw);
    if (route === 'calls') return handleCalls(ctx, raw);
    return handleHangup(ctx, callId);
  }

  // -- control API ------------------------------------------------------------------------------
  async function readJson(req) {
    const raw = await readBody(req);
    if (!raw.length) return {};
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw err.badJson();
    }
  }

  function waitFor(conditions, timeoutMs = 5000) {
    const met = () => {
      const m = metrics();
      return Object.entries(conditions).every(([k, v]) => (m[k] ?? 0) >= v);
    };
    return new Promise((resolve) => {
      if (met()) return resolve({ ok: true, metrics: metrics() });
      const w = {};
      const finish = (ok) => {
        clearTimeout(w.timer);
        events.off('change', w.check);
        waiters.delete(w);
        resolve({ ok, metrics: metrics() });
      };
      w.check = () => {
        if (met()) finish(true);
      };
      w.cancel = () => finish(false);
      w.timer = setTimeout(() => finish(false), timeoutMs);
      events.on('change', w.check);
      waiters.add(w);
    });
  }

  async function reset() {
    const calls = [...state.calls.values()];
    state.counts = { client_secrets: 0, calls: 0, hangup: 0, other: 0, total: 0 };
    state.requests = [];
    state.keys.clear();
    state.calls.clear();
    state.hangups = [];
    state.faults = [];
    state.clockOffsetMs = 0;
    for (const ctx of hanging) ctx.req.socket.destroy();
    hanging.clear();
    await Promise.all(calls.map(closeCall));
    changed();
  }

  const WAIT_KEYS = ['requests', 'client_secrets', 'keys', 'calls', 'connected', 'channels', 'hangups'];

  async function handleControl(ctx, path) {
    const { req } = ctx;
    const url = new URL(req.url, 'http://x');
    const key = `${req.method} ${path}`;
    switch (key) {
      case 'GET /__control/state':
        return send(ctx, 200, snapshot());
      case 'POST /__control/reset':
        await reset();
        return send(ctx, 200, { ok: true });
      case 'POST /__control/faults': {
        const body = await readJson(req);
        const specs = Array.isArray(body) ? body : [body];
        const added = specs.map(addFault);
        changed();
        return send(ctx, 200, { ok: true, added: added.length, faults: snapshot().faults });
      }
      case 'DELETE /__control/faults':
        state.faults = [];
        return send(ctx, 200, { ok: true });
      case 'GET /__control/wait': {
        const conditions = {};
        for (const k of WAIT_KEYS) {
          const v = url.searchParams.get(k);
          if (v === null) continue;
          const n = Number(v);
          if (!Number.isInteger(n) || n < 0) throw err.invalidType(k, 'a non-negative integer', v);
          conditions[k] = n;
        }
        for (const k of url.searchParams.keys()) {
          if (!WAIT_KEYS.includes(k) && k !== 'timeoutMs') throw err.unknownParameter(k);
        }
        if (!Object.keys(conditions).length) throw new HttpError(400, `Give at least one of: ${WAIT_KEYS.join(', ')}.`);
        const t = Number(url.searchParams.get('timeoutMs') ?? 5000);
        const timeoutMs = Number.isFinite(t) ? Math.max(0, Math.min(t, 120000)) : 5000;
        const result = await waitFor(conditions, timeoutMs);
        if (result.ok) return send(ctx, 200, { ok: true, ...result.metrics });
        return send(ctx, 408, {
          ok: false,
          error: { message: `Timed out after ${timeoutMs} ms waiting for ${JSON.stringify(conditions)}.`, type: 'timeout', param: null, code: 'timeout' },
          ...result.metrics,
        });
      }
      case 'POST /__control/clock': {
        const body = await readJson(req);
        const s = body.advanceSeconds;
        if (typeof s !== 'number' || !Number.isFinite(s)) throw err.invalidType('advanceSeconds', 'a number', s);
        state.clockOffsetMs += s * 1000;
        return send(ctx, 200, { ok: true, clockOffsetMs: state.clockOffsetMs, now: Math.floor(now() / 1000) });
      }
      case 'POST /__control/expire': {
        const body = await readJson(req);
        const past = Math.floor(now() / 1000) - 1;
        let n = 0;
        for (const k of state.keys.values()) {
          if (body.value === undefined || body.value === k.value) {
            k.expiresAt = Math.min(k.expiresAt, past);
            n++;
          }
        }
        return send(ctx, 200, { ok: true, expired: n });
      }
      case 'POST /__control/script': {
        const body = await readJson(req);
        if (!isPlainObject(body)) throw new HttpError(400, 'Expected a JSON object.');
        for (const k of Object.keys(body)) {
          if (!['userTranscript', 'assistantTranscript', 'autoRespond'].includes(k)) throw err.unknownParameter(k);
        }
        Object.assign(script, body);
        return send(ctx, 200, { ok: true, script: { ...script } });
      }
      default:
        throw new HttpError(404, `Unknown control endpoint (${req.method} ${path}).`);
    }
  }

  async function onRequest(req, res) {
    const ctx = { req, res, started: Date.now(), requestId: `req_${hex(16)}`, record: null, done: false };
    try {
      const path = new URL(req.url, 'http://x').pathname;
      if (req.method === 'OPTIONS') {
        return send(ctx, 204, '', {
          'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
          'access-control-allow-headers': 'Authorization, Content-Type, OpenAI-Beta',
          'access-control-max-age': '600',
        });
      }
      if (path.startsWith('/__control/')) return await handleControl(ctx, path);
      return await handleApi(ctx);
    } catch (e) {
      sendError(ctx, e);
    }
  }

  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, onRequest) : http.createServer(onRequest);
  server.on('clientError', (e, socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing = null;
  function close() {
    if (closing) return closing;
    closing = (async () => {
      for (const w of [...waiters]) w.cancel();
      for (const ctx of hanging) ctx.req.socket.destroy();
      await Promise.all([...state.calls.values()].map(closeCall));
      await new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
    })();
    return closing;
  }

  return {
    port: actualPort,
    url: `${tls ? 'https' : 'http'}://${urlHost}:${actualPort}`,
    close,
    /** Live state. Prefer snapshot() for a JSON view identical to GET /__control/state. */
    state,
    snapshot,
    metrics,
    waitFor,
    addFault: (spec) => {
      const f = addFault(spec);
      changed();
      return f;
    },
    reset,
    script,
  };
}

// ---------------------------------------------------------------------------------------------
// command line

function parseArgs(argv) {
  const out = { port: 0, host: '127.0.0.1', tlsCert: null, tlsKey: null, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') out.port = Number(next());
    else if (a === '--host') out.host = next();
    else if (a === '--tls-cert') out.tlsCert = next();
    else if (a === '--tls-key') out.tlsKey = next();
    else if (a === '--verbose' || a === '-v') out.verbose = true;
    else if (a === '--help' || a === '-h') out.help = true;
    else throw new Error(`unknown argument: ${a}`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new Error('--port must be 0..65535');
  if (Boolean(out.tlsCert) !== Boolean(out.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
  return out;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fake-openai: ${e.message}\n`);
    process.exit(2);
  }
  if (args.help) {
    process.stderr.write('usage: node server.mjs --port 0 [--host 127.0.0.1] [--tls-cert F --tls-key F] [--verbose]\n');
    process.exit(0);
  }
  const tls = args.tlsCert ? { cert: fs.readFileSync(args.tlsCert), key: fs.readFileSync(args.tlsKey) } : null;
  const log = args.verbose ? (m) => process.stderr.write(`fake-openai: ${m}\n`) : () => {};
  const fake = await startFakeOpenAI({ port: args.port, host: args.host, tls, log });
  process.stdout.write(`${JSON.stringify({ listening: fake.port })}\n`);
  const stop = async () => {
    await fake.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main().catch((e) => {
    process.stderr.write(`fake-openai: ${e.stack ?? e}\n`);
    process.exit(1);
  });
}
