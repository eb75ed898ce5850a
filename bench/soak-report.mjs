// bench/soak.sh's figures and verdict, from OUT/samples.tsv and OUT/load-soak-{vb,nginx}.json.
//
//   node soak-report.mjs OUT --slope-limit KIB_PER_MIN --alive 0|1 --drained-after S --seconds S --mode M
//                        [--judge-growth rss,fds,entries]
//
// Growth (issue 15: "passes when the last 20 minutes grow less than 5 %"): over the window of the
// last two thirds of the load, a least-squares line through the samples; growth = its rise over
// the window / its value at the window's start.  A line fits through the scatter the load itself
// makes (descriptors follow the connections open at that instant), so one noisy sample at either
// end does not decide.  A growth of 5 % or more still passes when it is under two standard errors
// of the fitted rise: the samples cannot tell it from none (this matters for descriptors in the
// 60-second smoke; RSS and entries scatter far less).
// Prints a Markdown table (voice-broker, nginx, ratio) and the verdict on voice-broker; appends
// one JSON line to OUT/runs.jsonl; exits 1 when the verdict fails.
import fs from 'node:fs';

const out = process.argv[2];
const args = Object.fromEntries(
  process.argv.slice(3).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const slopeLimit = Number(args['slope-limit']);

const [header, ...lines] = fs.readFileSync(`${out}/samples.tsv`, 'utf8').trim().split('\n');
const names = header.split('\t');
const rows = lines.map((l) => Object.fromEntries(l.split('\t').map((v, i) => [names[i], i === 1 ? v : Number(v)])));
// Descriptors not held by a client connection (listener, epoll, log, upstream...): what a leak
// would raise.  The raw count also follows how many connections the load holds at that instant,
// which drifts with how busy the shared machine is.  (The two are read a few ms apart.)
for (const r of rows) {
  r.vb_fds_own = r.vb_fds - Math.max(r.vb_conns, 0);
  r.ngx_fds_own = r.ngx_fds - Math.max(r.ngx_conns, 0);
}
const phase = (p) => rows.filter((r) => r.phase === p);
const baseline = phase('baseline').at(-1);
const during = phase('load');
const after = phase('after').at(-1);
if (!baseline || !after || during.length < 4) {
  console.error(`soak-report: too few samples (${during.length} during the load)`);
  process.exit(1);
}
const loads = Object.fromEntries(['vb', 'nginx'].map((k) => [k, JSON.parse(fs.readFileSync(`${out}/load-soak-${k}.json`, 'utf8'))]));

// Least-squares slope of RSS (KiB per minute) over the samples in the last half of the load.
function slope(key) {
  const t0 = during[0].t;
  const t1 = during.at(-1).t;
  const half = during.filter((r) => r.t >= (t0 + t1) / 2);
  const n = half.length;
  const mt = half.reduce((s, r) => s + r.t, 0) / n;
  const mv = half.reduce((s, r) => s + r[key], 0) / n;
  const num = half.reduce((s, r) => s + (r.t - mt) * (r[key] - mv), 0);
  const den = half.reduce((s, r) => s + (r.t - mt) ** 2, 0);
  return den > 0 ? (num / den) * 60 : 0;
}
// The window the growth verdict judges: the last two thirds of the load.
const windowStart = during[0].t + (during.at(-1).t - during[0].t) / 3;
const inWindow = during.filter((r) => r.t >= windowStart);
function growth(key) {
  const n = inWindow.length;
  const ts = inWindow.map((r) => r.t);
  const vs = inWindow.map((r) => r[key]);
  const mt = ts.reduce((s, t) => s + t, 0) / n;
  const mv = vs.reduce((s, v) => s + v, 0) / n;
  const sxx = ts.reduce((s, t) => s + (t - mt) ** 2, 0);
  const b = sxx > 0 ? ts.reduce((s, t, i) => s + (t - mt) * (vs[i] - mv), 0) / sxx : 0;
  const fit = (t) => mv + b * (t - mt);
  const residual = vs.reduce((s, v, i) => s + (v - fit(ts[i])) ** 2, 0);
  const slopeError = n > 2 && sxx > 0 ? Math.sqrt(residual / (n - 2) / sxx) : 0;
  const span = ts.at(-1) - ts[0];
  const from = fit(ts[0]);
  const rise = b * span;
  const pct = from > 0 ? (100 * rise) / from : 0;
  return {
    first: vs[0], last: vs.at(-1), fitFrom: +from.toFixed(1), fitTo: +(from + rise).toFixed(1),
    pct: +pct.toFixed(2), errorPct: from > 0 ? +((100 * 2 * slopeError * span) / from).toFixed(2) : 0, samples: n,
  };
}
const peak = (key) => Math.max(...during.map((r) => r[key]));
const endOfLoad = during.at(-1);

const side = (p) => ({
  rssBaseKb: baseline[`${p}_rss_kb`],
  rssPeakKb: peak(`${p}_rss_kb`),
  rssEndKb: endOfLoad[`${p}_rss_kb`],
  rssAfterKb: after[`${p}_rss_kb`],
  rssGrowthKb: endOfLoad[`${p}_rss_kb`] - baseline[`${p}_rss_kb`],
  rssSlopeKbPerMin: +slope(`${p}_rss_kb`).toFixed(1),
  fdsBase: baseline[`${p}_fds`],
  fdsPeak: peak(`${p}_fds`),
  fdsAfter: after[`${p}_fds`],
  threadsBase: baseline[`${p}_threads`],
  threadsPeak: peak(`${p}_threads`),
  threadsAfter: after[`${p}_threads`],
  connsBase: baseline[`${p}_conns`],
  connsPeak: peak(`${p}_conns`),
  connsAfter: after[`${p}_conns`],
});
const vb = side('vb');
const ngx = side('ngx');
const growths = {
  rss: growth('vb_rss_kb'), fds: growth('vb_fds_own'), entries: growth('vb_entries'), fdsRaw: growth('vb_fds'), conns: growth('vb_conns'),
  redis_keys: growth('redis_keys'), redis_rss: growth('redis_rss_kb'),
  ngxRss: growth('ngx_rss_kb'), ngxFds: growth('ngx_fds_own'), ngxFdsRaw: growth('ngx_fds'), ngxConns: growth('ngx_conns'),
};
const judged = new Set((args['judge-growth'] ?? 'rss,fds,entries').split(',').filter(Boolean));
const growthOk = (g) => g.pct < 5 || g.pct < g.errorPct;

const mib = (kb) => (kb / 1024).toFixed(1);
// A ratio to a small (or negative) figure means little: none when the anchor's is under `floor`.
const ratio = (a, b, floor = 1) => (b < floor ? 'n/a' : (a / b).toFixed(2));
const table = [
  ['resident memory at the baseline (MiB)', mib(vb.rssBaseKb), mib(ngx.rssBaseKb), ratio(vb.rssBaseKb, ngx.rssBaseKb)],
  ['resident memory, peak under load (MiB)', mib(vb.rssPeakKb), mib(ngx.rssPeakKb), ratio(vb.rssPeakKb, ngx.rssPeakKb)],
  ['resident memory at the end of the load (MiB)', mib(vb.rssEndKb), mib(ngx.rssEndKb), ratio(vb.rssEndKb, ngx.rssEndKb)],
  ['RSS growth, baseline to end of load (KiB)', vb.rssGrowthKb, ngx.rssGrowthKb, ratio(vb.rssGrowthKb, ngx.rssGrowthKb, 64)],
  ['RSS slope, last half of the load (KiB/min)', vb.rssSlopeKbPerMin, ngx.rssSlopeKbPerMin, ratio(vb.rssSlopeKbPerMin, ngx.rssSlopeKbPerMin, 16)],
  ['open descriptors: baseline / peak / after', `${vb.fdsBase} / ${vb.fdsPeak} / ${vb.fdsAfter}`, `${ngx.fdsBase} / ${ngx.fdsPeak} / ${ngx.fdsAfter}`, ratio(vb.fdsPeak, ngx.fdsPeak)],
  ['threads: baseline / peak / after', `${vb.threadsBase} / ${vb.threadsPeak} / ${vb.threadsAfter}`, `${ngx.threadsBase} / ${ngx.threadsPeak} / ${ngx.threadsAfter}`, ''],
  ['client connections: baseline / peak / after', `${vb.connsBase} / ${vb.connsPeak} / ${vb.connsAfter}`, `${ngx.connsBase} / ${ngx.connsPeak} / ${ngx.connsAfter}`, ratio(vb.connsPeak, ngx.connsPeak)],
];
const windowSeconds = Math.round(inWindow.at(-1).t - inWindow[0].t);
const showGrowth = (g, unit = (v) => v) =>
  `${unit(g.first)} -> ${unit(g.last)} (line ${unit(g.fitFrom)} -> ${unit(g.fitTo)}): ${g.pct >= 0 ? '+' : ''}${g.pct} % (2 SE ${g.errorPct} %)`;
const growthTable = [
  ['resident memory (MiB)', showGrowth(growths.rss, mib), showGrowth(growths.ngxRss, mib)],
  ['open descriptors not held by a client connection (judged)', showGrowth(growths.fds), showGrowth(growths.ngxFds)],
  ['open descriptors, all (shown)', showGrowth(growths.fdsRaw), showGrowth(growths.ngxFdsRaw)],
  ['client connections (the load, shown)', showGrowth(growths.conns), showGrowth(growths.ngxConns)],
  ['store entries (voice_broker_store_entries)', showGrowth(growths.entries), '(none)'],
];
const withRedis = rows.some((r) => r.redis_keys >= 0);
if (withRedis) {
  growthTable.push(['Redis: keys (DBSIZE)', showGrowth(growths.redis_keys), '(none)']);
  growthTable.push(['Redis: resident memory (MiB)', showGrowth(growths.redis_rss, mib), '(none)']);
}
const roundsOf = (l) => Object.entries(l.rounds).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
const troubles = (l) => Object.entries(l.surprises).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n} surprise(s)`)
  .concat(Object.entries(l.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n} error(s)`));

const checks = [
  ['voice-broker alive at the end', args.alive === '1'],
  [`descriptors back to the baseline (${vb.fdsAfter} after, ${vb.fdsBase} before)`, vb.fdsAfter <= vb.fdsBase],
  [`client connections back to the baseline (${vb.connsAfter} after, ${vb.connsBase} before; the sampler's own is one)`, vb.connsAfter >= 0 && vb.connsAfter <= vb.connsBase],
  [`no live-channel WebSocket left (${after.vb_ws})`, after.vb_ws === 0],
  ...[['rss', 'RSS'], ['fds', 'descriptors not held by a client connection'], ['entries', 'store entries'],
    ...(withRedis ? [['redis_keys', "Redis's keys"], ['redis_rss', "Redis's RSS"]] : [])].map(([key, what]) =>
    judged.has(key)
      ? [`${what} grow less than 5 % over the last ${windowSeconds} s of the load (${growths[key].pct} %, 2 SE ${growths[key].errorPct} %)`, growthOk(growths[key])]
      : [`${what} over the last ${windowSeconds} s of the load: ${growths[key].pct} %, not judged (too short a run)`, true]),
  Number.isFinite(slopeLimit)
    ? [`RSS slope over the last half of the load ${vb.rssSlopeKbPerMin} KiB/min <= ${slopeLimit}`, vb.rssSlopeKbPerMin <= slopeLimit]
    : [`RSS slope over the last half of the load ${vb.rssSlopeKbPerMin} KiB/min: not judged (too short a run)`, true],
  [`the load met only expected answers${troubles(loads.vb).length ? ` (${troubles(loads.vb).join(', ')}: ${JSON.stringify(loads.vb.examples)})` : ''}`, troubles(loads.vb).length === 0],
];
const pass = checks.every(([, ok]) => ok);

const text = [
  `## Soak (${args.mode}${args.asan === '1' ? ', an ASan build with a 1 MiB quarantine' : ''}): ${args.seconds} s of load, ${during.length} samples; drained in ${args['drained-after']} s`,
  '',
  '| figure | voice-broker | nginx (anchor) | ratio |',
  '| --- | --- | --- | --- |',
  ...table.map((r) => `| ${r.join(' | ')} |`),
  '',
  `Growth over the last two thirds of the load (${windowSeconds} s, ${inWindow.length} samples): first -> last sample, the least-squares line's start -> end, its rise (two standard errors of the rise):`,
  '',
  '| figure | voice-broker | nginx (anchor) |',
  '| --- | --- | --- |',
  ...growthTable.map((r) => `| ${r.join(' | ')} |`),
  '',
  `Keys minted through the fake OpenAI: ${Object.entries(loads.vb.keysMinted ?? {}).map(([k, n]) => `${k} ${n}`).join(', ')}`,
  `voice-broker load rounds: ${roundsOf(loads.vb)}`,
  `nginx load rounds: ${roundsOf(loads.nginx)}${troubles(loads.nginx).length ? ` (anchor: ${troubles(loads.nginx).join(', ')}: ${JSON.stringify(loads.nginx.examples)})` : ''}`,
  '',
  'Verdict on voice-broker:',
  ...checks.map(([what, ok]) => `- ${ok ? 'ok' : 'FAIL'}: ${what}`),
  '',
  `soak: ${pass ? 'PASS' : 'FAIL'}`,
].join('\n');
console.log(text);
fs.appendFileSync(`${out}/runs.jsonl`, `${JSON.stringify({ fig: 'soak', mode: args.mode, seconds: Number(args.seconds), pass, vb, nginx: ngx, growths, loads })}\n`);
process.exit(pass ? 0 : 1);
