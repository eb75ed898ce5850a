// bench/store.sh's load client: join, status and leave through one voice-broker, in rounds.
//
//   node store-clients.mjs --url http://127.0.0.1:P --rounds R --batch K --width W
//                          --pid BROKER_PID [--redis-pid REDIS_PID]
//
// Each round: K visitors join (POST ?action=join), then each asks its status (GET ?action=status
// with X-Session-Ticket), then each leaves (POST ?action=leave); W requests in flight at a time
// (keep-alive, W connections).  With K=1, W=1 every join takes a free slot (an admission) and
// every leave frees it: the latency of one visitor alone.  With K=500, W=32 the first joins of a
// round are admitted and the rest queue behind them: throughput under load.
// Per operation: p50/p99 latency (ms, from sending the request to the whole answer), requests/s
// over the time spent in that operation's phases, and the CPU (schedstat, ns, every thread) that
// voice-broker and Redis spent in those phases, per request, and how many answers were not 200
// (with the first of each kind in "failures").  Prints one JSON line.
import fs from 'node:fs';
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const base = new URL(args.url);
const ROUNDS = Number(args.rounds ?? 100);
const K = Number(args.batch ?? 1);
const W = Number(args.width ?? 1);
const pids = { broker: Number(args.pid), redis: Number(args['redis-pid'] ?? 0) };
const agent = new http.Agent({ keepAlive: true, maxSockets: W });
const now = () => process.hrtime.bigint();

const cpuNs = (pid) =>
  pid
    ? fs.readdirSync(`/proc/${pid}/task`).reduce((sum, t) => sum + Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]), 0)
    : 0;

function request(method, path, ticket) {
  return new Promise((resolve, reject) => {
    const headers = ticket ? { 'X-Session-Ticket': ticket } : {};
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function pool(count, width, work) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

const ops = {
  join: { method: 'POST', path: '/api/session?action=join', want: 200 },
  status: { method: 'GET', path: '/api/session?action=status', want: 200 },
  leave: { method: 'POST', path: '/api/session?action=leave', want: 200 },
};
const failures = {};
for (const o of Object.values(ops)) Object.assign(o, { lat: [], ns: 0n, broker: 0, redis: 0, errors: 0 });

async function phase(name, tickets) {
  const o = ops[name];
  const cpu0 = { broker: cpuNs(pids.broker), redis: cpuNs(pids.redis) };
  const t0 = now();
  await pool(K, W, async (i) => {
    if (name !== 'join' && !tickets[i]) return; // its join failed
    const s = now();
    const r = await request(o.method, o.path, tickets[i]);
    o.lat.push(Number(now() - s) / 1e6);
    if (r.status !== o.want) {
      // Counted, not fatal: a store that cannot answer (503 store_unavailable) is a result.
      o.errors++;
      failures[`${name} ${r.status} ${r.body.slice(0, 120)}`] = (failures[`${name} ${r.status} ${r.body.slice(0, 120)}`] ?? 0) + 1;
      if (name === 'join') tickets[i] = '';
      return;
    }
    if (name === 'join') tickets[i] = JSON.parse(r.body).ticket;
  });
  o.ns += now() - t0;
  o.broker += cpuNs(pids.broker) - cpu0.broker;
  o.redis += cpuNs(pids.redis) - cpu0.redis;
}

// One warm-up round, not counted: connections, allocator pools, Redis's script cache.
{
  const tickets = new Array(K).fill('');
  for (const name of ['join', 'status', 'leave']) await phase(name, tickets);
  for (const o of Object.values(ops)) Object.assign(o, { lat: [], ns: 0n, broker: 0, redis: 0, errors: 0 });
  for (const k of Object.keys(failures)) delete failures[k];
}
for (let r = 0; r < ROUNDS; r++) {
  const tickets = new Array(K).fill('');
  for (const name of ['join', 'status', 'leave']) await phase(name, tickets);
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const result = { rounds: ROUNDS, batch: K, width: W };
for (const [name, o] of Object.entries(ops)) {
  const sorted = o.lat.sort((a, b) => a - b);
  const n = sorted.length;
  result[`${name}P50Ms`] = +pct(sorted, 50).toFixed(3);
  result[`${name}P99Ms`] = +pct(sorted, 99).toFixed(3);
  result[`${name}PerSec`] = Math.round(n / (Number(o.ns) / 1e9));
  result[`${name}BrokerCpuUs`] = +(o.broker / 1e3 / n).toFixed(1);
  if (pids.redis) result[`${name}RedisCpuUs`] = +(o.redis / 1e3 / n).toFixed(1);
  result[`${name}Errors`] = o.errors;
}
if (Object.keys(failures).length) result.failures = failures;
console.log(JSON.stringify(result));
process.exit(0);
