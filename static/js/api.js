// Client for the broker's HTTP API (/api/session?action=...) and the address of its live channel.
import { language } from './i18n.js';

const SESSION_URL = '/api/session';
let ticket = null;

// Every failed request becomes an ApiError: the broker's {error:{code,message}}, or a code made
// here ('unreachable': the network failed or the broker is restarting; 'http_NNN' without a code).
// `details` is the server's whole error object (budget_exhausted says when it resets).
export class ApiError extends Error {
  constructor({ status = 0, code, message = '', retryAfter = null, details = {} }) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.details = details;
  }

  // Worth asking again soon: no answer, or the server cannot reach its shared store for now.
  get unreachable() {
    return this.code === 'unreachable' || this.code === 'store_unavailable';
  }
}

// The cookie carries the ticket already; the header also works where cookies are blocked.
export function setTicket(value) {
  ticket = value;
}

async function request(action, { method = 'POST', body, contentType } = {}) {
  // The page's language, for a server that wants to tell the assistant which one to speak.
  const headers = { 'X-Visitor-Language': language() };
  if (ticket) headers['X-Session-Ticket'] = ticket;
  if (contentType) headers['Content-Type'] = contentType;
  let response;
  try {
    response = await fetch(`${SESSION_URL}?action=${action}`, {
      method, body, headers, credentials: 'same-origin', cache: 'no-store',
    });
  } catch (cause) {
    throw new ApiError({ code: 'unreachable', message: cause.message });
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

// 502/503/504 mean "the broker is restarting" (a proxy answering for it, or the broker shutting
// down), except for the codes by which the broker names a condition of its own (store_unavailable
// is passing, but the page says it differently).
const NAMED_CODES = /^(queue_full|not_configured|budget_exhausted|paused|store_unavailable|upstream_\w+)$/;

async function errorFrom(response) {
  const retryAfter = Number.parseInt(response.headers.get('Retry-After'), 10) || null;
  const body = await response.json().catch(() => null);
  const details = body?.error ?? {};
  const { code, message } = details;
  const restarting = [502, 503, 504].includes(response.status) && !NAMED_CODES.test(code ?? '');
  return new ApiError({
    status: response.status,
    code: restarting ? 'unreachable' : code ?? `http_${response.status}`,
    message: message ?? response.statusText,
    retryAfter,
    details,
  });
}

const json = response => response.json();

export const join = () => request('join').then(json);
export const status = () => request('status', { method: 'GET' }).then(json);
export const heartbeat = () => request('heartbeat').then(json);
export const leave = () => request('leave').then(json);
// The public numbers (slots in use, queue, session length) the start page explains the wait with.
export const stats = () => request('stats', { method: 'GET' }).then(json);
export const token = () => request('token').then(json);

export const reportCall = callId =>
  request('call', { body: JSON.stringify({ callId }), contentType: 'application/json' }).then(json);

// Relay mode: the broker opens the call with OpenAI and hands back the SDP answer.
export const connect = offerSdp =>
  request('connect', { body: offerSdp, contentType: 'application/sdp' }).then(response => response.text());

export function liveChannelUrl(forTicket) {
  const url = new URL('/api/session/ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('ticket', forTicket);
  return url.href;
}
