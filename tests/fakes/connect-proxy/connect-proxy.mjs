#!/usr/bin/env node
// connect-proxy: a tiny HTTP CONNECT proxy for tests (Node's http module only).  It tunnels only
// to loopback (127.0.0.1, ::1, localhost) and refuses anything else with 403, so a test can never
// send a byte elsewhere.  Usage:
//   node connect-proxy.mjs --port 0 [--auth user:password]
// Prints {"listening":PORT} when ready, then one JSON line per CONNECT:
//   {"connect":"127.0.0.1:4567","status":200}   (407 without the right credentials, 403 off loopback)
// SIGTERM closes it.
import http from 'node:http';
import net from 'node:net';

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const port = Number(arg('--port') ?? 0);
const auth = arg('--auth');
const expected = auth ? `Basic ${Buffer.from(auth).toString('base64')}` : null;
const loopback = new Set(['127.0.0.1', '::1', 'localhost']);
const sockets = new Set();

const server = http.createServer((req, res) => {
  res.writeHead(405, { 'content-type': 'text/plain' });
  res.end('CONNECT only\n');
});
server.on('connection', (s) => {
  sockets.add(s);
  s.on('close', () => sockets.delete(s));
});
server.on('connect', (req, client, head) => {
  const target = req.url ?? '';
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  const report = (status) => process.stdout.write(`${JSON.stringify({ connect: target, status })}\n`);
  if (expected && req.headers['proxy-authorization'] !== expected) {
    report(407);
    client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  if (!m || !loopback.has(m[1])) {
    report(403);
    client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const upstream = net.connect({ host: m[1] === 'localhost' ? '127.0.0.1' : m[1], port: Number(m[2]) }, () => {
    report(200);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head && head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  sockets.add(upstream);
  upstream.on('close', () => sockets.delete(upstream));
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});
const stop = () => {
  for (const s of sockets) s.destroy();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
