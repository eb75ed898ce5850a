// The console's live feed: the state document pushed over /api/admin/ws. When the socket drops it
// reconnects with jittered back-off and polls GET /api/admin/state meanwhile, so the view never
// goes stale silently. A 4401 close or a 401 answer means the login is over.
import * as api from './admin-api.js';

const POLL_MS = 2_500;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 15_000;
const LOGIN_ENDED = 4401;

// "Equal jitter": half the exponential step for sure, the other half at random.
export function backoff(attempt, random = Math.random) {
  const step = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return step / 2 + random() * (step / 2);
}

export class AdminChannel {
  // onState(doc) gets every state document; onLink('live' | 'polling' | 'offline') each change of
  // the link; onSignedOut() once, when the server says the login is over.
  constructor({ onState, onLink, onSignedOut }) {
    Object.assign(this, { onState, onLink, onSignedOut });
    this.socket = null;
    this.link = null;
    this.closed = false;
    this.attempts = 0;
    this.polling = false;
    this.timers = {};
    this.onOnline = () => this.reconnectNow();
  }

  open() {
    this.connect();
    window.addEventListener('online', this.onOnline);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timers.reconnect);
    clearTimeout(this.timers.poll);
    window.removeEventListener('online', this.onOnline);
    this.socket?.close(1000);
    this.socket = null;
  }

  setLink(link) {
    if (this.closed || link === this.link) return;
    this.link = link;
    this.onLink(link);
  }

  signedOut() {
    if (this.closed) return;
    this.close();
    this.onSignedOut();
  }

  connect() {
    clearTimeout(this.timers.reconnect);
    const socket = new WebSocket(api.channelUrl());
    this.socket = socket;
    socket.addEventListener('open', () => {
      if (socket !== this.socket) return;
      this.attempts = 0;
      this.polling = false;
      clearTimeout(this.timers.poll);
      this.setLink('live');
    });
    socket.addEventListener('message', event => {
      if (socket !== this.socket || this.closed) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'state') this.onState(message);
    });
    socket.addEventListener('close', event => {
      if (this.closed || socket !== this.socket) return;
      this.socket = null;
      if (event.code === LOGIN_ENDED) {
        this.signedOut();
        return;
      }
      this.timers.reconnect = setTimeout(() => this.connect(), backoff(this.attempts++));
      this.startPolling();
    });
  }

  reconnectNow() {
    if (this.closed || this.socket) return;
    this.attempts = 0;
    this.connect();
  }

  startPolling() {
    if (this.polling) return;
    this.polling = true;
    this.poll(0);
  }

  // A refused handshake looks like any other close to the page; the poll tells them apart.
  async poll(failures) {
    let next = failures;
    try {
      const doc = await api.state();
      if (!this.polling || this.closed) return;
      next = 0;
      this.setLink('polling');
      this.onState(doc);
    } catch (error) {
      if (!this.polling || this.closed) return;
      if (error.status === 401 || error.status === 403) {
        this.signedOut();
        return;
      }
      next = failures + 1;
      this.setLink('offline');
    }
    this.timers.poll = setTimeout(() => this.poll(next), next ? backoff(next) : POLL_MS);
  }
}
