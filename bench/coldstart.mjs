// Figure 7's client: time from spawning voice-broker to its first 200 on /api/health.
//
//   node coldstart.mjs --bin PATH --static DIR --port P [--cpu 0]
//
// The server is spawned through `taskset -c CPU` (that exec is counted too), polled every
// millisecond over a fresh connection, then stopped with SIGTERM.  Prints {"coldStartMs":n}.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-coldstart-')); // nothing restored from a previous start
const env = { ...process.env, STATIC_DIR: args.static, HOST: '127.0.0.1', PORT: args.port, THREADS: '1', LOG_LEVEL: 'warn', DATA_DIR: dataDir };
const healthy = () =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: args.port, path: '/api/health', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });

const started = process.hrtime.bigint();
const child = spawn('taskset', ['-c', args.cpu ?? '0', args.bin], { env, stdio: 'ignore' });
const exited = new Promise((resolve) => child.on('exit', resolve));
const deadline = Date.now() + 10_000;
while (!(await healthy())) {
  if (Date.now() > deadline) throw new Error('no 200 on /api/health within 10 s');
  await new Promise((r) => setTimeout(r, 1));
}
const coldStartMs = Number(process.hrtime.bigint() - started) / 1e6;
child.kill('SIGTERM');
await exited;
fs.rmSync(dataDir, { recursive: true, force: true });
console.log(JSON.stringify({ coldStartMs: +coldStartMs.toFixed(2) }));
