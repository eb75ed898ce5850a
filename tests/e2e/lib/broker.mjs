// The real voice-broker binary as a child process on 127.0.0.1:0, with its log kept for waits and
// for the failure report. Each test starts its own, in an empty working directory, so no .env,
// .env.local or config/session-limits.json of the developer's checkout leaks in.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BROKER_BIN = process.env.VOICE_BROKER_BIN
  ? path.resolve(process.env.VOICE_BROKER_BIN)
  : path.join(REPO_ROOT, 'build/debug/voice-broker');
export const ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef';

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;
// What AddressSanitizer, LeakSanitizer and UBSan print when they find something.
const SANITIZER_REPORT = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

// settings: the broker's environment variables for this scenario (strings). Resolves once the
// broker logs its listening line, with {url, port, lines, tail(), waitForLog(), stop(), crash()}.
export async function startBroker(settings = {}) {
  if (!fs.existsSync(BROKER_BIN)) {
    throw new Error(`no voice-broker binary at ${BROKER_BIN}: run tests/e2e/run.sh, or set VOICE_BROKER_BIN`);
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-e2e-broker-'));
  const env = {
    PATH: process.env.PATH,
    HOME: workDir,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=1',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1',
    HOST: '127.0.0.1',
    PORT: '0',
    STATIC_DIR: path.join(REPO_ROOT, 'static'),
    SHUTDOWN_GRACE_SECONDS: '2',
    LOG_LEVEL: 'debug',
    // Every page comes from 127.0.0.1: the per-address limits are off unless a test sets them.
    MAX_TICKETS_PER_ADDRESS: '0',
    JOIN_RATE_PER_ADDRESS: '0',
    ...settings,
  };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];

  const child = spawn(BROKER_BIN, [], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const listeners = new Set();
  // 'close', not 'exit': the sanitizers write their reports last, and they must be read in full.
  // 'error': the binary could not be started at all (say, it is being relinked right now).
  const exited = new Promise(resolve => {
    child.once('close', (code, signal) => resolve({ code, signal }));
    child.once('error', error => resolve({ code: null, signal: error.message }));
  });
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', chunk => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop();
      for (const line of parts) {
        lines.push(line);
        for (const listener of listeners) listener(line);
      }
    });
  }

  // Resolves with the count-th log line (already logged or still to come) matching pattern.
  function waitForLog(pattern, timeoutMs = 10_000, { count = 1 } = {}) {
    const matching = () => lines.filter(line => pattern.test(line));
    if (matching().length >= count) return Promise.resolve(matching()[count - 1]);
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (error, line) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        listeners.delete(listener);
        if (error) reject(error);
        else resolve(line);
      };
      const listener = () => {
        const found = matching();
        if (found.length >= count) done(null, found[count - 1]);
      };
      const timer = setTimeout(() => done(new Error(
        `voice-broker did not log ${pattern} (${count}x) within ${timeoutMs} ms; its log:\n${tail()}`)), timeoutMs);
      listeners.add(listener);
      exited.then(({ code, signal }) => done(new Error(
        `voice-broker exited (${code ?? signal}) before logging ${pattern}; its log:\n${tail()}`)));
    });
  }

  const tail = (n = 60) => lines.slice(-n).join('\n');

  let stopped = null;
  let crashed = false;
  // SIGKILL: the server vanishes without a word, as after a crash or a lost machine. The
  // sanitizers get no say then, and stop() afterwards only cleans up.
  async function crash() {
    crashed = true;
    child.kill('SIGKILL');
    await exited;
  }

  // SIGTERM, a bounded wait for the graceful exit, then the sanitizers' verdict.
  function stop() {
    stopped ??= (async () => {
      if (crashed) {
        await exited;
        fs.rmSync(workDir, { recursive: true, force: true });
        return;
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      let timer;
      const outcome = await Promise.race([
        exited,
        new Promise(resolve => { timer = setTimeout(() => resolve(null), STOP_TIMEOUT_MS); }),
      ]);
      clearTimeout(timer);
      fs.rmSync(workDir, { recursive: true, force: true });
      if (outcome === null) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`voice-broker did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM; its log:\n${tail()}`);
      }
      const report = lines.findIndex(line => SANITIZER_REPORT.test(line));
      if (report >= 0) throw new Error(`sanitizer report from voice-broker:\n${lines.slice(report, report + 80).join('\n')}`);
      if (outcome.code !== 0) {
        throw new Error(`voice-broker exited with ${outcome.code ?? outcome.signal} after SIGTERM; its log:\n${tail()}`);
      }
    })();
    return stopped;
  }

  try {
    const line = await waitForLog(/listening on http:\/\/127\.0\.0\.1:(\d+)/, START_TIMEOUT_MS);
    const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)[1]);
    const url = `http://127.0.0.1:${port}`;
    return { url, port, lines, tail, waitForLog, stop, crash };
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    fs.rmSync(workDir, { recursive: true, force: true });
    throw error;
  }
}

// The broker's JSON API, for the test's own questions (stats) and the operator's actions.
export async function api(broker, action, { method = 'GET', headers = {} } = {}) {
  const response = await fetch(`${broker.url}/api/session?action=${action}`, {
    method, headers, signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, body: await response.json() };
}
