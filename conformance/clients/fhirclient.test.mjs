// fhirclient (the SMART Health IT JavaScript client) against a running
// gateway: its own discovery code finds the token endpoint, a SMART
// Backend Services token is obtained there with a private_key_jwt
// assertion, and fhirclient's Client reads with it.
//
// Environment (set by clients_test.go):
//   FHIRGATE_BASE        FHIR base URL, e.g. http://127.0.0.1:8080/fhir
//   FHIRGATE_CLIENT_ID   a client registered with --clients (empty: none)
//   FHIRGATE_CLIENT_KID  its ES384 key's kid
//   FHIRGATE_CLIENT_KEY  its private key, PKCS#8 PEM

import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { createPrivateKey, randomUUID, sign } from "node:crypto";

const require = createRequire(import.meta.url);
// fhirclient's own modules: smart.js holds the discovery, lib.js the
// CapabilityStatement fetch, entry/node.js the Node API (Client).
const smartLib = require("fhirclient/lib/smart");
const fhirLib = require("fhirclient/lib/lib");
const fhirclient = require("fhirclient");

const base = process.env.FHIRGATE_BASE;
const clientID = process.env.FHIRGATE_CLIENT_ID || "";
const root = base.replace(/\/fhir\/?$/, "");
const tokenURL = root + "/auth/token";

test("fetchWellKnownJson reads [base]/.well-known/smart-configuration without a token", async () => {
  const wk = await smartLib.fetchWellKnownJson(base);
  assert.equal(wk.token_endpoint, tokenURL);
  assert.deepEqual(wk.code_challenge_methods_supported, ["S256"]);
  assert.ok(wk.capabilities.includes("permission-v2"));
  assert.equal(wk.authorization_endpoint, undefined, "no App Launch: no authorization endpoint");
  if (clientID) {
    assert.deepEqual(wk.grant_types_supported, ["client_credentials"]);
    assert.deepEqual(wk.token_endpoint_auth_methods_supported, ["private_key_jwt"]);
    assert.ok(wk.token_endpoint_auth_signing_alg_values_supported.includes("ES384"));
    assert.ok(wk.capabilities.includes("client-confidential-asymmetric"));
  } else {
    assert.deepEqual(wk.grant_types_supported, []);
    assert.match(wk.backend_services, /not offered/);
  }
  const siwe = wk.sign_in_with_ethereum;
  assert.equal(siwe.nonce_endpoint, root + "/auth/siwe/nonce");
  assert.equal(siwe.sign_in_endpoint, root + "/auth/siwe");
  assert.equal(siwe.uri_origin, root);
  assert.ok(siwe.chain_id > 0);
  // The wallet endpoints it names answer: a fresh nonce.
  const nonce = await fhirLib.request(siwe.nonce_endpoint);
  assert.match(nonce.nonce, /^[A-Za-z0-9]{8,}$/);
});

test("getSecurityExtensions finds the token endpoint", async () => {
  // fhirclient wants an authorization_endpoint in the well-known JSON
  // (App Launch); without one it falls back to the CapabilityStatement's
  // oauth-uris extension, which must name the same token endpoint.
  const ext = await smartLib.getSecurityExtensions(base);
  assert.equal(ext.tokenUri, tokenURL);
  assert.equal(ext.authorizeUri, "");
  const cs = await fhirLib.fetchConformanceStatement(base);
  assert.equal(cs.rest[0].security.service[0].coding[0].code, "SMART-on-FHIR");
});

test("a backend-services token from the discovered endpoint; fhirclient's Client reads with it", { skip: !clientID && "no client registered (--clients)" }, async () => {
  const { tokenUri } = await smartLib.getSecurityExtensions(base);
  const b64 = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = b64({ alg: "ES384", typ: "JWT", kid: process.env.FHIRGATE_CLIENT_KID }) + "." +
    b64({ iss: clientID, sub: clientID, aud: tokenUri, exp: now + 240, jti: randomUUID() });
  const key = createPrivateKey(process.env.FHIRGATE_CLIENT_KEY);
  const assertion = input + "." + b64(sign("sha384", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" }));
  const res = await fetch(tokenUri, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      scope: "system/Patient.rs",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion,
    }),
  });
  const tok = await res.json();
  assert.equal(res.status, 200, JSON.stringify(tok));
  assert.equal(tok.token_type, "bearer");
  assert.equal(tok.scope, "system/Patient.rs");

  // fhirclient's Node API wants a request to build its adapter; a client
  // from a state with a token response makes no use of it.
  const api = fhirclient({ headers: {}, socket: {}, url: "/" }, {});
  const client = api.client({ serverUrl: base, tokenResponse: tok });
  const bundle = await client.request("Patient?_count=1");
  assert.equal(bundle.resourceType, "Bundle");
  assert.equal(bundle.type, "searchset");
  await assert.rejects(client.request("Observation?_count=1"), /403/, "the token's scope stops at Patient");
});
