// Figure 6's Node anchor: the same queue protocol as voice-broker, written the obvious way with
// Node's http(s) and the `ws` package.  POST /api/session?action=join hands out a ticket (the
// first joiner holds the one slot, the rest wait in a FIFO); the WebSocket at
// /api/session/ws?ticket=T gets a status document on connect; POST ?action=leave with
// X-Session-Ticket frees the slot, and every waiting client is sent its new status, one
// JSON.stringify per client, as voice-broker does.
//
//   node node-ws-server.mjs --port P [--cert F --key F]     (prints {"listening":PORT})
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer } from 'ws';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const SESSION_SECONDS = 300;
const limits = { maxConcurrentUsers: 1, sessionSeconds: SESSION_SECONDS, warningSeconds: [180, 120, 60] };
const visitors = new Map(); // ticket -> { ws }
let active = null; // the ticket holding the slot
let queue = []; // waiting tickets, FIFO

function statusOf(ticket) {
  if (ticket === active) {
    return { confirmed: true, etaSeconds: 0, limits, queueLength: queue.length, remainingSeconds: SESSION_SECONDS, state: 'active', ticket };
  }
  const position = queue.indexOf(ticket) + 1;
  return { etaSeconds: position * SESSION_SECONDS, limits, position, queueLength: queue.length, remainingSeconds: 0, state: 'queued', ticket };
}

function push(ticket, doc) {
  const ws = visitors.get(ticket)?.ws;
  if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ ...doc, type: 'status' }));
}

function json(res, status, doc) {
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const action = url.searchParams.get('action');
  req.resume();
  if (url.pathname !== '/api/session' || req.method !== 'POST') return json(res, 404, { error: { code: 'not_found' } });
  if (action === 'join') {
    const ticket = crypto.randomBytes(16).toString('base64url').slice(0, 22);
    visitors.set(ticket, { ws: null });
    if (active === null) active = ticket;
    else queue.push(ticket);
    return json(res, 200, statusOf(ticket));
  }
  if (action === 'leave') {
    const ticket = req.headers['x-session-ticket'];
    visitors.get(ticket)?.ws?.close(1000);
    visitors.delete(ticket);
    if (ticket === active) {
      active = queue.shift() ?? null;
      if (active) push(active, statusOf(active));
    } else {
      queue = queue.filter((t) => t !== ticket);
    }
    // Everyone still waiting moved up one place: each gets its own document.
    queue.forEach((t, i) => push(t, { etaSeconds: (i + 1) * SESSION_SECONDS, limits, position: i + 1, queueLength: queue.length, remainingSeconds: 0, state: 'queued', ticket: t }));
    return json(res, 200, { state: 'ended', reason: 'left' });
  }
  return json(res, 400, { error: { code: 'unknown_action' } });
}

const server = args.cert
  ? https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) }, handle)
  : http.createServer(handle);
server.keepAliveTimeout = 60_000;
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://localhost');
  const ticket = url.searchParams.get('ticket');
  if (url.pathname !== '/api/session/ws' || !visitors.has(ticket)) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => {
    visitors.get(ticket).ws = ws;
    ws.on('close', () => {
      const v = visitors.get(ticket);
      if (v?.ws === ws) v.ws = null;
    });
    ws.on('error', () => {});
    push(ticket, statusOf(ticket));
  });
});
server.listen(Number(args.port ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ listening: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
