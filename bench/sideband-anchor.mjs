// sideband-anchor.mjs: the anchor for sideband_bench, the same measurement with Node's `ws`
// client (bench/node_modules): N idle wss connections to the fake's sideband, then rounds of
// response.create -> response.done, every message JSON.parse'd.  Prints one JSON line.
//   node --expose-gc sideband-anchor.mjs --base https://127.0.0.1:PORT --ca cert.pem --key KEY --ids ids.txt [--rounds R]
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const base = arg('--base');
const ca = arg('--ca') ? readFileSync(arg('--ca')) : undefined;
const key = arg('--key', 'test-openai-key');
const rounds = Number(arg('--rounds', 5));
const ids = readFileSync(arg('--ids'), 'utf8').split('\n').filter(Boolean);
const wsBase = base.replace(/^http/, 'ws');

const gc = () => globalThis.gc?.();
const rssKb = () => Math.round(process.memoryUsage().rss / 1024);
const cpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

gc();
const rssBase = rssKb();
let events = 0;
let failed = false;
const calls = ids.map((id) => ({ id, done: 0 }));
await Promise.all(
  calls.map(
    (c) =>
      new Promise((resolve) => {
        c.ws = new WebSocket(`${wsBase}/v1/realtime?call_id=${id(c)}`, { headers: { Authorization: `Bearer ${key}` }, ca, perMessageDeflate: false });
        c.ws.on('open', resolve);
        c.ws.on('message', (data, isBinary) => {
          if (isBinary) return;
          const ev = JSON.parse(data.toString());
          events++;
          if (ev.type === 'response.done') c.done++;
        });
        c.ws.on('error', (e) => {
          if (!failed) process.stderr.write(`a sideband failed: ${e.message}\n`);
          failed = true;
          resolve();
        });
        c.ws.on('close', (code) => {
          if (code !== 1000 && code !== 1005) failed = true;
        });
      }),
  ),
);
function id(c) {
  return c.id;
}
await new Promise((r) => setTimeout(r, 1000));
gc();
const rssOpen = rssKb();

events = 0;
const cpu0 = cpuS();
const t0 = process.hrtime.bigint();
for (let r = 0; r < rounds && !failed; r++) {
  for (const c of calls) {
    c.done = 0;
    c.ws.send(JSON.stringify({ type: 'response.create' }));
  }
  const deadline = Date.now() + 60000;
  while (calls.some((c) => c.done < 1) && !failed && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
}
const cpu = cpuS() - cpu0;
const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const rssBusy = rssKb();
await Promise.all(calls.map((c) => new Promise((res) => (c.ws.readyState === WebSocket.OPEN ? (c.ws.once('close', res), c.ws.close(1000)) : res()))));
process.stdout.write(
  `${JSON.stringify({
    impl: 'node-ws',
    connections: calls.length,
    rss_base_kb: rssBase,
    rss_open_kb: rssOpen,
    rss_busy_kb: rssBusy,
    kb_per_connection: (rssOpen - rssBase) / calls.length,
    events,
    cpu_s: cpu,
    wall_s: wall,
    us_per_event: events ? (cpu * 1e6) / events : 0,
    ok: !failed,
  })}\n`,
);
process.exit(failed ? 1 : 0);
