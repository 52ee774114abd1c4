// Finds the exact bytes of values inside a JSON text, so that a resource
// inside a search Bundle can be hashed as the gateway served it (the
// stored canonical bytes are embedded unchanged) without fetching it again.

function skipWS(s, i) {
  while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  return i;
}

function endOfString(s, i) {
  // s[i] === '"'
  for (i++; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i + 1;
  }
  throw new Error('unterminated string');
}

/** endOfValue returns the index just after the JSON value starting at i (after white space). */
export function endOfValue(s, i) {
  i = skipWS(s, i);
  const c = s[i];
  if (c === '"') return endOfString(s, i);
  if (c === '{' || c === '[') {
    const close = c === '{' ? '}' : ']';
    i = skipWS(s, i + 1);
    if (s[i] === close) return i + 1;
    for (;;) {
      if (c === '{') {
        i = endOfString(s, skipWS(s, i));
        i = skipWS(s, i);
        if (s[i] !== ':') throw new Error('expected :');
        i++;
      }
      i = skipWS(s, endOfValue(s, i));
      if (s[i] === ',') { i++; continue; }
      if (s[i] === close) return i + 1;
      throw new Error('expected , or ' + close);
    }
  }
  const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(s.slice(i, i + 400));
  if (!m) throw new Error('bad value at ' + i);
  return i + m[0].length;
}

/** members lists an object's members: [{key, start, end}] with the value's span. */
export function members(s, i = 0) {
  i = skipWS(s, i);
  if (s[i] !== '{') throw new Error('not an object');
  const out = [];
  i = skipWS(s, i + 1);
  if (s[i] === '}') return out;
  for (;;) {
    const ks = skipWS(s, i);
    const ke = endOfString(s, ks);
    const key = JSON.parse(s.slice(ks, ke));
    i = skipWS(s, ke) + 1; // past ':'
    const vs = skipWS(s, i);
    const ve = endOfValue(s, vs);
    out.push({ key, start: vs, end: ve });
    i = skipWS(s, ve);
    if (s[i] === ',') { i++; continue; }
    return out;
  }
}

/** elements lists an array's elements as spans [{start, end}]. */
export function elements(s, i) {
  i = skipWS(s, i);
  if (s[i] !== '[') throw new Error('not an array');
  const out = [];
  i = skipWS(s, i + 1);
  if (s[i] === ']') return out;
  for (;;) {
    const vs = skipWS(s, i);
    const ve = endOfValue(s, vs);
    out.push({ start: vs, end: ve });
    i = skipWS(s, ve);
    if (s[i] === ',') { i++; continue; }
    return out;
  }
}

/** bundleResourceTexts returns, for each entry of a Bundle's JSON text, the exact text of entry.resource ("" if none). */
export function bundleResourceTexts(text) {
  const entry = members(text).find((m) => m.key === 'entry');
  if (!entry) return [];
  return elements(text, entry.start).map((e) => {
    const r = members(text, e.start).find((m) => m.key === 'resource');
    return r ? text.slice(r.start, r.end) : '';
  });
}
