// node-vault against keymint's AWS engine, through node-vault's generic methods (it has no AWS
// helpers): `write`, `read`, `list` (the LIST verb, and `GET ?list=1` with noCustomHTTPVerbs) and
// `delete` on aws/config/root, aws/config/lease, aws/roles/*, aws/creds/* and aws/sts/*; and the
// lease methods `renew` (PUT sys/leases/renew), `revoke` (PUT sys/leases/revoke) and
// `revokePrefix` (PUT sys/revoke-prefix/<prefix>), checked against moto: minted keys answer
// GetCallerIdentity as their user or role, revoked IAM users are gone.
//
// Reference: ../../../shared/reference/vault-aws-api.md sections 1 (protocol), 2 (endpoints),
// 3.5 (data fields), 8 (example answers) and 9.1 (leases).

'use strict';

const assert = require('node:assert/strict');
const { before, describe, it } = require('node:test');
const {
    ACCOUNT_ID,
    MOTO_URL,
    S3_READ_POLICY,
    accessKeysOf,
    assertEnvelope,
    assertLeaseId,
    assertNotFound,
    assertVaultError,
    callerArn,
    client,
    configureRoot,
    createAssumableRole,
    iamUserNames,
    unique,
} = require('./helpers');

// What Vault's role read answers (reference 2.4); keymint adds its own role fields (README,
// "default_ttl", "wait_until_usable"...), which clients ignore.
const ROLE_KEYS = [
    'credential_type',
    'default_sts_ttl',
    'external_id',
    'iam_groups',
    'iam_tags',
    'max_sts_ttl',
    'mfa_serial_number',
    'permissions_boundary_arn',
    'policy_arns',
    'policy_document',
    'role_arns',
    'session_tags',
    'user_path',
];

// What Vault's config/root read answers (reference 2.1, newest CE); keymint may add its own.
const CONFIG_ROOT_KEYS = [
    'access_key',
    'region',
    'iam_endpoint',
    'sts_endpoint',
    'sts_region',
    'sts_fallback_endpoints',
    'sts_fallback_regions',
    'max_retries',
    'username_template',
    'role_arn',
    'identity_token_audience',
    'identity_token_ttl',
    'rotation_schedule',
    'rotation_window',
    'rotation_period',
    'disable_automated_rotation',
    'rotation_policy',
];

const POLICY_JSON = JSON.stringify(S3_READ_POLICY, null, 2);

/** node-vault resolves a 204 with axios's empty body. */
function assertNoContent(resp) {
    assert.equal(resp, '', `expected 204 No Content, got ${JSON.stringify(resp)}`);
}

describe('aws engine through node-vault', () => {
    const vault = client();

    before(async () => {
        await configureRoot(vault);
        assertNoContent(await vault.write('aws/config/lease', { lease: '1h', lease_max: '24h' }));
    });

    it('configures aws/config/root and reads it back', async () => {
        // Vault answers 204; keymint checks the keys first and answers 200 with what
        // GetCallerIdentity said (README, "config/root"). node-vault takes either.
        const written = await configureRoot(vault);
        if (written !== '') {
            assertEnvelope(written);
            assert.equal(written.data.account_id, ACCOUNT_ID);
        }
        const config = await vault.read('aws/config/root');
        assertEnvelope(config);
        for (const key of CONFIG_ROOT_KEYS) assert.ok(key in config.data, `${key} missing from config/root`);
        assert.ok(!('secret_key' in config.data), 'secret_key is never returned');
        assert.equal(config.data.access_key, 'nv-root-access-key');
        assert.equal(config.data.region, 'us-east-1');
        assert.equal(config.data.iam_endpoint, MOTO_URL);
        assert.equal(config.data.sts_endpoint, MOTO_URL);
        // Not sent: Vault's default, "let the SDK decide".
        assert.equal(config.data.max_retries, -1);
        assert.match(config.data.username_template, /\{\{/);
    });

    it('writes and reads aws/config/lease', async () => {
        const lease = await vault.read('aws/config/lease');
        assertEnvelope(lease);
        assert.deepEqual(lease.data, { lease: '1h0m0s', lease_max: '24h0m0s' });
    });

    it('round-trips an iam_user role: write, read, merge, list both ways, delete', async () => {
        const name = unique('nv-iam');
        assertNoContent(
            await vault.write(`aws/roles/${name}`, {
                credential_type: 'iam_user',
                policy_document: POLICY_JSON,
                iam_tags: { team: 'platform' },
            }),
        );
        let role = await vault.read(`aws/roles/${name}`);
        assertEnvelope(role);
        for (const key of ROLE_KEYS) assert.ok(key in role.data, `${key} missing from the role`);
        assert.equal(role.data.credential_type, 'iam_user');
        // Stored compacted.
        assert.equal(role.data.policy_document, JSON.stringify(S3_READ_POLICY));
        assert.deepEqual(role.data.iam_tags, { team: 'platform' });
        assert.equal(role.data.policy_arns, null);
        assert.equal(role.data.role_arns, null);
        assert.equal(role.data.iam_groups, null);
        assert.equal(role.data.session_tags, null);
        assert.equal(role.data.default_sts_ttl, 0);
        assert.equal(role.data.max_sts_ttl, 0);
        assert.equal(role.data.user_path, '');
        assert.equal(role.data.permissions_boundary_arn, '');

        // A second write merges: what is not sent stays.
        assertNoContent(await vault.write(`aws/roles/${name}`, { iam_tags: ['team=infra', 'tier=1'] }));
        role = await vault.read(`aws/roles/${name}`);
        assert.deepEqual(role.data.iam_tags, { team: 'infra', tier: '1' });
        assert.equal(role.data.policy_document, JSON.stringify(S3_READ_POLICY));

        const listed = await vault.list('aws/roles');
        assertEnvelope(listed);
        assert.ok(listed.data.keys.includes(name));
        assert.deepEqual(listed.data.keys, [...listed.data.keys].sort());
        const viaGet = await client({ noCustomHTTPVerbs: true }).list('aws/roles');
        assertEnvelope(viaGet);
        assert.deepEqual(viaGet.data.keys, listed.data.keys);

        assertNoContent(await vault.delete(`aws/roles/${name}`));
        await assertNotFound(vault.read(`aws/roles/${name}`));
        // The list may now be empty, which Vault answers with a 404 (asserted in sys.test.js).
        const left = await vault.list('aws/roles').then(
            (resp) => resp.data.keys,
            (err) => {
                if (err.response && err.response.statusCode === 404) return [];
                throw err;
            },
        );
        assert.ok(!left.includes(name));
        // Deleting what is gone is still a 204.
        assertNoContent(await vault.delete(`aws/roles/${name}`));
    });

    it('rejects reads of what does not exist the way Vault does', async () => {
        await assertNotFound(vault.read(`aws/roles/${unique('nv-missing')}`));
        await assertNotFound(vault.read(`aws/static-roles/${unique('nv-missing')}`));
        await assertVaultError(vault.read('aws/creds/nv-no-such-role'), 400, (body, err) => {
            assert.deepEqual(body.errors, ['Role "nv-no-such-role" not found']);
            assert.equal(err.message, 'Role "nv-no-such-role" not found');
        });
        await assertVaultError(
            vault.write(`aws/roles/${unique('nv-bad')}`, { credential_type: 'iam_user', role_arns: ['arn:aws:iam::123456789012:role/x'] }),
            400,
            (body) =>
                assert.deepEqual(body.errors, [
                    'error(s) validating supplied role data: "1 error occurred:\\n\\t* cannot supply role_arns when credential_type isn\'t assumed_role\\n\\n"',
                ]),
        );
    });

    it('mints iam_user keys that work, renews and revokes their lease', async () => {
        const name = unique('nv-iam');
        await vault.write(`aws/roles/${name}`, { credential_type: 'iam_user', policy_document: POLICY_JSON });
        const before = await iamUserNames();
        const creds = await vault.read(`aws/creds/${name}`);
        assertEnvelope(creds, { leased: true });
        assertLeaseId(creds.lease_id, `aws/creds/${name}/`);
        assert.equal(creds.renewable, true);
        // config/lease: lease=1h.
        assert.equal(creds.lease_duration, 3600);
        assert.deepEqual(Object.keys(creds.data).sort(), ['access_key', 'secret_key', 'session_token']);
        assert.equal(creds.data.session_token, null);
        assert.match(creds.data.access_key, /^AKIA/);

        const arn = await callerArn(creds.data);
        // The default username template: vault-<display name>-<role>-<unix time>-<random>.
        assert.match(arn, new RegExp(`^arn:aws:iam::${ACCOUNT_ID}:user/vault-root-${name}-\\d+-[0-9A-Za-z]+$`));
        const user = arn.split('/').pop();
        assert.ok(!before.has(user) && (await iamUserNames()).has(user));
        assert.deepEqual(await accessKeysOf(user), [creds.data.access_key]);

        const renewed = await vault.renew({ lease_id: creds.lease_id, increment: 600 });
        assertEnvelope(renewed, { leased: true });
        assert.equal(renewed.lease_id, creds.lease_id);
        assert.equal(renewed.renewable, true);
        assert.equal(renewed.lease_duration, 600);
        assert.equal(renewed.data, null);

        assertNoContent(await vault.revoke({ lease_id: creds.lease_id }));
        assert.ok(!(await iamUserNames()).has(user), `${user} survived the revocation`);
        assert.notEqual(await callerArn(creds.data), arn, 'the revoked key still belongs to the user');
    });

    it('mints federation tokens with sts/ (write with ttl) and creds/ (read, role default ttl)', async () => {
        const name = unique('nv-fed');
        await vault.write(`aws/roles/${name}`, {
            credential_type: 'federation_token',
            policy_document: POLICY_JSON,
            default_sts_ttl: '15m',
            max_sts_ttl: 3600,
        });
        const role = await vault.read(`aws/roles/${name}`);
        assert.equal(role.data.credential_type, 'federation_token');
        assert.equal(role.data.default_sts_ttl, 900);
        assert.equal(role.data.max_sts_ttl, 3600);

        const creds = await vault.write(`aws/sts/${name}`, { ttl: '20m' });
        assertEnvelope(creds, { leased: true });
        assertLeaseId(creds.lease_id, `aws/sts/${name}/`);
        assert.equal(creds.renewable, false);
        assert.ok(creds.lease_duration > 1150 && creds.lease_duration <= 1200, `lease_duration ${creds.lease_duration}`);
        assert.deepEqual(Object.keys(creds.data).sort(), ['access_key', 'secret_key', 'security_token', 'session_token', 'ttl']);
        assert.equal(creds.data.security_token, creds.data.session_token);
        assert.ok(Number.isInteger(creds.data.ttl) && Math.abs(creds.data.ttl - creds.lease_duration) <= 1);
        // moto keeps no record of federation tokens (GetCallerIdentity answers its default
        // identity for them), so their keys can only be checked for shape.
        for (const key of ['access_key', 'secret_key', 'session_token']) {
            assert.ok(typeof creds.data[key] === 'string' && creds.data[key].length > 0, `${key}: ${creds.data[key]}`);
        }

        const byDefault = await vault.read(`aws/creds/${name}`);
        assertLeaseId(byDefault.lease_id, `aws/creds/${name}/`);
        assert.ok(byDefault.lease_duration > 850 && byDefault.lease_duration <= 900, `lease_duration ${byDefault.lease_duration}`);
    });

    it('mints assumed_role keys; STS leases do not renew and revoke with 204', async () => {
        const roleName = unique('nv-deploy');
        const roleArn = await createAssumableRole(roleName);
        assert.equal(roleArn, `arn:aws:iam::${ACCOUNT_ID}:role/${roleName}`);
        const name = unique('nv-ar');
        await vault.write(`aws/roles/${name}`, { credential_type: 'assumed_role', role_arns: [roleArn] });
        const role = await vault.read(`aws/roles/${name}`);
        assert.equal(role.data.credential_type, 'assumed_role');
        assert.deepEqual(role.data.role_arns, [roleArn]);
        assert.equal(role.data.policy_document, '');

        const creds = await vault.write(`aws/sts/${name}`, { ttl: '20m', role_session_name: 'nv-session' });
        assertEnvelope(creds, { leased: true });
        assertLeaseId(creds.lease_id, `aws/sts/${name}/`);
        assert.equal(creds.renewable, false);
        assert.ok(creds.lease_duration > 1150 && creds.lease_duration <= 1200, `lease_duration ${creds.lease_duration}`);
        assert.deepEqual(Object.keys(creds.data).sort(), ['access_key', 'arn', 'secret_key', 'security_token', 'session_token', 'ttl']);
        assert.equal(creds.data.arn, `arn:aws:sts::${ACCOUNT_ID}:assumed-role/${roleName}/nv-session`);
        assert.equal(await callerArn(creds.data), creds.data.arn);

        await assertVaultError(vault.renew({ lease_id: creds.lease_id }), 400, (body, err) => {
            assert.deepEqual(body.errors, ['lease is not renewable']);
            assert.equal(err.message, 'lease is not renewable');
        });
        assertNoContent(await vault.revoke({ lease_id: creds.lease_id }));

        const viaCreds = await vault.read(`aws/creds/${name}`);
        assertLeaseId(viaCreds.lease_id, `aws/creds/${name}/`);
        assert.ok(viaCreds.lease_duration > 3550 && viaCreds.lease_duration <= 3600, `lease_duration ${viaCreds.lease_duration}`);
        assert.ok(viaCreds.data.arn.startsWith(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/${roleName}/vault-root-${name}-`));
    });

    it('revokePrefix (PUT sys/revoke-prefix/<prefix>) revokes every lease under the prefix', async () => {
        const name = unique('nv-prefix');
        await vault.write(`aws/roles/${name}`, { credential_type: 'iam_user', policy_document: POLICY_JSON });
        const minted = [await vault.read(`aws/creds/${name}`), await vault.read(`aws/creds/${name}`)];
        const users = [];
        for (const creds of minted) users.push((await callerArn(creds.data)).split('/').pop());
        const present = await iamUserNames();
        assert.ok(users.every((u) => u.startsWith(`vault-root-${name}-`) && present.has(u)));

        assertNoContent(await vault.revokePrefix({ path_prefix: `aws/creds/${name}` }));
        const left = await iamUserNames();
        assert.deepEqual(users.filter((u) => left.has(u)), []);
        // The leases are gone too: renewing one is refused.
        await assertVaultError(vault.renew({ lease_id: minted[0].lease_id }), 400);
    });
});
