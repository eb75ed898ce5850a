// Lighthouse on every page of pages.mjs, served by the real voice-broker binary on loopback, in
// Debian's Chromium. Prints each page's four scores, writes the reports to test-output/lighthouse/,
// and exits non-zero when a score is below LIGHTHOUSE_MIN_SCORE (default 95) or a run fails.
// run.sh starts this inside a network namespace that has only loopback.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, REPO_ROOT, startBroker } from '../e2e/lib/broker.mjs';
import { startAdminDouble } from '../e2e/lib/admin-double.mjs';
import { CATEGORIES, PAGES } from './pages.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const LIGHTHOUSE = path.join(here, 'node_modules/.bin/lighthouse');
const OUTPUT_DIR = path.join(REPO_ROOT, 'test-output/lighthouse');
const MIN_SCORE = Number(process.env.LIGHTHOUSE_MIN_SCORE ?? 95);
const RUN_TIMEOUT_MS = 120_000;
// Headless, and nothing that would reach past loopback: no background requests, no component
// or sync updates, no first-run pings, no QUIC.
const CHROME_FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--no-first-run', '--disable-quic',
];

// One Lighthouse run as a child process, bounded in time; resolves with its JSON report.
function lighthouse(url, page, headers) {
  const base = path.join(OUTPUT_DIR, page.name);
  const args = [
    url,
    '--quiet',
    '--output=json', '--output=html', `--output-path=${base}`,
    `--only-categories=${CATEGORIES.join(',')}`,
    `--chrome-flags=${[...CHROME_FLAGS, `--lang=${page.lang ?? 'en-US'}`, `--accept-lang=${page.lang ?? 'en-US'}`].join(' ')}`,
    '--max-wait-for-load=30000',
  ];
  if (page.formFactor === 'desktop') args.push('--preset=desktop');
  if (headers && Object.keys(headers).length) args.push(`--extra-headers=${JSON.stringify(headers)}`);
  return new Promise((resolve, reject) => {
    const child = spawn(LIGHTHOUSE, args, {
      env: { ...process.env, CHROME_PATH: process.env.CHROME_PATH ?? '/usr/bin/chromium', LANG: page.lang ?? 'en-US' },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', chunk => { stderr += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`lighthouse on ${page.name} exited with ${code ?? signal}:\n${stderr.slice(-4000)}`));
        return;
      }
      resolve(JSON.parse(fs.readFileSync(`${base}.report.json`, 'utf8')));
    });
  });
}

// The audits that cost points, for the reader of a failing run.
function shortfalls(report) {
  const out = [];
  for (const category of CATEGORIES) {
    for (const ref of report.categories[category].auditRefs) {
      const audit = report.audits[ref.id];
      if (ref.weight > 0 && audit.score !== null && audit.score < 1) {
        out.push(`${category}: ${ref.id} (${audit.score}${audit.displayValue ? `, ${audit.displayValue}` : ''})`);
      }
    }
  }
  return out;
}

fs.rmSync(OUTPUT_DIR, { recursive: true, force: true });
fs.mkdirSync(OUTPUT_DIR, { recursive: true });
const results = [];
let failed = false;
const NOT_SERVED = 'admin API not served by this binary';

// The real binary; for a page that needs the admin API and a binary without it, the admin API's
// test double when ADMIN_API_DOUBLE=1, else null (the entry is skipped).
async function serverFor(page) {
  const settings = { ADMIN_TOKEN, LOG_LEVEL: 'info', ...(page.broker ?? {}) };
  const broker = await startBroker(settings);
  if (!page.adminApi) return broker;
  const probe = await fetch(`${broker.url}/api/admin/state`, { signal: AbortSignal.timeout(5000) });
  if (probe.status !== 404) return broker;
  await broker.stop();
  if (process.env.ADMIN_API_DOUBLE !== '1') return null;
  return startAdminDouble(settings);
}

// LIGHTHOUSE_PAGES=admin (a regular expression) measures only the entries whose name matches.
const only = process.env.LIGHTHOUSE_PAGES ? new RegExp(process.env.LIGHTHOUSE_PAGES) : null;
for (const page of PAGES.filter(p => !only || only.test(p.name))) {
  const broker = await serverFor(page);
  if (!broker) {
    results.push({ page: page.name, skipped: NOT_SERVED });
    console.log(`${page.name}: skipped (${NOT_SERVED}; ADMIN_API_DOUBLE=1 measures it on the test double)`);
    continue;
  }
  try {
    const headers = page.headers ? await page.headers(broker) : undefined;
    const report = await lighthouse(`${broker.url}${page.path}`, page, headers);
    const scores = Object.fromEntries(CATEGORIES.map(c => [c, Math.round(report.categories[c].score * 100)]));
    const low = CATEGORIES.filter(c => scores[c] < MIN_SCORE);
    if (report.runtimeError) low.push(`runtime error ${report.runtimeError.code}`);
    // The audited nodes' snippets carry the page's text: the page audited is the page meant.
    if (page.shows && !JSON.stringify(report.audits).includes(page.shows)) low.push(`the page does not show "${page.shows}"`);
    results.push({ page: page.name, ...scores, server: broker.isDouble ? 'admin double' : 'voice-broker', lighthouse: report.lighthouseVersion, chromium: report.environment?.hostUserAgent.match(/Chrome\/([\d.]+)/)?.[1] });
    if (low.length) {
      failed = true;
      console.error(`${page.name}: below ${MIN_SCORE}: ${low.join(', ')}\n  ${shortfalls(report).join('\n  ')}`);
    }
  } catch (error) {
    failed = true;
    results.push({ page: page.name, error: error.message.split('\n')[0] });
    console.error(error.message);
  } finally {
    await broker.stop().catch(error => {
      failed = true;
      console.error(`${page.name}: stopping the broker: ${error.message}`);
    });
  }
}

console.table(results);
fs.writeFileSync(path.join(OUTPUT_DIR, 'scores.json'), `${JSON.stringify(results, null, 2)}\n`);
const passed = results.filter(r => !r.error && !r.skipped && CATEGORIES.every(c => r[c] >= MIN_SCORE)).length;
const skipped = results.filter(r => r.skipped).length;
console.log(`lighthouse: ${passed} passed, ${results.length - passed - skipped} failed, ${skipped} skipped (each category >= ${MIN_SCORE}); reports in test-output/lighthouse/`);
process.exit(failed ? 1 : 0);
