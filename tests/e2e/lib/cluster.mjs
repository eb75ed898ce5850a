// Several brokers in redis mode behind a real nginx, for one scenario: a private redis-server
// (Debian's, on a unix socket in a temp folder), N brokers sharing it with a key prefix of their
// own, and nginx with an upstream of the N (no sticky sessions, the WebSocket proxying of
// nginx.example.conf). Everything listens on 127.0.0.1 or a socket file, and is stopped by pid.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startFakeOpenAI } from '../../fakes/fake-openai/server.mjs';
import { ADMIN_TOKEN, startBroker } from './broker.mjs';
import { launchVisitor } from './browser.mjs';
import { OPENAI_KEY } from './scenario.mjs';

const REDIS_SERVER = '/usr/bin/redis-server';
const NGINX = '/usr/sbin/nginx';
const START_TIMEOUT_MS = 15_000;

// Resolves when `child`'s output (or the file `logFile`) shows `pattern`; rejects at the timeout or
// when the child exits first.
function waitForOutput(child, pattern, read, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = error => {
      if (done) return;
      done = true;
      clearInterval(poll);
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    };
    const check = () => { if (pattern.test(read())) finish(); };
    // redis and nginx log to files or announce nothing: their readiness is read every 20 ms.
    const poll = setInterval(check, 20);
    const timer = setTimeout(() => finish(new Error(`${what} did not start within ${timeoutMs} ms:\n${read()}`)), timeoutMs);
    child.once('exit', (code, signal) => finish(new Error(`${what} exited (${code ?? signal}) while starting:\n${read()}`)));
    check();
  });
}

async function stopChild(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise(resolve => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-e2e-redis-'));
  const socket = path.join(dir, 'redis.sock');
  fs.writeFileSync(path.join(dir, 'redis.conf'), [
    'port 0', `unixsocket ${socket}`, 'unixsocketperm 700', `dir ${dir}`, 'save ""', 'appendonly no',
    `logfile ${path.join(dir, 'redis.log')}`,
  ].join('\n'));
  const child = spawn(REDIS_SERVER, [path.join(dir, 'redis.conf')], { cwd: dir, stdio: 'ignore' });
  const log = () => { try { return fs.readFileSync(path.join(dir, 'redis.log'), 'utf8'); } catch { return ''; } };
  await waitForOutput(child, /ready to accept connections/i, log, START_TIMEOUT_MS, 'redis-server');
  return {
    url: `unix://${socket}`,
    async stop() {
      await stopChild(child, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// The HTTPS server block of nginx.example.conf, on plain HTTP (http://127.0.0.1 is a secure
// context, so the page may use the microphone), with an upstream of every instance.
function nginxConfig(dir, port, upstreams) {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    map $http_upgrade $voice_broker_connection {
        default upgrade;
        ''      '';
    }
    upstream voice_broker {
${upstreams.map(p => `        server 127.0.0.1:${p};`).join('\n')}
        keepalive 16;
    }
    server {
        listen 127.0.0.1:${port};
        client_max_body_size 64k;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $voice_broker_connection;
        proxy_connect_timeout 5s;
        proxy_read_timeout 60s;
        proxy_send_timeout 60s;
        location = /api/session/ws {
            proxy_pass http://voice_broker;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }
        location /api/ {
            proxy_pass http://voice_broker;
            proxy_buffering off;
        }
        location = /metrics {
            return 404;
        }
        location / {
            proxy_pass http://voice_broker;
        }
    }
}
`;
}

export async function startNginx(upstreams) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vb-e2e-nginx-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'nginx.conf'), nginxConfig(dir, port, upstreams));
  const child = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { cwd: dir, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  let answering = false;
  const probe = setInterval(() => {
    fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) }).then(() => { answering = true; }, () => {});
  }, 50);
  try {
    await waitForOutput(child, /./, () => (answering ? 'up' : ''), START_TIMEOUT_MS, 'nginx');
  } finally {
    clearInterval(probe);
  }
  return {
    url,
    async stop() {
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// How many live channels an instance holds right now (its /metrics gauge).
export async function websocketClients(broker) {
  const text = await (await fetch(`${broker.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find(l => l.startsWith('voice_broker_websocket_clients '));
  return Number(line?.split(' ')[1] ?? NaN);
}

// The world of one cluster scenario: redis, the fake OpenAI, `instances` brokers with the same
// settings (and a prefix of their own), nginx in front, the visitors; torn down in reverse order
// whatever happened. Every broker still running at the end is stopped with SIGTERM and must exit
// 0 without a sanitizer report.
export async function runClusterScenario({ instances = 2, broker: settings = {} }, body) {
  const redis = await startRedis();
  const fake = await startFakeOpenAI({ realKey: OPENAI_KEY });
  const brokers = [];
  const visitors = [];
  let nginx = null;
  let failed = null;
  try {
    const prefix = `e2e-${process.pid}-${Date.now()}`;
    for (let i = 0; i < instances; i++) {
      brokers.push(await startBroker({
        ADMIN_TOKEN,
        OPENAI_API_KEY: OPENAI_KEY,
        OPENAI_BASE_URL: fake.url,
        STATE_STORE: 'redis',
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: prefix,
        INSTANCE_ID: `e2e-${i + 1}`,
        TRUSTED_PROXIES: '127.0.0.1',
        ...settings,
      }));
    }
    nginx = await startNginx(brokers.map(b => b.port));
    await body({
      fake,
      brokers,
      nginx,
      async visitor(name, options = {}) {
        const visitor = await launchVisitor(name, options);
        visitors.push(visitor);
        await visitor.page.goto(nginx.url);
        await visitor.page.getByTestId('start-button').waitFor();
        return visitor;
      },
    });
    for (const visitor of visitors) {
      assert.deepEqual(visitor.seen.cspViolations, [], `${visitor.name}: the page broke its own CSP`);
      assert.deepEqual(visitor.seen.problems.filter(p => p.startsWith('page error')), [], `${visitor.name}: uncaught errors in the page`);
    }
  } catch (error) {
    failed = error;
    const parts = [];
    for (const visitor of visitors) {
      const state = await visitor.page.evaluate(() => ({
        state: document.getElementById('state-label')?.dataset.state, history: window.__e2eHistory,
      })).catch(e => ({ unavailable: e.message }));
      parts.push(`visitor ${visitor.name}: ${JSON.stringify(state)}`, `  live channel: ${JSON.stringify(visitor.seen.frames)}`);
    }
    parts.push(`fake OpenAI: ${JSON.stringify(fake.metrics())}`);
    brokers.forEach((b, i) => parts.push(`broker ${i + 1} (last lines):\n${b.lines.slice(-30).join('\n')}`));
    if (error instanceof Error) error.stack = `${error.stack}\n--- diagnostics ---\n${parts.join('\n')}`;
  }
  for (const visitor of visitors) await visitor.close();
  await nginx?.stop();
  for (const b of brokers) {
    try {
      await b.stop();
    } catch (error) {
      if (failed instanceof Error) failed.stack += `\n--- and stopping a broker: ${error.message}`;
      else failed ??= error;
    }
  }
  await fake.close();
  await redis.stop();
  if (failed) throw failed;
}
