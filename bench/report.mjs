// Turns one run's runs.jsonl into the table: every figure the median of its runs with the
// spread [min-max], the ratio to the anchor measured in the same run, and the target verdict.
//
//   node report.mjs RESULTS_DIR...   (reads each RESULTS_DIR/runs.jsonl, and machine.txt of the first;
//                                     a later folder's figures replace the earlier ones: re-runs)
import fs from 'node:fs';
import path from 'node:path';

const dirs = process.argv.slice(2);
const dir = dirs[0];
// A later folder replaces an earlier one's runs of the same figure (figure 6: of the same size).
const keyOf = (r) => (String(r.fig) === '6' ? `6:${r.clients}` : String(r.fig));
let runs = [];
for (const d of dirs) {
  const fresh = fs
    .readFileSync(path.join(d, 'runs.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const replaced = new Set(fresh.map(keyOf));
  runs = [...runs.filter((r) => !replaced.has(keyOf(r))), ...fresh];
}
const smoke = /mode: smoke/.test(fs.readFileSync(path.join(dir, 'machine.txt'), 'utf8'));

const pick = (where, key) => runs.filter((r) => Object.entries(where).every(([k, v]) => String(r[k]) === String(v))).map((r) => r[key]).filter((v) => typeof v === 'number');
const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x) => {
  if (!Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
};
const summary = (xs) => (xs.length ? `${fmt(median(xs))} [${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}]` : '-');

const rows = [];
const busy = {};
function row(fig, measure, ours, anchorName, anchor, { ratio, target, met, note } = {}) {
  const r = ratio ?? (anchor ? median(ours) / median(anchor) : NaN);
  let verdict = '-';
  if (met !== undefined && !(typeof r === 'number' && !Number.isFinite(r))) verdict = smoke ? 'not judged (smoke)' : met(r) ? 'met' : '**not met**';
  rows.push(
    `| ${fig} | ${measure} | ${summary(ours)} | ${anchor ? `${anchorName}: ${summary(anchor)}` : anchorName ?? '-'} | ${
      typeof r === 'string' ? r : Number.isFinite(r) ? `${fmt(r)}x` : '-'
    } | ${target ?? '-'} | ${verdict}${note ? ` ${note}` : ''} |`,
  );
}
const noteBusy = (fig) => {
  const b = pick({ fig }, 'busyPct');
  if (b.length) busy[fig] = `${fig}: median ${median(b)}%, max ${Math.max(...b)}% (${b.length} runs)`;
};

// 1, 2: the page, HTTPS and plain HTTP, voice-broker vs nginx.
for (const [fig, name] of [
  ['1', 'page, HTTPS keep-alive'],
  ['2', 'page, plain HTTP keep-alive'],
]) {
  const vb = (k) => pick({ fig, side: 'voice-broker' }, k);
  const ng = (k) => pick({ fig, side: 'nginx' }, k);
  if (!vb('rps').length) continue;
  row(fig, `${name}: requests/s`, vb('rps'), 'nginx', ng('rps'), { target: '>= 1.0x', met: (r) => r >= 1.0 });
  row(fig, `${name}: server CPU us/request`, vb('cpuUsPerReq'), 'nginx', ng('cpuUsPerReq'), { target: '<= 1.0x', met: (r) => r <= 1.0 });
  row(fig, `${name}: p50 latency ms`, vb('p50Ms'), 'nginx', ng('p50Ms'));
  row(fig, `${name}: p99 latency ms`, vb('p99Ms'), 'nginx', ng('p99Ms'), { target: '<= 1.0x (no worse)', met: (r) => r <= 1.0 });
  noteBusy(fig);
}

// 1b: what the access log costs (issue 15): LOG_LEVEL=info (one line per request, written to a
// file) against warn, same binary, same page.  Over 10 % would move logging off the I/O thread.
{
  const on = (k) => pick({ fig: '1', side: 'voice-broker+access-log' }, k);
  const off = (k) => pick({ fig: '1', side: 'voice-broker' }, k);
  if (on('rps').length) {
    row('1', 'page, HTTPS, access log on: requests/s', on('rps'), 'access log off', off('rps'), { target: '>= 0.9x', met: (r) => r >= 0.9 });
    row('1', 'page, HTTPS, access log on: server CPU us/request', on('cpuUsPerReq'), 'access log off', off('cpuUsPerReq'), {
      target: '<= 1.1x',
      met: (r) => r <= 1.1,
    });
  }
}

// 1c: the same for an older build (BENCH_BEFORE_BIN), measured in the same interleaved runs, and
// the two builds side by side with the access log on.
{
  const side = (s, k) => pick({ fig: '1', side: s }, k);
  if (side('before+access-log', 'rps').length) {
    row('1', 'before: access log on: requests/s', side('before+access-log', 'rps'), 'before, access log off', side('before', 'rps'), { target: '>= 0.9x', met: (r) => r >= 0.9 });
    row('1', 'before: access log on: server CPU us/request', side('before+access-log', 'cpuUsPerReq'), 'before, access log off', side('before', 'cpuUsPerReq'), {
      target: '<= 1.1x',
      met: (r) => r <= 1.1,
    });
    row('1', 'access log on, this build: requests/s', side('voice-broker+access-log', 'rps'), 'before, access log on', side('before+access-log', 'rps'));
    row('1', 'access log on, this build: server CPU us/request', side('voice-broker+access-log', 'cpuUsPerReq'), 'before, access log on', side('before+access-log', 'cpuUsPerReq'));
    row('1', 'access log off, this build: requests/s', side('voice-broker', 'rps'), 'before, access log off', side('before', 'rps'));
  }
}

// 3: the stats API over HTTPS.
if (pick({ fig: '3', side: 'voice-broker' }, 'rps').length) {
  const s = (side, k) => pick({ fig: '3', side }, k);
  row('3', 'stats API, HTTPS: requests/s', s('voice-broker', 'rps'), 'bare Node https', s('node-https', 'rps'), { target: '>= 2x', met: (r) => r >= 2 });
  row('3', 'stats API, HTTPS: requests/s', s('voice-broker', 'rps'), 'Express', s('express', 'rps'), { target: '>= 10x', met: (r) => r >= 10 });
  row('3', 'stats API: server CPU us/request', s('voice-broker', 'cpuUsPerReq'), 'bare Node https', s('node-https', 'cpuUsPerReq'));
  row('3', 'stats API: server CPU us/request', s('voice-broker', 'cpuUsPerReq'), 'Express', s('express', 'cpuUsPerReq'));
  row('3', 'stats API: p99 latency ms', s('voice-broker', 'p99Ms'), 'bare Node https', s('node-https', 'p99Ms'));
  noteBusy('3');
}

// 4: a new TLS connection per request.
if (pick({ fig: '4', side: 'voice-broker' }, 'rps').length) {
  const s = (side, k) => pick({ fig: '4', side }, k);
  row('4', 'new TLS connection per request: server CPU us/connection', s('voice-broker', 'cpuUsPerReq'), 'nginx', s('nginx', 'cpuUsPerReq'), {
    target: '<= 1.1x',
    met: (r) => r <= 1.1,
  });
  row('4', 'new TLS connection per request: connections/s', s('voice-broker', 'rps'), 'nginx', s('nginx', 'rps'));
  noteBusy('4');
}

// 5: minting overhead over the fake upstream's own latency.
for (const callers of [1, 50]) {
  const s = (side, k) => pick({ fig: '5', side, callers }, k);
  if (!s('voice-broker', 'p50Ms').length) continue;
  const who = callers === 1 ? 'alone' : `${callers} concurrent callers`;
  for (const [k, limit] of [
    ['p50Ms', 1],
    ['p99Ms', 2],
  ]) {
    const added = median(s('voice-broker', k)) - median(s('fake-direct', k));
    row('5', `token, ${who}: ${k.slice(0, 3)} ms (added = ours - fake's)`, s('voice-broker', k), 'fake OpenAI direct', s('fake-direct', k), {
      ratio: `${added >= 0 ? '+' : ''}${fmt(added)} ms`,
      target: `added <= ${limit} ms`,
      met: () => added <= limit,
    });
  }
  row('5', `token, ${who}: server CPU ms/mint`, s('voice-broker', 'cpuMsPerMint'), 'fake OpenAI CPU ms/mint', s('fake-direct', 'cpuMsPerMint'), {
    ratio: '-',
    target: '<= 0.5 ms',
    met: () => median(s('voice-broker', 'cpuMsPerMint')) <= 0.5,
  });
  noteBusy('5');
}

// 6: the queue at scale.
const sizes = [...new Set(runs.filter((r) => String(r.fig) === "6").map((r) => r.clients))].sort((a, b) => a - b);
for (const n of sizes) {
  const s = (side, k) => pick({ fig: '6', side, clients: n }, k);
  const label = `${n.toLocaleString('en-US')} queued`;
  row('6', `${label}, ws: server RSS KB/client`, s('voice-broker', 'kbPerClient'), 'Node ws', s('node-ws', 'kbPerClient'), {
    target: '<= 8 KB',
    met: () => median(s('voice-broker', 'kbPerClient')) <= 8,
    note: `(floor ${fmt(median(s('floor', 'kbPerClient')))} KB)`,
  });
  row('6', `${label}, ws: slot frees -> last client updated, ms`, s('voice-broker', 'broadcastMsMedian'), 'floor (raw send)', s('floor', 'broadcastMsMedian'), {
    target: '<= 1.3x',
    met: (r) => r <= 1.3,
  });
  row('6', `${label}, ws: slot frees -> last client updated, ms`, s('voice-broker', 'broadcastMsMedian'), 'Node ws', s('node-ws', 'broadcastMsMedian'), {
    target: '<= 0.8x',
    met: (r) => r <= 0.8,
  });
  row('6', `${label}, ws: server CPU ms/broadcast`, s('voice-broker', 'cpuMsPerBroadcast'), 'Node ws', s('node-ws', 'cpuMsPerBroadcast'), {
    note: `(floor ${fmt(median(s('floor', 'cpuMsPerBroadcast')))} ms)`,
  });
  row('6', `${label}, ws: joins/s`, s('voice-broker', 'joinsPerSec'), 'Node ws', s('node-ws', 'joinsPerSec'), {
    target: '>= 1.0x',
    met: (r) => r >= 1.0,
    note: `(load generator's CPU us/join ${fmt(median(s('voice-broker', 'clientCpuUsPerJoin')))} vs ${fmt(median(s('node-ws', 'clientCpuUsPerJoin')))})`,
  });
  row('6', `${label}, ws: server CPU us/join`, s('voice-broker', 'serverCpuUsPerJoin'), 'Node ws', s('node-ws', 'serverCpuUsPerJoin'), {
    target: '<= 1.0x',
    met: (r) => r <= 1.0,
  });
  row('6', `${label}, wss: server RSS KB/client`, s('voice-broker-tls', 'kbPerClient'), 'Node ws (TLS)', s('node-ws-tls', 'kbPerClient'), {
    target: 'reported',
  });
  row('6', `${label}, wss: slot frees -> last client updated, ms`, s('voice-broker-tls', 'broadcastMsMedian'), 'Node ws (TLS)', s('node-ws-tls', 'broadcastMsMedian'));
  row('6', `${label}, wss: joins/s`, s('voice-broker-tls', 'joinsPerSec'), 'Node ws (TLS)', s('node-ws-tls', 'joinsPerSec'), {
    target: '>= 1.0x',
    met: (r) => r >= 1.0,
    note: `(load generator's CPU us/join ${fmt(median(s('voice-broker-tls', 'clientCpuUsPerJoin')))} vs ${fmt(median(s('node-ws-tls', 'clientCpuUsPerJoin')))})`,
  });
  row('6', `${label}, wss: server CPU us/join`, s('voice-broker-tls', 'serverCpuUsPerJoin'), 'Node ws (TLS)', s('node-ws-tls', 'serverCpuUsPerJoin'), {
    target: '<= 1.0x',
    met: (r) => r <= 1.0,
  });
}
if (sizes.length) noteBusy('6');

// 7: cold start.
const cold = pick({ fig: '7' }, 'coldStartMs');
if (cold.length) {
  row('7', 'cold start: spawn -> first 200 on /api/health, ms', cold, undefined, undefined, {
    ratio: '-',
    target: '< 100 ms',
    met: () => median(cold) < 100,
  });
  noteBusy('7');
}

const answers = runs.filter((r) => r.fig === "answer").map((r) => `${r.side} ${r.headerBytes}+${r.bodyBytes} B`);
console.log('| # | measure | voice-broker: median [min-max] | anchor: median [min-max] | ratio | target | result |');
console.log('|---|---|---|---|---|---|---|');
console.log(rows.join('\n'));
console.log('');
if (answers.length) console.log(`Answer sizes (headers+body): ${answers.join(', ')}.`);
// wrk shares nothing with the server but its own core: when that core is saturated, wrk is the
// bottleneck, so requests/s is a lower bound for that side and its latency includes wrk's queueing.
const clientLoad = [];
for (const fig of ['1', '2', '3', '4']) {
  const sides = [...new Set(runs.filter((r) => String(r.fig) === fig && r.clientCpuS !== undefined).map((r) => r.side))];
  const parts = sides.map((side) => {
    const pct = runs
      .filter((r) => String(r.fig) === fig && r.side === side && r.clientCpuS !== undefined)
      .map((r) => (100 * Number(r.clientCpuS)) / Number(r.seconds));
    return `${side} ${fmt(median(pct))}%`;
  });
  if (parts.length) clientLoad.push(`${fig}: ${parts.join(', ')}`);
}
if (clientLoad.length) {
  console.log(`Load generator (wrk) CPU on its core, median of the runs (~100% means wrk, not the server, set the pace): ${clientLoad.join('; ')}.`);
}
console.log(`Machine busy before the runs (other work, measured over 0.5 s before each run): ${Object.values(busy).join('; ')}.`);
