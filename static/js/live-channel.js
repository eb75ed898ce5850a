// Live updates for one ticket: the WebSocket push channel with heartbeats, and HTTP polling while
// the socket is down (it reconnects with back-off).
import * as api from './api.js';

const HEARTBEAT_MS = 10_000;
const POLL_MS = 2_500;
const MAX_BACKOFF_MS = 15_000;
const LOST_TICKET = new Set(['unknown_ticket', 'missing_ticket']);

const backoff = attempt => Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt) * (0.75 + Math.random() / 2);

export class LiveChannel {
  // onMessage gets the server's messages ({type:'status'|'warning'|'ended'|'error', ...}), whether
  // they came over the socket or from polling; onLink gets 'live' (socket open), 'polling'
  // (socket down, HTTP answers) or 'unreachable' (nothing answers: the server is restarting).
  constructor(ticket, { onMessage, onLink }) {
    this.ticket = ticket;
    this.onMessage = onMessage;
    this.onLink = onLink;
    this.socket = null;
    this.closed = false;
    this.reconnectAttempts = 0;
    this.pollFailures = 0;
    this.timers = {};
  }

  open() {
    this.connect();
    this.timers.heartbeat = setInterval(() => this.heartbeat(), HEARTBEAT_MS);
  }

  close() {
    this.closed = true;
    clearInterval(this.timers.heartbeat);
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.poll);
    this.socket?.close(1000);
  }

  get live() {
    return this.socket?.readyState === WebSocket.OPEN;
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
    const socket = new WebSocket(api.liveChannelUrl(this.ticket));
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.reconnectAttempts = 0;
      clearTimeout(this.timers.poll);
      this.onLink('live');
    });
    socket.addEventListener('message', event => {
      try {
        this.deliver(JSON.parse(event.data));
      } catch {
        console.warn('live channel: ignoring a message that is not JSON');
      }
    });
    socket.addEventListener('close', () => {
      if (this.closed || socket !== this.socket) return;
      this.socket = null;
      this.timers.reconnect = setTimeout(() => this.connect(), backoff(this.reconnectAttempts++));
      clearTimeout(this.timers.poll);
      this.poll();
    });
  }

  async poll() {
    try {
      const doc = await api.status();
      this.pollFailures = 0;
      if (!this.closed && !this.live) this.onLink('polling');
      this.deliver({ type: 'status', ...doc });
    } catch (error) {
      if (LOST_TICKET.has(error.code)) {
        this.deliver({ type: 'error', error: { code: error.code, message: error.message } });
        return;
      }
      this.pollFailures++;
      if (!this.closed && !this.live) this.onLink(error.unreachable ? 'unreachable' : 'polling');
    }
    if (this.closed || this.live) return;
    const delay = this.pollFailures ? backoff(this.pollFailures) : POLL_MS;
    this.timers.poll = setTimeout(() => this.poll(), delay);
  }

  deliver(message) {
    if (!this.closed) this.onMessage(message);
  }
}
