// Live updates for one ticket: the WebSocket push channel with heartbeats. When the socket drops,
// it reconnects with jittered back-off and the same ticket (the server keeps the place), and
// polls over HTTP meanwhile, so no update and no admission is missed.
import * as api from './api.js';

const HEARTBEAT_MS = 10_000;
const POLL_MS = 2_500;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 15_000;
// 1012 "service restart": another instance is ready for us, so come back at once (spread over a
// quarter second, so that a restart does not bring every visitor back in the same millisecond).
const SERVICE_RESTART = 1012;
const RESTART_SPREAD_MS = 250;
const LOST_TICKET = new Set(['unknown_ticket', 'missing_ticket']);

// "Equal jitter": half the exponential step for sure, the other half at random.
export function backoff(attempt, random = Math.random) {
  const step = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

export class LiveChannel {
  // onMessage gets the server's messages ({type:'status'|'warning'|'ended'|'error', ...}), whether
  // they came over the socket or from polling. onLink gets 'live' (socket open), 'reconnecting'
  // (socket down, trying again; HTTP answers or has not failed yet) or 'unreachable' (nothing
  // answers), each only when it changes.
  constructor(ticket, { onMessage, onLink }) {
    this.ticket = ticket;
    this.onMessage = onMessage;
    this.onLinkChange = onLink;
    this.link = null;
    this.socket = null;
    this.closed = false;
    this.reconnectAttempts = 0;
    this.pollFailures = 0;
    this.polling = false;
    this.timers = {};
    this.onOnline = () => this.reconnectNow();
  }

  open() {
    this.connect();
    this.timers.heartbeat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
    window.addEventListener('online', this.onOnline);
  }

  close() {
    this.closed = true;
    clearInterval(this.timers.heartbeat);
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.poll);
    window.removeEventListener('online', this.onOnline);
    this.socket?.close(1000);
  }

  get live() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  setLink(link) {
    if (this.closed || link === this.link) return;
    this.link = link;
    this.onLinkChange(link);
  }

  // Also sent at once on admission: the server keeps the slot only for a visitor who confirms.
  heartbeat() {
    if (this.closed) return;
    if (this.live) {
      this.socket.send(JSON.stringify({ type: 'heartbeat' }));
      return;
    }
    api.heartbeat().then(doc => this.deliver({ type: 'status', ...doc }), () => {
      // A failed heartbeat is reported by the polling loop, which runs whenever the socket is down.
    });
  }

  connect() {
    clearTimeout(this.timers.reconnect);
    const socket = new WebSocket(api.liveChannelUrl(this.ticket));
    this.socket = socket;
    socket.addEventListener('open', () => {
      if (socket !== this.socket) return;
      this.reconnectAttempts = 0;
      this.stopPolling();
      this.setLink('live');
    });
    socket.addEventListener('message', event => {
      try {
        this.deliver(JSON.parse(event.data));
      } catch {
        console.warn('live channel: ignoring a message that is not JSON');
      }
    });
    socket.addEventListener('close', event => {
      if (this.closed || socket !== this.socket) return;
      this.socket = null;
      if (this.link !== 'unreachable') this.setLink('reconnecting');
      const delay = event.code === SERVICE_RESTART && this.reconnectAttempts === 0
        ? Math.random() * RESTART_SPREAD_MS
        : backoff(this.reconnectAttempts);
      this.reconnectAttempts++;
      this.timers.reconnect = setTimeout(() => this.connect(), delay);
      this.startPolling();
    });
  }

  // The browser says the network is back: no reason to sit out the rest of a long back-off.
  reconnectNow() {
    if (this.closed || this.socket) return;
    this.reconnectAttempts = 0;
    this.connect();
  }

  startPolling() {
    if (this.polling) return;
    this.polling = true;
    this.poll();
  }

  stopPolling() {
    this.polling = false;
    this.pollFailures = 0;
    clearTimeout(this.timers.poll);
  }

  async poll() {
    try {
      const doc = await api.status();
      if (!this.polling) return;
      this.pollFailures = 0;
      this.setLink('reconnecting');
      this.deliver({ type: 'status', ...doc });
    } catch (error) {
      if (!this.polling) return;
      if (LOST_TICKET.has(error.code)) {
        this.deliver({ type: 'error', error: { code: error.code, message: error.message } });
        return;
      }
      this.pollFailures++;
      if (error.unreachable) this.setLink('unreachable');
    }
    if (this.closed || !this.polling) return;
    const delay = this.pollFailures ? backoff(this.pollFailures) : POLL_MS;
    this.timers.poll = setTimeout(() => this.poll(), delay);
  }

  deliver(message) {
    if (!this.closed) this.onMessage(message);
  }
}
