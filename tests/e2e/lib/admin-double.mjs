// A TEST DOUBLE of voice-broker, NOT the server: a small Node stand-in that speaks the admin API
// of docs/API.md ("Admin API") and enough of the visitor API (join, status, heartbeat, leave,
// stats, token, call, the live channel) for the visitor page to queue, be admitted and talk to the
// fake OpenAI. It exists so that the operator's console (static/admin/) can be built and checked
// before the real server serves /api/admin; the e2e tests run against it only when
// ADMIN_API_DOUBLE=1, and against the real binary otherwise. It keeps the real server's rules
// where the console can see them (FIFO admission, pause, limits, forced ends with hang-ups,
// cookie login with expiry, Origin checks, the throttle, 4401 on logout) and none of its
// hardening. Never deploy it; it listens on 127.0.0.1 only.
//
// startAdminDouble(settings) takes the broker's environment names (ADMIN_TOKEN, OPENAI_API_KEY,
// OPENAI_BASE_URL, MAX_CONCURRENT_USERS, MAX_QUEUE_LENGTH, SESSION_DURATION_SECONDS,
// WARNING_SECONDS, ADMIN_SESSION_SECONDS) and resolves with the interface of broker.mjs's
// startBroker ({url, port, lines, tail, waitForLog, stop, crash}) plus scenery(extra), which
// fills what only later issues make real (cost, budget, upstream health, redis instances).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { REPO_ROOT } from './broker.mjs';

const STATIC_DIR = path.join(REPO_ROOT, 'static');
const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8', '.ico': 'image/x-icon', '.webmanifest': 'application/manifest+json',
};
const THROTTLE_FAILURES = 5;
const THROTTLE_WINDOW_MS = 60_000;
const INSTANCE = 'double-1';

export async function startAdminDouble(settings = {}) {
  const token = settings.ADMIN_TOKEN ?? '';
  const openaiKey = settings.OPENAI_API_KEY ?? '';
  const openaiBase = settings.OPENAI_BASE_URL ?? 'https://api.openai.com';
  const limits = {
    maxConcurrentUsers: Number(settings.MAX_CONCURRENT_USERS ?? 1),
    sessionSeconds: Number(settings.SESSION_DURATION_SECONDS ?? 60 * Number(settings.MAX_SESSION_DURATION_MINUTES ?? 5)),
    maxQueueLength: Number(settings.MAX_QUEUE_LENGTH ?? 50),
    warningSeconds: (settings.WARNING_SECONDS ?? '180,120,60').split(',').map(Number),
  };
  const loginSeconds = Number(settings.ADMIN_SESSION_SECONDS ?? 900);
  const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    + `media-src 'self' blob: mediastream:; connect-src 'self' ${new URL(openaiBase).origin}; worker-src 'self' blob:; `
    + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

  const lines = [];
  const listeners = new Set();
  const log = line => {
    lines.push(line);
    for (const listener of listeners) listener(line);
  };

  // ---- the broker's state --------------------------------------------------------------------
  let nextId = 17;
  let paused = false;
  const entries = new Map();  // ticket -> entry
  const byId = new Map();     // id -> entry
  const queue = [];           // entries, FIFO
  const today = { sessionsStarted: 0, sessionsCompleted: 0, secondsUsed: 0 };
  let scenery = {};           // what later issues add (cost, budget, upstream, instances)
  const logins = new Map();   // login id -> {expiresAt, timer}
  const adminSockets = new Set();  // {socket, login}
  const failures = new Map(); // address -> [times]

  const active = () => [...entries.values()].filter(e => e.state === 'active');
  const now = () => Date.now();
  const iso = ms => new Date(ms).toISOString();
  const mask = address => {
    const v4 = address.replace(/^::ffff:/, '');
    if (/^\d+\.\d+\.\d+\.\d+$/.test(v4)) return v4.replace(/\.\d+$/, '.x');
    return `${address.split(':').slice(0, 3).join(':')}::x`;
  };

  function etaFor(position) {
    const free = Array.from({ length: limits.maxConcurrentUsers }, (_, i) => {
      const a = active()[i];
      return a ? Math.max(0, (a.expiresAt - now()) / 1000) : 0;
    }).sort((a, b) => a - b);
    let eta = 0;
    for (let p = 0; p < position; p++) {
      eta = free.shift() ?? 0;
      free.push(eta + limits.sessionSeconds);
      free.sort((a, b) => a - b);
    }
    return Math.ceil(eta);
  }

  function statusOf(e) {
    const doc = {
      limits: { maxConcurrentUsers: limits.maxConcurrentUsers, sessionSeconds: limits.sessionSeconds, warningSeconds: limits.warningSeconds },
      queueLength: queue.length,
      state: e.state,
      ticket: e.ticket,
    };
    if (paused) doc.paused = true;
    if (e.state === 'queued') {
      const position = queue.indexOf(e) + 1;
      Object.assign(doc, { position, etaSeconds: etaFor(position), remainingSeconds: 0 });
    } else if (e.state === 'active') {
      Object.assign(doc, {
        confirmed: true, etaSeconds: 0, startedAt: iso(e.startedAt), expiresAt: iso(e.expiresAt),
        remainingSeconds: Math.max(0, Math.ceil((e.expiresAt - now()) / 1000)),
      });
    } else {
      Object.assign(doc, { reason: e.reason, remainingSeconds: 0 });
    }
    return doc;
  }

  function push(e, message) {
    for (const socket of e.sockets) if (socket.readyState === 1) socket.send(JSON.stringify(message));
  }

  function admitFromQueue() {
    while (!paused && queue.length && active().length < limits.maxConcurrentUsers) admit(queue.shift());
  }

  function admit(e) {
    e.state = 'active';
    e.startedAt = now();
    e.expiresAt = e.startedAt + limits.sessionSeconds * 1000;
    e.timer = setTimeout(() => end(e, 'expired'), limits.sessionSeconds * 1000);
    today.sessionsStarted++;
    log(`session: admitted id=${e.id}`);
  }

  // Every change: the waiting get their new places, the admitted their admission, the console all.
  function changed() {
    admitFromQueue();
    for (const e of entries.values()) if (e.state !== 'ended') push(e, { type: 'status', ...statusOf(e) });
    broadcastState();
  }

  function end(e, reason) {
    if (e.state === 'ended') return false;
    const wasActive = e.state === 'active';
    clearTimeout(e.timer);
    const index = queue.indexOf(e);
    if (index >= 0) queue.splice(index, 1);
    e.state = 'ended';
    e.reason = reason;
    if (wasActive) {
      today.sessionsCompleted++;
      today.secondsUsed += (now() - e.startedAt) / 1000;
      for (const callId of e.calls) hangUp(callId);
    }
    log(`session: ended (${reason}) id=${e.id}`);
    push(e, { type: 'ended', reason });
    for (const socket of e.sockets) socket.close(1000);
    byId.delete(e.id);
    changed();
    return true;
  }

  function hangUp(callId) {
    fetch(`${openaiBase}/v1/realtime/calls/${encodeURIComponent(callId)}/hangup`, {
      method: 'POST', headers: { Authorization: `Bearer ${openaiKey}` }, signal: AbortSignal.timeout(5000),
    }).then(r => log(`openai: hangup ${callId} answered ${r.status}`), error => log(`openai: hangup ${callId} failed: ${error.message}`));
  }

  // ---- the admin state document -----------------------------------------------------------------
  function adminState() {
    const sessions = active().sort((a, b) => a.startedAt - b.startedAt).map(e => ({
      id: e.id, startedAt: iso(e.startedAt), expiresAt: iso(e.expiresAt),
      remainingSeconds: Math.max(0, Math.ceil((e.expiresAt - now()) / 1000)),
      mode: 'token', callConnected: e.calls.length > 0, clientAddress: mask(e.address), instance: INSTANCE,
      costUsd: scenery.costPerSessionUsd ?? null,
    }));
    const minutesUsed = (today.secondsUsed + active().reduce((s, e) => s + (now() - e.startedAt) / 1000, 0)) / 60;
    return {
      instance: INSTANCE,
      storeKind: scenery.storeKind ?? 'memory',
      storeHealthy: scenery.storeHealthy ?? true,
      paused,
      limits: { maxConcurrentUsers: limits.maxConcurrentUsers, sessionDurationMinutes: limits.sessionSeconds / 60, maxQueueLength: limits.maxQueueLength },
      sessions,
      queue: queue.map((e, i) => ({
        id: e.id, position: i + 1, waitingSeconds: Math.floor((now() - e.joinedAt) / 1000),
        connected: e.sockets.size > 0, clientAddress: mask(e.address),
      })),
      today: {
        sessionsStarted: today.sessionsStarted,
        sessionsCompleted: today.sessionsCompleted,
        minutesUsed: Math.round(minutesUsed * 100) / 100,
        estimatedCostUsd: Math.round(minutesUsed * 0.06 * 100) / 100,
        realCostUsd: scenery.realCostUsd ?? null,
        budget: scenery.budget ?? null,
      },
      upstream: { lastError: null, latencyMs: null, quotaPausedUntil: null, ...scenery.upstream },
      instances: scenery.instances ?? [{ id: INSTANCE, healthy: true, lastSeenSeconds: 0, activeSessions: active().length, connections: openConnections }],
    };
  }

  function broadcastState() {
    if (!adminSockets.size) return;
    const message = JSON.stringify({ type: 'state', ...adminState() });
    for (const { socket } of adminSockets) if (socket.readyState === 1) socket.send(message);
  }
  // At least once a second while sessions run (the time left, the waits).
  const ticker = setInterval(() => { if (active().length || queue.length) broadcastState(); }, 1000);

  // ---- admin authentication ---------------------------------------------------------------------
  function cookieOf(req, name) {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === name) return v.join('=');
    }
    return null;
  }

  const sameOrigin = req => {
    const origin = req.headers.origin;
    if (!origin) return null;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  };

  function throttled(address) {
    const recent = (failures.get(address) ?? []).filter(t => now() - t < THROTTLE_WINDOW_MS);
    failures.set(address, recent);
    return recent.length >= THROTTLE_FAILURES ? Math.ceil((recent[0] + THROTTLE_WINDOW_MS - now()) / 1000) : 0;
  }

  // -> {login, by} or {error: [status, code, message, headers]}
  function authenticate(req, { changesState }) {
    if (!token) return { error: [403, 'admin_disabled', 'The admin API is off: set ADMIN_TOKEN on the server.'] };
    const address = req.socket.remoteAddress;
    const header = req.headers['x-admin-token'];
    const origin = sameOrigin(req);
    if (header !== undefined) {
      if (origin === false) return { error: [403, 'bad_origin', 'This page\'s origin may not use the admin API.'] };
      const wait = throttled(address);
      if (wait) return { error: [429, 'too_many_attempts', 'Too many wrong tokens: wait a minute.', { 'Retry-After': String(wait) }] };
      if (!safeEqual(header, token)) {
        failures.get(address).push(now());
        return { error: [401, 'unauthorized', 'Sign in with the admin token.'] };
      }
      return { login: '-', by: 'header' };
    }
    if (changesState && origin !== true) return { error: [403, 'bad_origin', 'This page\'s origin may not use the admin API.'] };
    const id = cookieOf(req, 'vb_admin');
    const login = id && logins.get(id);
    if (!login || login.expiresAt <= now()) return { error: [401, 'unauthorized', 'Sign in with the admin token.'] };
    renew(id);
    return { login: id, by: 'cookie', renewed: true };
  }

  const safeEqual = (a, b) => {
    const x = crypto.createHash('sha256').update(a).digest();
    const y = crypto.createHash('sha256').update(b).digest();
    return crypto.timingSafeEqual(x, y);
  };

  function renew(id) {
    const login = logins.get(id);
    clearTimeout(login.timer);
    login.expiresAt = now() + loginSeconds * 1000;
    login.timer = setTimeout(() => endLogin(id, 'expired'), loginSeconds * 1000);
  }

  function endLogin(id, why) {
    const login = logins.get(id);
    if (!login) return;
    clearTimeout(login.timer);
    logins.delete(id);
    for (const entry of [...adminSockets]) {
      if (entry.login === id) {
        entry.socket.close(4401, why === 'expired' ? 'login expired' : 'logged out');
        adminSockets.delete(entry);
      }
    }
    log(`admin: login ${why} login=${id.slice(0, 6)}`);
  }

  const cookie = (id, maxAge) => `vb_admin=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`;

  // ---- HTTP ----------------------------------------------------------------------------------------
  let openConnections = 0;
  const server = http.createServer((req, res) => {
    handle(req, res).catch(error => {
      log(`double: ${req.method} ${req.url} failed: ${error.stack}`);
      if (!res.headersSent) send(res, 500, { error: { code: 'internal', message: 'The double failed.' } });
    });
  });
  server.on('connection', socket => {
    openConnections++;
    socket.on('close', () => { openConnections--; });
  });

  function send(res, status, body, headers = {}) {
    res.writeHead(status, {
      'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Security-Policy': csp,
      'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', ...headers,
    });
    res.end(JSON.stringify(body));
  }
  const error = (res, status, code, message, headers) => send(res, status, { error: { code, message } }, headers);

  const isJson = req => /^application\/json\b/.test(req.headers['content-type'] ?? '');

  async function readJson(req) {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (!body) return {};
    try {
      return JSON.parse(body);
    } catch {
      return undefined;
    }
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://double');
    log(`http: ${req.method} ${url.pathname}${url.search}`);
    if (url.pathname === '/api/session') return sessionApi(req, res, url.searchParams.get('action'));
    if (url.pathname === '/api/health') return send(res, 200, { status: 'ok', version: 'admin-double', uptimeSeconds: 1 });
    if (url.pathname.startsWith('/api/admin/')) return adminApi(req, res, url.pathname.slice('/api/admin/'.length));
    if (url.pathname.startsWith('/api/')) return error(res, 404, 'not_found', 'No such API endpoint; see docs/API.md.');
    return serveStatic(req, res, url.pathname);
  }

  function serveStatic(req, res, pathname) {
    let rel = decodeURIComponent(pathname).replace(/^\/+/, '');
    if (rel === '' || rel.endsWith('/')) rel += 'index.html';
    const file = path.join(STATIC_DIR, rel);
    if (!file.startsWith(STATIC_DIR + path.sep) || rel.split('/').some(s => s.startsWith('.')) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      return error(res, 404, 'not_found', 'No such page or file.');
    }
    res.writeHead(200, {
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache',
      'Content-Security-Policy': csp, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY', 'Cross-Origin-Opener-Policy': 'same-origin',
      'Permissions-Policy': 'microphone=(self), camera=(), geolocation=(), payment=(), usb=()',
    });
    res.end(req.method === 'HEAD' ? undefined : fs.readFileSync(file));
  }

  // ---- visitor API (the part the visitor page uses) ---------------------------------------------
  async function sessionApi(req, res, action) {
    const ticket = req.headers['x-session-ticket'] ?? cookieOf(req, 'vb_ticket');
    const e = ticket && entries.get(ticket);
    if (action === 'stats') {
      return send(res, 200, {
        activeSessions: active().length, maxConcurrentUsers: limits.maxConcurrentUsers, queueLength: queue.length,
        maxQueueLength: limits.maxQueueLength, sessionDurationMinutes: limits.sessionSeconds / 60, paused,
        sessions: active().map(a => ({ startedAt: iso(a.startedAt), remainingSeconds: Math.ceil((a.expiresAt - now()) / 1000) })),
        today: { sessionsStarted: today.sessionsStarted, sessionsCompleted: today.sessionsCompleted, minutesUsed: 0, estimatedCostUsd: 0 },
        uptimeSeconds: 1,
      });
    }
    if (action === 'join') {
      if (e && e.state !== 'ended') return send(res, 200, statusOf(e));
      if (queue.length >= limits.maxQueueLength) return error(res, 503, 'queue_full', 'The queue is full.', { 'Retry-After': '60' });
      const fresh = {
        ticket: crypto.randomBytes(16).toString('base64url'), id: String(nextId++), state: 'queued',
        joinedAt: now(), address: req.socket.remoteAddress, sockets: new Set(), calls: [],
      };
      entries.set(fresh.ticket, fresh);
      byId.set(fresh.id, fresh);
      queue.push(fresh);
      log(`session: joined id=${fresh.id}`);
      changed();
      return send(res, 200, statusOf(fresh), { 'Set-Cookie': `vb_ticket=${fresh.ticket}; Path=/; HttpOnly; SameSite=Strict` });
    }
    if (!ticket) return error(res, 400, 'missing_ticket', 'Join first.');
    if (!e) return error(res, 404, 'unknown_ticket', 'This ticket is unknown.');
    if (action === 'status' || action === 'heartbeat') return send(res, 200, statusOf(e));
    if (action === 'leave') {
      end(e, 'left');
      return send(res, 200, { state: 'ended', reason: 'left' });
    }
    if (action === 'token') {
      if (e.state !== 'active') return error(res, 409, 'not_active', 'You do not hold a slot now.');
      const answer = await fetch(`${openaiBase}/v1/realtime/client_secrets`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${openaiKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          expires_after: { anchor: 'created_at', seconds: Math.max(10, Math.ceil((e.expiresAt - now()) / 1000)) },
          session: { type: 'realtime', model: 'gpt-realtime' },
        }),
        signal: AbortSignal.timeout(5000),
      });
      if (!answer.ok) return error(res, 502, 'upstream_error', `OpenAI answered ${answer.status}.`);
      const secret = await answer.json();
      return send(res, 200, {
        value: secret.value, expiresAt: iso(secret.expires_at * 1000), model: 'gpt-realtime',
        callsUrl: `${openaiBase}/v1/realtime/calls`,
      });
    }
    if (action === 'call') {
      const body = await readJson(req);
      if (!body?.callId) return error(res, 400, 'bad_call_id', 'Send {"callId":"rtc_..."}.');
      if (e.state !== 'active') {
        hangUp(body.callId);
        return error(res, 409, 'not_active', 'You do not hold a slot now.');
      }
      e.calls.push(body.callId);
      changed();
      return send(res, 200, { ok: true });
    }
    return error(res, 400, 'unknown_action', 'Unknown action.');
  }

  // ---- admin API --------------------------------------------------------------------------------
  async function adminApi(req, res, route) {
    const address = req.socket.remoteAddress;
    const audit = (auth, what) => log(`admin: ${what} by=${auth.by} login=${auth.login.slice(0, 6)} from=${address}`);
    const method = req.method;
    const post = (allowed = 'POST') => {
      if (method === allowed) return true;
      error(res, 405, 'method_not_allowed', `Use ${allowed}.`, { Allow: allowed });
      return false;
    };

    if (route === 'login' && method === 'GET') {
      if (!token) return error(res, 403, 'admin_disabled', 'The admin API is off: set ADMIN_TOKEN on the server.');
      const login = logins.get(cookieOf(req, 'vb_admin') ?? '');
      if (!login || login.expiresAt <= now()) return send(res, 200, { signedIn: false });
      return send(res, 200, { signedIn: true, expiresInSeconds: Math.ceil((login.expiresAt - now()) / 1000) });
    }
    if (route === 'login') {
      if (!post()) return;
      if (!token) return error(res, 403, 'admin_disabled', 'The admin API is off: set ADMIN_TOKEN on the server.');
      if (sameOrigin(req) !== true) return error(res, 403, 'bad_origin', 'Sign in from the console\'s own page.');
      const wait = throttled(address);
      if (wait) return error(res, 429, 'too_many_attempts', 'Too many wrong tokens: wait a minute.', { 'Retry-After': String(wait) });
      if (!isJson(req)) return error(res, 415, 'unsupported_media_type', 'Send JSON (Content-Type: application/json).');
      const body = await readJson(req);
      if (typeof body?.token !== 'string') return error(res, 400, 'bad_request', 'Send {"token":"..."}.');
      if (!safeEqual(body.token, token)) {
        failures.get(address).push(now());
        log(`admin: login_failed from=${address}`);
        return error(res, 401, 'unauthorized', 'Wrong admin token.');
      }
      const id = crypto.randomBytes(16).toString('base64url');
      logins.set(id, {});
      renew(id);
      log(`admin: login by=cookie login=${id.slice(0, 6)} from=${address}`);
      return send(res, 200, { ok: true, expiresInSeconds: loginSeconds }, { 'Set-Cookie': cookie(id, loginSeconds) });
    }

    const known = /^(logout|state|ws|end-all|pause|resume|limits|sessions\/[^/]+\/end|queue\/[^/]+\/remove)$/.test(route);
    if (!known) return error(res, 404, 'not_found', 'No such admin endpoint; see docs/API.md.');
    if (route === 'ws') return error(res, 426, 'upgrade_required', 'Open it as a WebSocket.', { Upgrade: 'websocket' });
    const auth = authenticate(req, { changesState: method !== 'GET' && method !== 'HEAD' });
    if (auth.error) return error(res, ...auth.error);
    const headers = auth.renewed ? { 'Set-Cookie': cookie(auth.login, loginSeconds) } : {};
    const reply = (status, body) => send(res, status, body, headers);

    if (route === 'state') {
      if (method !== 'GET') return error(res, 405, 'method_not_allowed', 'Use GET.', { Allow: 'GET' });
      return reply(200, adminState());
    }
    if (route === 'logout') {
      if (!post()) return;
      audit(auth, 'logout');
      if (auth.by === 'cookie') endLogin(auth.login, 'logged out');
      return send(res, 200, { ok: true }, { 'Set-Cookie': cookie('', 0) });
    }
    let match;
    if ((match = /^sessions\/([^/]+)\/end$/.exec(route))) {
      if (!post()) return;
      const e = byId.get(decodeURIComponent(match[1]));
      if (!e || e.state !== 'active') return error(res, 404, 'unknown_session', 'No active session has this id.', headers);
      audit(auth, `end_session id=${e.id}`);
      end(e, 'forced');
      return reply(200, { ended: true });
    }
    if ((match = /^queue\/([^/]+)\/remove$/.exec(route))) {
      if (!post()) return;
      const e = byId.get(decodeURIComponent(match[1]));
      if (!e || e.state !== 'queued') return error(res, 404, 'unknown_entry', 'Nobody waits with this id.', headers);
      audit(auth, `remove id=${e.id}`);
      end(e, 'removed');
      return reply(200, { removed: true });
    }
    if (route === 'end-all') {
      if (!post()) return;
      audit(auth, 'end_all');
      let ended = 0;
      for (const e of active()) if (end(e, 'forced')) ended++;
      return reply(200, { endedSessions: ended });
    }
    if (route === 'pause' || route === 'resume') {
      if (!post()) return;
      audit(auth, route);
      paused = route === 'pause';
      changed();
      return reply(200, { paused });
    }
    if (route === 'limits') {
      if (!post('PUT')) return;
      if (!isJson(req)) return error(res, 415, 'unsupported_media_type', 'Send JSON (Content-Type: application/json).', headers);
      const body = await readJson(req);
      if (!body || typeof body !== 'object' || Array.isArray(body)) return error(res, 400, 'bad_request', 'Send a JSON object.', headers);
      const users = body.maxConcurrentUsers;
      const minutes = body.sessionDurationMinutes;
      if (users !== undefined && !(Number.isInteger(users) && users >= 1 && users <= 10000)) {
        return error(res, 400, 'bad_limits', 'maxConcurrentUsers must be an integer from 1 to 10000.', headers);
      }
      if (minutes !== undefined && !(typeof minutes === 'number' && minutes > 0 && minutes <= 1440)) {
        return error(res, 400, 'bad_limits', 'sessionDurationMinutes must be a number above 0, at most 1440.', headers);
      }
      if (users !== undefined) limits.maxConcurrentUsers = users;
      if (minutes !== undefined) limits.sessionSeconds = Math.max(1, Math.round(minutes * 60));
      audit(auth, `limits maxConcurrentUsers=${limits.maxConcurrentUsers} sessionDurationMinutes=${limits.sessionSeconds / 60}`);
      changed();
      return reply(200, { limits: adminState().limits });
    }
    return error(res, 404, 'not_found', 'No such admin endpoint.');
  }

  // ---- WebSockets ---------------------------------------------------------------------------------
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://double');
    const refuse = (status, code, message) => {
      const body = JSON.stringify({ error: { code, message } });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      log(`ws: refused ${url.pathname} ${status} ${code}`);
    };
    if (url.pathname === '/api/admin/ws') {
      if (sameOrigin(req) === false || (sameOrigin(req) === null && req.headers['x-admin-token'] === undefined)) {
        return refuse(403, 'bad_origin', 'This page\'s origin may not open the admin channel.');
      }
      const auth = authenticate(req, { changesState: false });
      if (auth.error) return refuse(auth.error[0], auth.error[1], auth.error[2]);
      return wss.handleUpgrade(req, socket, head, ws => {
        const entry = { socket: ws, login: auth.login };
        adminSockets.add(entry);
        ws.on('close', () => adminSockets.delete(entry));
        ws.send(JSON.stringify({ type: 'state', ...adminState() }));
        log('ws: admin channel opened');
      });
    }
    if (url.pathname === '/api/session/ws') {
      if (sameOrigin(req) === false) return refuse(403, 'bad_origin', 'This page\'s origin may not open the live channel.');
      const ticket = url.searchParams.get('ticket') ?? cookieOf(req, 'vb_ticket');
      return wss.handleUpgrade(req, socket, head, ws => {
        const e = ticket && entries.get(ticket);
        if (!e) {
          ws.send(JSON.stringify({ type: 'error', error: { code: 'unknown_ticket', message: 'This ticket is unknown.' } }));
          ws.close(1000);
          return;
        }
        e.sockets.add(ws);
        ws.on('close', () => {
          e.sockets.delete(ws);
          broadcastState();
        });
        ws.on('message', () => {});
        if (e.state === 'ended') {
          ws.send(JSON.stringify({ type: 'ended', reason: e.reason }));
          ws.close(1000);
          return;
        }
        ws.send(JSON.stringify({ type: 'status', ...statusOf(e) }));
        broadcastState();
      });
    }
    return refuse(404, 'not_found', 'WebSocket is only served at /api/session/ws and /api/admin/ws.');
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  const url = `http://127.0.0.1:${port}`;
  log('voice-broker ADMIN API TEST DOUBLE (tests/e2e/lib/admin-double.mjs), not the real server');
  log(`listening on ${url}`);

  function waitForLog(pattern, timeoutMs = 10_000, { count = 1 } = {}) {
    const matching = () => lines.filter(line => pattern.test(line));
    if (matching().length >= count) return Promise.resolve(matching()[count - 1]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`the admin double did not log ${pattern} (${count}x) within ${timeoutMs} ms; its log:\n${tail()}`));
      }, timeoutMs);
      const listener = () => {
        const found = matching();
        if (found.length < count) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(found[count - 1]);
      };
      listeners.add(listener);
    });
  }
  const tail = (n = 60) => lines.slice(-n).join('\n');

  let stopped = null;
  function stop() {
    stopped ??= (async () => {
      clearInterval(ticker);
      for (const e of entries.values()) clearTimeout(e.timer);
      for (const login of logins.values()) clearTimeout(login.timer);
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections?.();
      await new Promise(resolve => server.close(resolve));
    })();
    return stopped;
  }

  return {
    url, port, lines, tail, waitForLog, stop, crash: stop, isDouble: true,
    // What the cost-guard and multi-instance issues will make real, set by hand here.
    scenery(extra) {
      scenery = { ...scenery, ...extra };
      broadcastState();
    },
  };
}
