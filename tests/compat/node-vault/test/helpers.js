// Shared by the node-vault suite's test files (not a test file itself).
//
// The Rust driver (tests/compat/node_vault.rs) starts a moto and a dev-mode keymint, then runs
// `node --test` here with VAULT_ADDR and VAULT_TOKEN (the root token) pointing at keymint and
// KEYMINT_COMPAT_MOTO_URL at moto. One keymint serves the whole run, so every test names its own
// roles, policies, tokens and mounts.
//
// Moto is reached with plain fetch and a small AWS Signature V4 signer: moto takes any key, and
// GetCallerIdentity answers with the IAM user or assumed role a key belongs to (or moto's
// default identity for a key it does not know), which is how the suite tells that a minted key
// exists, and that a revoked one is gone.

'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const nodeVault = require('node-vault');

const VAULT_ADDR = process.env.VAULT_ADDR;
const ROOT_TOKEN = process.env.VAULT_TOKEN;
const MOTO_URL = process.env.KEYMINT_COMPAT_MOTO_URL;
const ACCOUNT_ID = process.env.KEYMINT_COMPAT_ACCOUNT_ID;
const REGION = 'us-east-1';

for (const [name, value] of Object.entries({ VAULT_ADDR, VAULT_TOKEN: ROOT_TOKEN, KEYMINT_COMPAT_MOTO_URL: MOTO_URL, KEYMINT_COMPAT_ACCOUNT_ID: ACCOUNT_ID })) {
    assert.ok(value, `${name} must be set`);
}

const S3_READ_POLICY = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
};

/** A new node-vault client. Token-issuing methods replace its token, so tests make their own. */
function client(options = {}) {
    return nodeVault({ endpoint: VAULT_ADDR, token: ROOT_TOKEN, ...options });
}

/** A name no other test of this run uses. */
function unique(prefix) {
    return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

/** The keys of Vault's JSON envelope (reference 1.3), with their types. */
function assertEnvelope(resp, { leased = false } = {}) {
    for (const key of ['request_id', 'lease_id', 'renewable', 'lease_duration', 'data', 'wrap_info', 'warnings', 'auth']) {
        assert.ok(key in resp, `${key} missing from ${JSON.stringify(resp)}`);
    }
    assert.match(resp.request_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(typeof resp.renewable, 'boolean');
    assert.ok(Number.isInteger(resp.lease_duration));
    assert.equal(resp.wrap_info, null);
    assert.ok(resp.warnings === null || resp.warnings.every((w) => typeof w === 'string'));
    if (leased) {
        assert.ok(resp.lease_id && resp.lease_duration > 0, `not a lease: ${JSON.stringify(resp)}`);
    } else {
        assert.equal(resp.lease_id, '');
        assert.equal(resp.lease_duration, 0);
        assert.equal(resp.renewable, false);
    }
}

/** A lease id: the path it was minted at, then 24 base62 characters (Vault's format). */
function assertLeaseId(leaseId, prefix) {
    assert.ok(leaseId.startsWith(prefix), `${leaseId} does not start with ${prefix}`);
    assert.match(leaseId.slice(prefix.length), /^[0-9A-Za-z]{24}$/);
}

/**
 * Asserts that `promise` is rejected the way node-vault rejects a Vault error: an Error whose
 * message is the first of the body's `errors` and whose `response` holds the status and body.
 */
async function assertVaultError(promise, statusCode, check = () => {}) {
    await assert.rejects(promise, (err) => {
        assert.ok(err instanceof Error, `not an Error: ${err}`);
        assert.ok(err.response, `no response on ${err.stack}`);
        assert.equal(err.response.statusCode, statusCode, `status ${err.response.statusCode}: ${JSON.stringify(err.response.body)}`);
        assert.ok(Array.isArray(err.response.body.errors), JSON.stringify(err.response.body));
        check(err.response.body, err);
        return true;
    });
}

/** Vault's answer to a read or list of nothing: 404 `{"errors":[]}`, which node-vault rejects. */
async function assertNotFound(promise) {
    await assertVaultError(promise, 404, (body, err) => {
        assert.deepEqual(body, { errors: [] });
        assert.equal(err.message, 'Status 404');
    });
}

// --- AWS Signature Version 4, enough for moto's query APIs (POST, form body, no query string).

function sha256(data) {
    return crypto.createHash('sha256').update(data).digest('hex');
}

function hmac(key, data) {
    return crypto.createHmac('sha256', key).update(data).digest();
}

function signedHeaders({ service, url, body, accessKey, secretKey, sessionToken }) {
    const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
    const day = amzDate.slice(0, 8);
    const headers = {
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
        host: new URL(url).host,
        'x-amz-date': amzDate,
    };
    if (sessionToken) headers['x-amz-security-token'] = sessionToken;
    const names = Object.keys(headers).sort();
    const canonical = [
        'POST',
        new URL(url).pathname,
        '',
        names.map((n) => `${n}:${headers[n]}\n`).join(''),
        names.join(';'),
        sha256(body),
    ].join('\n');
    const scope = `${day}/${REGION}/${service}/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    let key = hmac(`AWS4${secretKey}`, day);
    for (const part of [REGION, service, 'aws4_request']) key = hmac(key, part);
    const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex');
    // fetch sets Host itself, to the same value.
    delete headers.host;
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${accessKey}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    return headers;
}

/** One call to moto's query API; the XML answer. Keys default to the harness's own. */
async function awsCall(service, params, creds = {}) {
    const url = `${MOTO_URL}/`;
    const version = service === 'iam' ? '2010-05-08' : '2011-06-15';
    const body = new URLSearchParams({ Version: version, ...params }).toString();
    const headers = signedHeaders({
        service,
        url,
        body,
        accessKey: creds.access_key || 'compat-harness',
        secretKey: creds.secret_key || 'compat-harness-secret',
        sessionToken: creds.session_token || undefined,
    });
    const resp = await fetch(url, { method: 'POST', headers, body });
    const text = await resp.text();
    if (!resp.ok) throw new Error(`${service} ${params.Action}: ${resp.status} ${text}`);
    return text;
}

/** Every `<tag>` value in an XML answer. */
function xmlValues(xml, tag) {
    return [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);
}

/** GetCallerIdentity signed with minted keys (a `data` block): the ARN moto sees. */
async function callerArn(data) {
    const xml = await awsCall('sts', { Action: 'GetCallerIdentity' }, data);
    return xmlValues(xml, 'Arn')[0];
}

/** The names of moto's IAM users. */
async function iamUserNames() {
    const xml = await awsCall('iam', { Action: 'ListUsers', MaxItems: '1000' });
    return new Set(xmlValues(xml, 'UserName'));
}

/** The access key ids an IAM user holds. */
async function accessKeysOf(userName) {
    const xml = await awsCall('iam', { Action: 'ListAccessKeys', UserName: userName });
    return xmlValues(xml, 'AccessKeyId');
}

/** An IAM role in moto that the account's principals may assume; its ARN. */
async function createAssumableRole(roleName) {
    const trust = JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT_ID}:root` }, Action: 'sts:AssumeRole' }],
    });
    const xml = await awsCall('iam', { Action: 'CreateRole', RoleName: roleName, AssumeRolePolicyDocument: trust });
    return xmlValues(xml, 'Arn')[0];
}

/** `aws/` pointed at moto through node-vault's generic write; the write's answer. */
function configureRoot(vault) {
    return vault.write('aws/config/root', {
        access_key: 'nv-root-access-key',
        secret_key: 'nv-root-secret-key',
        region: REGION,
        iam_endpoint: MOTO_URL,
        sts_endpoint: MOTO_URL,
    });
}

module.exports = {
    ACCOUNT_ID,
    MOTO_URL,
    REGION,
    ROOT_TOKEN,
    S3_READ_POLICY,
    VAULT_ADDR,
    accessKeysOf,
    assertEnvelope,
    assertLeaseId,
    assertNotFound,
    assertVaultError,
    awsCall,
    callerArn,
    client,
    configureRoot,
    createAssumableRole,
    iamUserNames,
    unique,
    xmlValues,
};
