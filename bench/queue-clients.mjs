// Figure 6's load client: N visitors waiting in the queue, each with a live WebSocket, and the
// time it takes for all of them to learn their new place when the slot frees.
//
//   node queue-clients.mjs --url http(s)://127.0.0.1:P --clients N --broadcasts B --pid SERVER_PID
//                          [--mode queue|floor]
//   --url may list several instances (comma-separated, sharing one Redis store): visitor i joins,
//   opens its WebSocket and leaves through instance i mod n; --pid may list several pids (their
//   memory and CPU are summed).
//   --redis-pid P [--idle-seconds S]: also Redis's CPU (schedstat) per join, per slot release, and
//   while the N visitors wait with nothing happening for S seconds (default 10): what holding a
//   queue costs Redis (each instance's periodic touch of its live channels).
//
// queue mode (voice-broker, the Node ws server): N POST ?action=join (50 at a time, keep-alive),
// made by this process (--joiner node, the default) or by wrk (--joiner wrk: bench/join.lua, one
// URL only; the load generator of figures 1-4, so that the server is the limit: this process
// spends 3-4 times a fast server's CPU on each join, and with one core for the clients it would
// measure itself), then N WebSockets to /api/session/ws?ticket=T (200 handshakes at a time), each waiting for its
// first status.  Then B times: the slot holder leaves (POST ?action=leave), and the clock runs
// from sending that request until the last remaining client has received a status whose
// position is one less than before (the new slot holder: state "active").
// floor mode (floor.c): no joins; the trigger is any plain HTTP request; every client must
// receive one frame.
// Memory: the server's VmRSS before the first join and after the last WebSocket is open.
// Source addresses rotate over 127.0.0.2-9 so that repeated runs never run out of ports.
// Prints one JSON line.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const bases = args.url.split(',').map((u) => new URL(u));
const baseOf = (i) => bases[i % bases.length];
const tls = bases[0].protocol === 'https:';
const N = Number(args.clients);
const B = Number(args.broadcasts ?? 3);
const pids = String(args.pid).split(',').map(Number);
const floor = args.mode === 'floor';
const joiner = args.joiner ?? 'node';
if (joiner !== 'node' && joiner !== 'wrk') throw new Error(`--joiner is node or wrk, not ${joiner}`);
if (joiner === 'wrk' && bases.length > 1) throw new Error('--joiner wrk takes one URL');
const lib = tls ? https : http;
const agents = bases.map(() => new lib.Agent({ keepAlive: true, maxSockets: 50, rejectUnauthorized: false }));
const sourceAddress = (i) => `127.0.0.${2 + (i % 8)}`;
const now = () => process.hrtime.bigint();
const ms = (a, b) => Number(b - a) / 1e6;

const rssKb = () => pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]), 0);
// CPU of every thread of the server in ns (schedstat: finer than utime+stime's 10 ms ticks,
// which matters for a broadcast that takes a few milliseconds).
const redisPid = Number(args['redis-pid'] ?? 0);
const idleSeconds = Number(args['idle-seconds'] ?? 10);
const schedNs = (pid) =>
  fs.readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]), 0);
const redisNs = () => (redisPid ? schedNs(redisPid) : 0);
const cpuNs = () =>
  pids.reduce(
    (total, pid) =>
      total + fs.readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]), 0),
    0,
  );

function post(i, path, headers = {}) {
  const base = baseOf(i);
  const agent = agents[i % bases.length];
  return new Promise((resolve, reject) => {
    const req = lib.request({ host: base.hostname, port: base.port, method: 'POST', path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// The N joins by wrk (bench/join.lua): their tickets in answer order, and wrk's own wall time from
// the first join sent to the last answered.  wrk runs until its -d or SIGINT: it is interrupted as
// soon as the tickets file appears.
async function joinWithWrk() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-joins-'));
  const file = path.join(dir, 'tickets');
  const script = new URL('./join.lua', import.meta.url).pathname;
  const child = spawn('wrk', ['-t1', '-c50', '-d120s', '-s', script, bases[0].href], {
    env: { ...process.env, JOINS: String(N), TICKETS_FILE: file },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const deadline = Date.now() + 120_000;
  try {
    while (!fs.existsSync(file)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`wrk joins: no tickets (${stderr.slice(0, 300)})`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // wrk's CPU so far (utime + stime, in clock ticks of 10 ms): the client's cost of the joins.
    const fields = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const cpuUs = (Number(fields[11]) + Number(fields[12])) * 10_000;
    child.kill('SIGINT');
    await exited;
    const [head, ...tickets] = fs.readFileSync(file, 'utf8').trim().split('\n');
    const [seconds, failed] = head.split(' ').map(Number);
    if (failed > 0 || tickets.length !== N) throw new Error(`wrk joins: ${failed} failed, ${tickets.length} of ${N} tickets (${stderr.slice(0, 300)})`);
    return { tickets, seconds, cpuUs };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function pool(count, width, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

const clients = Array.from({ length: N }, (_, i) => ({ index: i, ticket: '', ws: null, state: '', position: 0, arrived: 0n, watched: false }));
let armed = false;
let waiting = 0;
let wrongPositions = 0;
let wakeUp = () => {};

function onMessage(c, data) {
  let doc = null;
  if (!floor) {
    doc = JSON.parse(data);
    if (doc.type !== 'status') return; // "ended" for the visitor who left
  }
  if (armed && c.watched && c.arrived === 0n) {
    c.arrived = now();
    const expected = c.position > 1 ? { state: 'queued', position: c.position - 1 } : { state: 'active' };
    if (!floor && (doc.state !== expected.state || (expected.position && doc.position !== expected.position))) wrongPositions++;
    if (--waiting === 0) wakeUp();
  }
  if (doc) {
    c.state = doc.state;
    c.position = doc.position ?? 0;
  }
  c.ready?.();
}

function connect(c, i) {
  return new Promise((resolve, reject) => {
    const path = floor ? '/ws' : `/api/session/ws?ticket=${c.ticket}`;
    const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://${baseOf(i).host}${path}`, {
      localAddress: sourceAddress(i),
      rejectUnauthorized: false,
      perMessageDeflate: false,
    });
    c.ws = ws;
    const timer = setTimeout(() => reject(new Error(`client ${i}: no status within 30 s`)), 30_000);
    c.ready = () => {
      clearTimeout(timer);
      c.ready = null;
      resolve();
    };
    ws.on('message', (data) => onMessage(c, data));
    ws.on('error', (e) => reject(new Error(`client ${i}: ${e.message}`)));
  });
}

const result = { clients: N };
const rssBase = rssKb();
if (!floor) {
  const redis0 = redisNs();
  const server0 = cpuNs();
  const client0 = process.cpuUsage();
  const t0 = now();
  if (joiner === 'wrk') {
    const { tickets, seconds, cpuUs } = await joinWithWrk();
    tickets.forEach((t, i) => (clients[i].ticket = t));
    result.joinsPerSec = Math.round(N / seconds);
    result.wrkCpuUsPerJoin = +(cpuUs / N).toFixed(1);
  } else {
    await pool(N, 50, async (i) => {
      const r = await post(i, '/api/session?action=join');
      if (r.status !== 200) throw new Error(`join ${i}: ${r.status} ${r.body.slice(0, 200)}`);
      clients[i].ticket = JSON.parse(r.body).ticket;
    });
    result.joinsPerSec = Math.round(N / (ms(t0, now()) / 1000));
  }
  // What a join costs each side: the server's own cost, and the client's (this process's, or
  // wrk's with --joiner wrk).
  result.serverCpuUsPerJoin = +((cpuNs() - server0) / 1e3 / N).toFixed(1);
  const client = process.cpuUsage(client0);
  result.clientCpuUsPerJoin = result.wrkCpuUsPerJoin ?? +((client.user + client.system) / N).toFixed(1);
  if (redisPid) result.redisCpuUsPerJoin = +((redisNs() - redis0) / 1e3 / N).toFixed(1);
}
const t1 = now();
await pool(N, 200, (i) => connect(clients[i], i));
result.connectSeconds = +(ms(t1, now()) / 1000).toFixed(2);
await new Promise((r) => setTimeout(r, 500)); // let the server finish its bookkeeping
result.rssBaseKb = rssBase;
result.rssKb = rssKb();
result.kbPerClient = +((result.rssKb - rssBase) / N).toFixed(2);
if (redisPid && idleSeconds > 0) {
  const before = redisNs();
  const t = now();
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const pct = (redisNs() - before) / Number(now() - t);
  result.redisIdleCpuPct = +(pct * 100).toFixed(2);
  result.redisIdleUsPerVisitorSec = +((pct * 1e6) / N).toFixed(3); // Redis CPU us per waiting visitor per second
}

const broadcastMs = [];
let cpu = 0;
let redisCpu = 0;
for (let b = 0; b < B; b++) {
  const leaver = floor ? null : clients.find((c) => c.state === 'active' && c.ws.readyState === WebSocket.OPEN);
  if (!floor && !leaver) throw new Error('nobody holds the slot');
  waiting = 0;
  for (const c of clients) {
    c.arrived = 0n;
    c.watched = c !== leaver && c.ws.readyState === WebSocket.OPEN && (floor || c.state === 'queued');
    if (c.watched) waiting++;
  }
  const done = new Promise((resolve, reject) => {
    wakeUp = resolve;
    setTimeout(() => reject(new Error(`broadcast ${b}: ${waiting} client(s) still waiting after 60 s`)), 60_000).unref();
  });
  const cpuBefore = cpuNs();
  const redisBefore = redisNs();
  armed = true;
  const start = now();
  const answer = await post(floor ? 0 : leaver.index, floor ? '/broadcast' : '/api/session?action=leave', floor ? {} : { 'X-Session-Ticket': leaver.ticket });
  if (answer.status !== 200) throw new Error(`leave: ${answer.status} ${answer.body}`);
  if (waiting > 0) await done;
  armed = false;
  cpu += cpuNs() - cpuBefore;
  redisCpu += redisNs() - redisBefore;
  let last = start;
  for (const c of clients) if (c.watched && c.arrived > last) last = c.arrived;
  broadcastMs.push(+ms(start, last).toFixed(2));
  await new Promise((r) => setTimeout(r, 300));
}
result.broadcastMs = broadcastMs;
result.broadcastMsMedian = [...broadcastMs].sort((a, b) => a - b)[Math.floor(broadcastMs.length / 2)];
result.cpuMsPerBroadcast = +(cpu / 1e6 / B).toFixed(2);
if (redisPid) result.redisCpuMsPerBroadcast = +(redisCpu / 1e6 / B).toFixed(2);
result.wrongPositions = wrongPositions;
console.log(JSON.stringify(result));
process.exit(wrongPositions ? 1 : 0);
