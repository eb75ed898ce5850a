#!/usr/bin/env node
// A visitor's live channel that behaves like the page's (static/js/live-channel.js): it keeps
// the WebSocket open with the visitor's ticket and, when the server closes it, reconnects with
// the same ticket (at once after 1012 "service restart", with a growing back-off otherwise).
// For tests/deploy/docker-scale.sh: a rolling restart must leave it with its place.
//
//   node ws-visitor.js URL TICKET [--max-ms 300000] [--origin ORIGIN]
//
// Prints one line per event, for the test to read:
//   open <n>                  the n-th connection is open
//   <json>                    every message the server pushes
//   close <code> <reason>     the server (or the network) closed the connection
//   gave-up <reason>          an "ended" or an "error" message: the place is gone (exit 1)
// On SIGTERM (or after --max-ms) it closes the socket and prints
//   summary opens=<n> restarts=<closes with 1012> state=<last state> position=<last position>
// and exits 0.
'use strict';

const WebSocket = require('ws');

const args = process.argv.slice(2);
const base = args.shift();
const ticket = args.shift();
const options = { maxMs: 300000, origin: null };
while (args.length) {
  const flag = args.shift();
  const value = args.shift();
  if (flag === '--max-ms') options.maxMs = Number(value);
  else if (flag === '--origin') options.origin = value;
  else {
    console.error(`unknown option ${flag}`);
    process.exit(64);
  }
}
if (!base || !ticket) {
  console.error('usage: ws-visitor.js URL TICKET [--max-ms N] [--origin ORIGIN]');
  process.exit(64);
}

const url = `${base}${base.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}`;
let opens = 0;
let restarts = 0;
let failures = 0;
let last = { state: '-', position: '-' };
let socket = null;
let stopping = false;
let timer = null;

function connect() {
  timer = null;
  socket = new WebSocket(url, { origin: options.origin || undefined, handshakeTimeout: 5000 });
  socket.on('open', () => {
    opens++;
    failures = 0;
    console.log(`open ${opens}`);
  });
  socket.on('message', (data) => {
    const text = data.toString();
    console.log(text);
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === 'status') {
      last = { state: message.state, position: message.position ?? '-' };
    } else if (message.type === 'ended' || message.type === 'error') {
      console.log(`gave-up ${message.type === 'ended' ? message.reason : message.error?.code}`);
      process.exit(1);
    }
  });
  socket.on('unexpected-response', (_request, response) => {
    console.log(`close http-${response.statusCode} upgrade refused`);
    retry(false);
  });
  socket.on('error', () => {});  // 'close' follows
  socket.on('close', (code, reason) => {
    if (stopping) return;
    console.log(`close ${code} ${reason.toString()}`);
    if (code === 1012) restarts++;
    retry(code === 1012);
  });
}

function retry(serviceRestart) {
  if (stopping || timer) return;
  // Like the page: straight back after a restart (another instance is ready), else back off.
  const delay = serviceRestart ? 50 + Math.random() * 200 : Math.min(2000, 200 * 2 ** failures++);
  timer = setTimeout(connect, delay);
}

function stop() {
  if (stopping) return;
  stopping = true;
  clearTimeout(timer);
  console.log(`summary opens=${opens} restarts=${restarts} state=${last.state} position=${last.position}`);
  if (socket && socket.readyState === WebSocket.OPEN) socket.close(1000);
  setTimeout(() => process.exit(0), 200).unref();
  if (!socket || socket.readyState !== WebSocket.OPEN) process.exit(0);
  socket.on('close', () => process.exit(0));
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, options.maxMs).unref();
connect();
