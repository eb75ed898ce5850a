// Figure 5's client: times key minting through voice-broker (POST /api/session?action=token)
// or straight against the fake OpenAI (POST /v1/realtime/client_secrets, the same body the
// broker sends), with the same Node HTTP client, keep-alive, N concurrent callers.
//
//   node token-load.mjs --target vb|fake --url http://127.0.0.1:P --callers N --mints M
//                       --pid SERVER_PID [--key FAKE_KEY] [--hz 100]
//
// It works in rounds so that only minting is in the CPU window: every caller joins (vb: one
// ticket each, MAX_CONCURRENT_USERS >= callers, so everyone holds a slot), then the server's
// utime+stime is read, every caller mints 3 keys (the most one session may have), the CPU is
// read again, and everyone leaves.  The first round warms the upstream connections and is not
// counted.  Prints one JSON line: {mints, p50Ms, p99Ms, cpuMsPerMint, errors, seconds}.
import fs from 'node:fs';
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const target = args.target;
const base = new URL(args.url);
const callers = Number(args.callers ?? 1);
const wanted = Number(args.mints ?? 300);
const pid = Number(args.pid);
const hz = Number(args.hz ?? 100);
const agent = new http.Agent({ keepAlive: true, maxSockets: callers });
const MINTS_PER_SESSION = 3;

// What voice-broker sends upstream for one key with the default settings (openai_client.cpp).
const mintBody = JSON.stringify({
  expires_after: { anchor: 'created_at', seconds: 60 },
  session: {
    audio: { input: { transcription: { model: 'gpt-4o-mini-transcribe' } }, output: { voice: 'marin' } },
    instructions: 'You are a friendly voice assistant. Keep answers short.',
    model: 'gpt-realtime',
    type: 'realtime',
  },
});

function cpuTicks() {
  const rest = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(rest[11]) + Number(rest[12]);
}

function request(method, path, headers = {}, body = '') {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request(
      { host: base.hostname, port: base.port, method, path, agent, headers: { ...headers, 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), ms: Number(process.hrtime.bigint() - started) / 1e6 }),
        );
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function join() {
  const r = await request('POST', '/api/session?action=join');
  const doc = JSON.parse(r.body);
  if (r.status !== 200 || doc.state !== 'active') throw new Error(`join answered ${r.status} ${r.body.slice(0, 200)}`);
  return doc.ticket;
}

const mint = (ticket) =>
  target === 'vb'
    ? request('POST', '/api/session?action=token', { 'X-Session-Ticket': ticket })
    : request('POST', '/v1/realtime/client_secrets', { Authorization: `Bearer ${args.key}`, 'Content-Type': 'application/json' }, mintBody);

const latencies = [];
let errors = 0;
let ticks = 0;
let firstError = '';

async function round(counted) {
  const tickets = target === 'vb' ? await Promise.all(Array.from({ length: callers }, join)) : new Array(callers).fill('');
  const before = cpuTicks();
  await Promise.all(
    tickets.map(async (ticket) => {
      for (let k = 0; k < MINTS_PER_SESSION; k++) {
        const r = await mint(ticket);
        if (r.status !== 200 || !r.body.includes('"ek_')) {
          errors++;
          firstError ||= `${r.status} ${r.body.slice(0, 200)}`;
        } else if (counted) {
          latencies.push(r.ms);
        }
      }
    }),
  );
  if (counted) ticks += cpuTicks() - before;
  if (target === 'vb') {
    await Promise.all(tickets.map((t) => request('POST', '/api/session?action=leave', { 'X-Session-Ticket': t })));
  }
}

const started = process.hrtime.bigint();
await round(false);
while (latencies.length < wanted && errors < 10) await round(true);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] : NaN);
const out = {
  mints: latencies.length,
  p50Ms: +pct(50).toFixed(3),
  p99Ms: +pct(99).toFixed(3),
  cpuMsPerMint: +((ticks / hz) * 1000 / Math.max(1, latencies.length)).toFixed(4),
  errors,
  seconds: +seconds.toFixed(2),
};
if (firstError) out.firstError = firstError;
console.log(JSON.stringify(out));
agent.destroy();
process.exit(errors ? 1 : 0);
