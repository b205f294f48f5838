// api.js - the console's only way to the server: fetch on the same origin,
// with the admin key (kept in session storage, so it lives as long as the
// tab) sent as a bearer token. Errors become ApiError with the server's
// OpenAI-shaped message; a 401 also tells the shell to ask for the key.

const KEY = 'genaiops.adminKey';

export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

export function adminKey() {
  try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
}

export function setAdminKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  } catch { /* storage disabled: the key lasts until the page reloads */ }
}

// A query string from an object: empty, null and undefined values are left
// out; arrays repeat the key. Returns '' or '?a=1&b=2'.
export function qs(params = {}) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, String(x)));
    else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// fetch with the key; returns the Response whatever its status (for the
// callers that need headers, such as the playground).
export async function apiFetch(path, { method = 'GET', body, signal, headers = {} } = {}) {
  const h = { accept: 'application/json', ...headers };
  const key = adminKey();
  if (key) h.authorization = `Bearer ${key}`;
  let payload;
  if (body !== undefined) {
    h['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server cannot be reached (${e.message})`, 'network');
  }
  if (res.status === 401) window.dispatchEvent(new CustomEvent('genaiops:unauthorized'));
  return res;
}

// The error of a failed response, from its OpenAI-shaped body when it has one.
export async function responseError(res) {
  let msg = `${res.status} ${res.statusText}`;
  let code = null;
  let param = null;
  try {
    const j = await res.json();
    const e = j && (j.error || j);
    if (e && typeof e.message === 'string') msg = e.message;
    if (e && e.code) code = e.code;
    if (e && e.param) param = e.param;
  } catch { /* not JSON */ }
  return new ApiError(res.status, msg, code, param);
}

// JSON in, JSON out; throws ApiError for any status >= 400.
export async function api(path, opts = {}) {
  const res = await apiFetch(path, opts);
  if (!res.ok) throw await responseError(res);
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}
