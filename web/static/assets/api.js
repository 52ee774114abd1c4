// The gateway's HTTP API: the session (the only thing kept in browser
// storage: the sign-in token, in sessionStorage, gone when the tab
// closes), FHIR requests, uploads with progress, and errors in plain words.

const SESSION_KEY = 'fhirgate.session';

export function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (s && s.token && s.expiresAt > Date.now() + 5000) return s;
  } catch { /* no session */ }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

export function saveSession(s) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** ApiError carries a message a patient understands (friendly) and the server's own words (detail). */
export class ApiError extends Error {
  constructor(status, friendly, detail, body) {
    super(friendly);
    this.status = status;
    this.friendly = friendly;
    this.detail = detail || '';
    this.body = body;
  }
}

export function outcomeText(body) {
  if (body && body.resourceType === 'OperationOutcome' && Array.isArray(body.issue)) {
    return body.issue.map((i) => i.diagnostics || i.details?.text || i.code).filter(Boolean).join('; ');
  }
  if (body && typeof body.error === 'string') return body.error;
  return '';
}

export function friendlyStatus(status) {
  switch (true) {
    case status === 0:
      return 'The gateway cannot be reached. Check your connection and try again.';
    case status === 401:
      return 'Your session has ended. Please sign in again.';
    case status === 403:
      return 'You do not have permission to do this.';
    case status === 404 || status === 410:
      return 'This record was not found. It may have been removed, or it is not shared with you.';
    case status === 409 || status === 412:
      return 'Someone changed this record at the same time. Reload the page and try again.';
    case status === 413:
      return 'This is too large to send. Choose a smaller file.';
    case status === 400 || status === 422:
      // The server's own words (detail) stay under "Technical details".
      return 'Some of the information could not be accepted. Please check the form.';
    case status === 429:
      return 'Too many requests at once. Wait a moment and try again.';
    case status >= 500:
      return 'The gateway had a problem and could not finish. Please try again in a moment.';
  }
  return 'Something went wrong. Please try again.';
}

let onUnauthorized = () => {};
export const setUnauthorizedHandler = (fn) => { onUnauthorized = fn; };

async function parseBody(res) {
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return text; }
}

/**
 * request sends a request to the gateway. opts: method, body (object: JSON),
 * token, headers, raw (return {status, headers, text}). Throws ApiError.
 */
export async function request(path, opts = {}) {
  const headers = { Accept: 'application/fhir+json, application/json', ...(opts.headers || {}) };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['Content-Type'] = opts.contentType || 'application/fhir+json';
  }
  let res;
  try {
    res = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch {
    throw new ApiError(0, friendlyStatus(0), 'network error');
  }
  if (opts.raw) return { status: res.status, headers: res.headers, text: await res.text() };
  const data = await parseBody(res);
  if (!res.ok && !(opts.accept || []).includes(res.status)) {
    const detail = outcomeText(data);
    if (res.status === 401 && opts.token) onUnauthorized(detail);
    throw new ApiError(res.status, friendlyStatus(res.status), detail, data);
  }
  return opts.withStatus ? { status: res.status, data, headers: res.headers } : data;
}

/** FHIR is a FHIR client bound to a session token (and optional extra headers). */
export class FHIR {
  constructor(token, headers = {}) {
    this.token = token;
    this.headers = headers;
  }
  get(path, opts = {}) {
    return request(`/fhir/${path}`, { token: this.token, headers: this.headers, ...opts });
  }
  async search(path) {
    const b = await this.get(path);
    return (b.entry || []).filter((e) => e.search?.mode !== 'outcome' && e.resource).map((e) => e.resource);
  }
  /** searchPost searches with the parameters in a form body (POST [type]/_search), keeping them out of URLs. */
  async searchPost(type, params) {
    const b = await request(`/fhir/${type}/_search`, {
      method: 'POST', token: this.token, headers: this.headers,
      body: new URLSearchParams(params).toString(), contentType: 'application/x-www-form-urlencoded',
    });
    return (b.entry || []).filter((e) => e.search?.mode !== 'outcome' && e.resource).map((e) => e.resource);
  }
  create(type, resource) {
    return request(`/fhir/${type}`, { method: 'POST', body: resource, token: this.token, headers: this.headers });
  }
  update(resource, versionId) {
    const headers = { ...this.headers };
    if (versionId) headers['If-Match'] = `W/"${versionId}"`;
    return request(`/fhir/${resource.resourceType}/${resource.id}`, { method: 'PUT', body: resource, token: this.token, headers });
  }
}

/**
 * upload POSTs a JSON body with XMLHttpRequest so that the upload progress
 * can be shown: onProgress(fraction 0..1). Resolves with the parsed answer.
 */
export function upload(path, bodyText, token, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/fhir+json');
    xhr.setRequestHeader('Accept', 'application/fhir+json');
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, friendlyStatus(0), 'network error'));
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(data);
      } else {
        const detail = outcomeText(data);
        if (xhr.status === 401) onUnauthorized(detail);
        reject(new ApiError(xhr.status, friendlyStatus(xhr.status), detail, data));
      }
    };
    xhr.send(bodyText);
  });
}

let wellKnownCache;
/** wellKnown is GET /.well-known/fhirgate: the chain, its RPC URL and the contracts. */
export function wellKnown() {
  if (!wellKnownCache) {
    wellKnownCache = request('/.well-known/fhirgate').catch((e) => {
      wellKnownCache = undefined;
      throw e;
    });
  }
  return wellKnownCache;
}
