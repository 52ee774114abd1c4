// Test data for the browser tests: the well-known dev accounts (the
// "test test ... junk" mnemonic the embedded dev chain funds; account 0
// is the gateway's own), and the people the tests need, created over the
// FHIR API with an EHR-style system token.
import { addressOf } from './devwallet.mjs';

export const DEV_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  // (6)..(9): the registration scenario (registration.test.mjs): a new
  // doctor, a new patient, a spare wallet, and (9) the embedded dev chain's
  // default administrator (gateway serve without --admins).
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
];

/** DEV_ADMIN_KEY is dev account (9): an administrator on the embedded dev chain unless --admins names others. */
export const DEV_ADMIN_KEY = DEV_KEYS[9];

/** REGULATOR_KEY is account (10) of the same mnemonic: web/browser_test.go names it with --regulators. */
export const REGULATOR_KEY = '0xf214f2b2cd398c806f84e317254e0f0b801d0643303237d97a22a48e01628897';

export const CAIP10 = 'https://chainagnostic.org/CAIPs/caip-10';

export async function fhir(base, token, method, path, body) {
  const res = await fetch(`${base}/fhir/${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data = null;
  try { data = JSON.parse(text); } catch { data = text; }
  return { status: res.status, data, text, headers: res.headers };
}

async function create(base, token, resource) {
  const r = await fhir(base, token, 'POST', resource.resourceType, resource);
  if (r.status !== 201) throw new Error(`create ${resource.resourceType}: ${r.status} ${r.text}`);
  return r.data;
}

/** setup creates a patient, two practitioners (one with a cardiology role) and returns who is who. */
export async function setup(base, adminToken, chainId) {
  const wallet = (i) => ({ system: CAIP10, value: `eip155:${chainId}:${addressOf(DEV_KEYS[i])}` });
  const patient = await create(base, adminToken, {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:example:mrn', value: 'MRN-40231', type: { text: 'Medical record number' } }, wallet(1)],
    name: [{ given: ['Alex'], family: 'Rivera' }],
    gender: 'female',
    birthDate: '1986-04-12',
    telecom: [{ system: 'email', value: 'alex.rivera@example.org' }],
    address: [{ line: ['12 Harbour Street'], city: 'Bristol', postalCode: 'BS1 4DJ', country: 'UK' }],
  });
  const santos = await create(base, adminToken, {
    resourceType: 'Practitioner',
    active: true, // verified by an administrator: practitioners sign in only then
    identifier: [wallet(2)],
    name: [{ prefix: ['Dr.'], given: ['Maria'], family: 'Santos' }],
    qualification: [{ code: { text: 'Cardiology', coding: [{ system: 'http://snomed.info/sct', code: '394579002', display: 'Cardiology' }] } }],
  });
  await create(base, adminToken, {
    resourceType: 'PractitionerRole',
    practitioner: { reference: `Practitioner/${santos.id}` },
    specialty: [{ coding: [{ system: 'http://snomed.info/sct', code: '394579002', display: 'Cardiology' }], text: 'Cardiology' }],
  });
  const okafor = await create(base, adminToken, {
    resourceType: 'Practitioner',
    active: true,
    identifier: [wallet(3)],
    name: [{ prefix: ['Dr.'], given: ['John'], family: 'Okafor' }],
    qualification: [{ code: { text: 'Emergency medicine' } }],
  });
  return {
    patient: { ref: `Patient/${patient.id}`, key: DEV_KEYS[1], name: 'Alex Rivera' },
    santos: { ref: `Practitioner/${santos.id}`, key: DEV_KEYS[2], name: 'Dr. Maria Santos' },
    okafor: { ref: `Practitioner/${okafor.id}`, key: DEV_KEYS[3], name: 'Dr. John Okafor' },
    unlinkedKey: DEV_KEYS[5],
  };
}
