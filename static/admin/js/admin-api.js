// Client for the admin API (/api/admin/..., docs/API.md "Admin API"). The login lives in the
// HttpOnly cookie the server sets; this page never holds the token after sending it once.

// A failed request: the server's {error:{code,message}}, or 'unreachable' when nothing answered.
export class AdminError extends Error {
  constructor({ status = 0, code, message = '', retryAfter = null }) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function request(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    // Same origin: the browser sends Origin on POST and PUT, which the server checks.
    response = await fetch(`/api/admin/${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin', cache: 'no-store',
    });
  } catch (cause) {
    throw new AdminError({ code: 'unreachable', message: cause.message });
  }
  const json = await response.json().catch(() => null);
  if (response.ok && json) return json;
  throw new AdminError({
    status: response.status,
    code: json?.error?.code ?? (response.ok ? 'bad_response' : `http_${response.status}`),
    message: json?.error?.message ?? response.statusText,
    retryAfter: Number.parseInt(response.headers.get('Retry-After'), 10) || null,
  });
}

const id = value => encodeURIComponent(value);

// {signedIn, expiresInSeconds}: whether this browser's cookie is a live login.
export const whoami = () => request('login');
export const login = token => request('login', { method: 'POST', body: { token } });
export const logout = () => request('logout', { method: 'POST' });
export const state = () => request('state');
export const endSession = sessionId => request(`sessions/${id(sessionId)}/end`, { method: 'POST' });
export const endAll = () => request('end-all', { method: 'POST' });
export const removeEntry = entryId => request(`queue/${id(entryId)}/remove`, { method: 'POST' });
export const pause = () => request('pause', { method: 'POST' });
export const resume = () => request('resume', { method: 'POST' });
export const setLimits = limits => request('limits', { method: 'PUT', body: limits });

export function channelUrl() {
  const url = new URL('/api/admin/ws', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}
