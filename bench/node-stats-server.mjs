// Figure 3's anchors: a bare Node `https` server and an Express server that answer
// GET /api/session?action=stats with the same JSON document voice-broker builds (same fields,
// same order, built afresh for every request).
//
//   node node-stats-server.mjs --mode bare|express --port P --cert F --key F
//
// Prints {"listening":PORT} when ready.
import fs from 'node:fs';
import https from 'node:https';
import express from 'express';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => (a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs), []),
);
const tls = { cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) };
const startedAt = Date.now();

function statsDocument() {
  return {
    activeSessions: 0,
    maxConcurrentUsers: 1,
    maxQueueLength: 50,
    queueLength: 0,
    sessionDurationMinutes: 5.0,
    sessions: [],
    today: { estimatedCostUsd: 0.0, minutesUsed: 0.0, sessionsCompleted: 0, sessionsStarted: 0 },
    uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
  };
}

let handler;
if (args.mode === 'express') {
  const app = express();
  app.get('/api/session', (req, res) => {
    if (req.query.action !== 'stats') return res.status(400).json({ error: { code: 'unknown_action' } });
    res.set('Cache-Control', 'no-store').json(statsDocument());
  });
  handler = app;
} else if (args.mode === 'bare') {
  handler = (req, res) => {
    const url = new URL(req.url, 'https://localhost');
    if (url.pathname !== '/api/session' || url.searchParams.get('action') !== 'stats') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return res.end('{"error":{"code":"not_found"}}');
    }
    const body = JSON.stringify(statsDocument());
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };
} else {
  throw new Error('--mode bare|express');
}

const server = https.createServer(tls, handler);
server.keepAliveTimeout = 60_000;
server.listen(Number(args.port ?? 0), '127.0.0.1', () => console.log(JSON.stringify({ listening: server.address().port })));
process.on('SIGTERM', () => process.exit(0));
