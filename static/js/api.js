// Client for the broker's HTTP API (/api/session?action=...) and the address of its live channel.
import { language } from './i18n.js';

const SESSION_URL = '/api/session';
let ticket = null;

// Every failed request becomes an ApiError: the broker's {error:{code,message}}, or a code made
// here ('unreachable': the network failed or the broker is restarting; 'http_NNN' without a code).
export class ApiError extends Error {
  constructor({ status = 0, code, message = '', retryAfter = null }) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  get unreachable() {
    return this.code === 'unreachable';
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
// down), except for the codes by which the broker names a lasting condition.
const LASTING_CODES = /^(queue_full|not_configured|budget_exhausted|paused|upstream_\w+)$/;

async function errorFrom(response) {
  const retryAfter = Number.parseInt(response.headers.get('Retry-After'), 10) || null;
  const body = await response.json().catch(() => null);
  const { code, message } = body?.error ?? {};
  const restarting = [502, 503, 504].includes(response.status) && !LASTING_CODES.test(code ?? '');
  return new ApiError({
    status: response.status,
    code: restarting ? 'unreachable' : code ?? `http_${response.status}`,
    message: message ?? response.statusText,
    retryAfter,
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
