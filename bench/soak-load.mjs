// bench/soak.sh's load: a fixed number of loops, each repeating one kind of client until the
// deadline, against one server on loopback.  Nothing here measures speed: the loops pause between
// rounds so the load stays bounded, and soak.sh watches what the server holds meanwhile.
//
//   node soak-load.mjs --url http://127.0.0.1:P --seconds S --mode vb|nginx [--KIND N ...]
//
// Kinds (N loops of each; --mode nginx has no visitors, minters or abandoned ones: nginx serves
// the page only):
//   visitors   join, open the live WebSocket, poll the status a few times with heartbeats over the
//              socket (mint one key, against the fake OpenAI, if admitted), then leave and close
//              (one round in five: no leave, the socket cut with a reset instead, so the server
//              must notice a visitor who vanished)
//   minters    join, send a heartbeat (POST ?action=heartbeat, which answers the status) every
//              500 ms until admitted (at most 30 s), mint 1 to 3 keys (the most one session may
//              have), then leave
//   abandoned  join, then nothing at all: no live channel, no heartbeat, no leave; the server must
//              expire the place after HEARTBEAT_TIMEOUT_SECONDS
//   static     keep-alive GET / (the page), and /api/health on voice-broker
//   slowloris  a request head sent one field a second and never finished, until the server's
//              request timeout closes it; then again
//   oversized  one 32 KiB header field (both servers allow 8 KiB): expects 431 or 400 and a close
//   garbage    a WebSocket upgrade (with a live ticket on voice-broker), then random bytes that are
//              no valid frame: expects the server to close
//   abrupt     a connection reset at once, after half a head, or right after a whole request
//   smuggle    a Transfer-Encoding the server cannot read, a request behind it: expects one 4xx
//              answer and a close (never two answers)
// Source addresses rotate over 127.0.0.2-9, so a long run never runs out of ports.  Prints one
// JSON line: rounds per kind, and "surprises" (answers other than the expected ones) per kind.
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const base = new URL(args.url);
const host = base.hostname;
const port = Number(base.port);
const vb = args.mode !== 'nginx';
const deadline = Date.now() + Number(args.seconds) * 1000;
const count = (kind, fallback) => Number(args[kind] ?? fallback);
const loops = {
  visitors: vb ? count('visitors', 20) : 0,
  minters: vb ? count('minters', 4) : 0,
  abandoned: vb ? count('abandoned', 2) : 0,
  static: count('static', 4),
  slowloris: count('slowloris', 20),
  oversized: count('oversized', 2),
  garbage: count('garbage', 2),
  abrupt: count('abrupt', 2),
  smuggle: count('smuggle', 1),
};

let addressTurn = 0;
const sourceAddress = () => `127.0.0.${2 + (addressTurn++ % 8)}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const running = () => Date.now() < deadline;
const rounds = Object.fromEntries(Object.keys(loops).map((k) => [k, 0]));
const surprises = Object.fromEntries(Object.keys(loops).map((k) => [k, 0]));
const examples = {}; // the first surprise of each kind, for the log
const surprise = (kind, what) => {
  surprises[kind]++;
  examples[kind] ??= String(what).slice(0, 200);
};
const open = new Set(); // every socket and WebSocket still open, closed at the end

const agents = Array.from({ length: 8 }, (_, i) => new http.Agent({ keepAlive: true, maxSockets: 4, localAddress: `127.0.0.${2 + i}` }));
function request(method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, headers, agent: agents[addressTurn++ % agents.length] }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// A raw connection: resolves with everything received once the server closes it (or at `limit`
// ms, then it is destroyed and `timedOut` set).  `onData` sees each chunk.
function raw(onConnect, { limit = 20_000, onData } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, localAddress: sourceAddress() });
    open.add(socket);
    let received = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, limit);
    socket.on('connect', () => onConnect(socket));
    socket.on('data', (d) => {
      received += d.toString('latin1');
      onData?.(socket, received);
    });
    socket.on('error', () => {}); // a reset while we write: the close below tells the rest
    socket.on('close', () => {
      clearTimeout(timer);
      open.delete(socket);
      resolve({ received, timedOut });
    });
  });
}

const statusOf = (text) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
const answers = (text) => (text.match(/HTTP\/1\.[01] \d{3}/g) ?? []).length;

// The join answer (null when the queue is full, a legitimate answer under load).
async function joinAnswer() {
  const r = await request('POST', '/api/session?action=join');
  if (r.status === 503) return null;
  if (r.status !== 200) throw new Error(`join: ${r.status} ${r.body}`);
  return JSON.parse(r.body);
}
const join = async () => (await joinAnswer())?.ticket ?? null;

const keysMinted = { visitors: 0, minters: 0 };
// One key for a slot holder; the broker calls the fake OpenAI's POST /v1/realtime/client_secrets.
async function mint(kind, ticket) {
  const r = await request('POST', '/api/session?action=token', { 'X-Session-Ticket': ticket });
  if (r.status === 200 && JSON.parse(r.body).value?.startsWith('ek_')) keysMinted[kind]++;
  else surprise(kind, `token: ${r.status} ${r.body}`);
}
const leave = (ticket) => request('POST', '/api/session?action=leave', { 'X-Session-Ticket': ticket });

async function visitor() {
  const ticket = await join();
  if (!ticket) return sleep(500);
  const ws = new WebSocket(`ws://${host}:${port}/api/session/ws?ticket=${ticket}`, { localAddress: sourceAddress(), perMessageDeflate: false });
  open.add(ws);
  ws.on('close', () => open.delete(ws));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no status on the live channel within 10 s')), 10_000);
    ws.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('close', () => {
      clearTimeout(timer);
      reject(new Error('live channel closed before its first status'));
    });
  });
  let minted = false;
  for (let i = 0; i < 3 && running(); i++) {
    const r = await request('GET', '/api/session?action=status', { 'X-Session-Ticket': ticket });
    if (r.status !== 200) surprise('visitors', `status: ${r.status} ${r.body}`);
    else if (!minted && JSON.parse(r.body).state === 'active') {
      minted = true;
      await mint('visitors', ticket);
    }
    if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"heartbeat"}');
    await sleep(100 + Math.random() * 200);
  }
  if (Math.random() < 0.2) {
    ws._socket?.resetAndDestroy?.(); // vanish: no leave, a reset
    ws.terminate();
    return;
  }
  const left = await leave(ticket);
  if (left.status !== 200) surprise('visitors', `leave: ${left.status} ${left.body}`);
  ws.close();
}

async function minter() {
  const joined = await joinAnswer();
  if (!joined) return sleep(500);
  const ticket = joined.ticket;
  let state = joined.state;
  for (const until = Date.now() + 30_000; state === 'queued' && running() && Date.now() < until; ) {
    await sleep(500);
    // A status poll is no sign of life: without a heartbeat the server rightly expires the place.
    const r = await request('POST', '/api/session?action=heartbeat', { 'X-Session-Ticket': ticket });
    if (r.status !== 200) {
      surprise('minters', `heartbeat: ${r.status} ${r.body}`);
      break;
    }
    state = JSON.parse(r.body).state;
  }
  if (state === 'active') {
    const keys = 1 + Math.floor(Math.random() * 3);
    for (let i = 0; i < keys && running(); i++) await mint('minters', ticket);
  }
  const left = await leave(ticket);
  if (left.status !== 200) surprise('minters', `leave: ${left.status} ${left.body}`);
  await sleep(100);
}

async function abandoned() {
  await join(); // and never a word again
  await sleep(1000);
}

async function staticPage() {
  for (const path of vb ? ['/', '/api/health'] : ['/']) {
    const r = await request('GET', path);
    if (r.status !== 200) surprise('static', `${path}: ${r.status}`);
  }
  await sleep(20);
}

async function slowloris() {
  let timer;
  const out = await raw(
    (s) => {
      s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n`);
      let n = 0;
      timer = setInterval(() => (running() ? s.write(`X-Slow-${n++}: a\r\n`) : s.destroy()), 1000);
    },
    { limit: 120_000 },
  );
  clearInterval(timer);
  if (out.timedOut) surprise('slowloris', 'kept open for 120 s');
}

async function oversized() {
  const out = await raw((s) => s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`), { limit: 10_000 });
  const status = statusOf(out.received);
  if (out.timedOut || (status !== 431 && status !== 400 && !(status === 0 && out.received === ''))) {
    surprise('oversized', out.timedOut ? 'not closed within 10 s' : out.received.split('\r\n')[0]);
  }
  await sleep(50);
}

async function garbage() {
  const ticket = vb ? await join() : 'none';
  if (!ticket) return sleep(500);
  const path = vb ? `/api/session/ws?ticket=${ticket}` : '/';
  let sent = false;
  const out = await raw(
    (s) =>
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    {
      limit: 10_000,
      onData: (s, text) => {
        if (sent || !text.includes('\r\n\r\n')) return;
        sent = true;
        // Unmasked frames with reserved bits and opcodes, lengths that lie: never a valid frame.
        s.write(Buffer.concat([Buffer.from([0x7f, 0xff]), crypto.randomBytes(200 + Math.floor(Math.random() * 800))]));
      },
    },
  );
  if (out.timedOut) surprise('garbage', 'not closed within 10 s after garbage frames');
  if (vb && statusOf(out.received) !== 101) surprise('garbage', out.received.split('\r\n')[0]);
  if (vb) await request('POST', '/api/session?action=leave', { 'X-Session-Ticket': ticket });
  await sleep(50);
}

async function abrupt() {
  const variant = rounds.abrupt % 3;
  await raw(
    (s) => {
      if (variant === 1) s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nX-Half`);
      if (variant === 2) s.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      s.resetAndDestroy();
    },
    { limit: 5_000 },
  );
  await sleep(20);
}

async function smuggle() {
  const out = await raw(
    (s) =>
      s.write(
        `POST / HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: gzip;q=1, chunked\r\n\r\n` + `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      ),
    { limit: 10_000 },
  );
  const status = statusOf(out.received);
  if (out.timedOut || status < 400 || status > 599 || answers(out.received) !== 1) {
    surprise('smuggle', out.timedOut ? 'not closed within 10 s' : out.received.split('\r\n')[0] + ` (${answers(out.received)} answers)`);
  }
  await sleep(100);
}

const kinds = { visitors: visitor, minters: minter, abandoned, static: staticPage, slowloris, oversized, garbage, abrupt, smuggle };
const errors = Object.fromEntries(Object.keys(loops).map((k) => [k, 0]));
await Promise.all(
  Object.entries(loops).flatMap(([kind, n]) =>
    Array.from({ length: n }, async (_, i) => {
      await sleep((i * 1000) / Math.max(n, 1)); // spread the loops' starts over a second
      while (running()) {
        try {
          await kinds[kind]();
          rounds[kind]++;
        } catch (e) {
          errors[kind]++;
          examples[kind] ??= e.message.slice(0, 200);
          await sleep(200);
        }
      }
    }),
  ),
);
for (const s of open) (s.terminate ?? s.destroy).call(s);
for (const a of agents) a.destroy();
console.log(JSON.stringify({ mode: vb ? 'vb' : 'nginx', loops, rounds, keysMinted, surprises, errors, examples }));
