#!/usr/bin/env node
// A tiny WebSocket client for tests/deploy/nginx.sh: opens URL, prints the first message the
// server pushes, and exits 0 when it is a {"type":"<expected>"} JSON object (1 otherwise,
// 2 on a time-out).
//
//   node ws-client.js URL [--ca FILE] [--origin ORIGIN] [--local-address IP]
//                         [--resolve-to IP] [--expect-type status] [--timeout-ms 10000]
//                         [--hold-ms N]
//
// --hold-ms keeps the connection after the first message, printing every further message and
// finally `close <code> <reason>`, until the server closes it (exit 0) or N ms pass (exit 3).
//
// --resolve-to connects to IP whatever the URL's host name (like curl --resolve), while TLS
// still checks the certificate against the name.
'use strict';

const fs = require('fs');
const WebSocket = require('ws');

const args = process.argv.slice(2);
const url = args.shift();
const options = {
  caFile: null, origin: null, localAddress: null, resolveTo: null, expectType: 'status', timeoutMs: 10000,
  holdMs: 0,
};
while (args.length) {
  const flag = args.shift();
  const value = args.shift();
  if (flag === '--ca') options.caFile = value;
  else if (flag === '--origin') options.origin = value;
  else if (flag === '--local-address') options.localAddress = value;
  else if (flag === '--resolve-to') options.resolveTo = value;
  else if (flag === '--expect-type') options.expectType = value;
  else if (flag === '--timeout-ms') options.timeoutMs = Number(value);
  else if (flag === '--hold-ms') options.holdMs = Number(value);
  else {
    console.error(`unknown option ${flag}`);
    process.exit(64);
  }
}
if (!url) {
  console.error('usage: ws-client.js URL [options]');
  process.exit(64);
}

function fixedLookup(address) {
  const family = address.includes(':') ? 6 : 4;
  return (_host, lookupOptions, callback) => {
    if (typeof lookupOptions === 'function') return lookupOptions(null, address, family);
    if (lookupOptions && lookupOptions.all) return callback(null, [{ address, family }]);
    return callback(null, address, family);
  };
}

const socket = new WebSocket(url, {
  ca: options.caFile ? fs.readFileSync(options.caFile) : undefined,
  origin: options.origin || undefined,
  localAddress: options.localAddress || undefined,
  lookup: options.resolveTo ? fixedLookup(options.resolveTo) : undefined,
  handshakeTimeout: options.timeoutMs,
});

const timer = setTimeout(() => {
  console.error(`no message within ${options.timeoutMs} ms`);
  process.exit(2);
}, options.timeoutMs);

socket.on('unexpected-response', (_request, response) => {
  console.error(`upgrade refused: HTTP ${response.statusCode}`);
  process.exit(1);
});
socket.on('error', (error) => {
  console.error(`websocket error: ${error.message}`);
  process.exit(1);
});
let first = true;
socket.on('message', (data) => {
  const text = data.toString();
  console.log(text);
  if (!first) return;
  first = false;
  clearTimeout(timer);
  let message;
  try {
    message = JSON.parse(text);
  } catch (error) {
    console.error(`not JSON: ${error.message}`);
    process.exit(1);
  }
  const ok = message && message.type === options.expectType;
  if (options.holdMs > 0 && ok) {
    socket.on('close', (code, reason) => {
      console.log(`close ${code} ${reason.toString()}`);
      process.exit(0);
    });
    setTimeout(() => {
      console.error(`still open after ${options.holdMs} ms`);
      process.exit(3);
    }, options.holdMs);
    return;
  }
  socket.close(1000);
  socket.on('close', () => process.exit(ok ? 0 : 1));
  setTimeout(() => process.exit(ok ? 0 : 1), 2000).unref();
});
