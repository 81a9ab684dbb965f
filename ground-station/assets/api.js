// HTTP and WebSocket access to the console API. The session cookie is HttpOnly; the CSRF token from
// /api/session or /api/login goes in X-CSRF-Token on every state-changing request.

let csrfToken = null;

/** Remembers the CSRF token of the current session. */
export function setCsrf(token) {
  csrfToken = token;
}

/** An API error with the HTTP status and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls `/api${path}` and returns the decoded JSON (or null for 204). Throws ApiError on 4xx/5xx. */
export async function api(method, path, body) {
  const options = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrfToken) options.headers['X-CSRF-Token'] = csrfToken;
  const response = await fetch(`/api${path}`, options);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== '/login') {
      window.dispatchEvent(new CustomEvent('patrol:unauthenticated'));
    }
    throw new ApiError(response.status, (data && data.error) || String(data));
  }
  return data;
}

/**
 * Opens the live WebSocket and keeps it open (reconnecting with backoff). Every update is dispatched as a
 * `patrol:live` event on window; `onState` hears 'open' / 'closed'. Returns a function that closes it for good.
 */
export function openLive(onState) {
  let socket = null;
  let stopped = false;
  let delayMs = 500;
  const connect = () => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/api/live`);
    socket.onopen = () => {
      delayMs = 500;
      onState('open');
    };
    socket.onmessage = (event) => {
      let update;
      try {
        update = JSON.parse(event.data);
      } catch {
        return;
      }
      window.dispatchEvent(new CustomEvent('patrol:live', { detail: update }));
    };
    socket.onclose = () => {
      onState('closed');
      if (stopped) return;
      setTimeout(connect, delayMs);
      delayMs = Math.min(delayMs * 2, 15000);
    };
  };
  connect();
  return () => {
    stopped = true;
    if (socket) socket.close();
  };
}
