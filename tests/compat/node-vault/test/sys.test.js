// node-vault's sys/ methods against keymint: `health` (sys/health), `status` (sys/seal-status),
// `leader` (sys/leader), `mounts`/`mount`/`unmount` (sys/mounts), and the legacy policy API
// `policies`/`addPolicy`/`getPolicy`/`removePolicy` (sys/policy), with reads and lists of
// nothing on a fresh aws mount.
//
// Reference: ../../../shared/reference/vault-aws-api.md sections 1.4 (errors), 9.2 (mounts),
// 9.3 (health, seal-status, leader) and 9.5 (policies). Vault copies the data of sys/mounts and
// sys/policy answers to the top level of the body (its `injectDataIntoTopRoutes`), and answers
// sys/health, sys/seal-status and sys/leader without the envelope.

'use strict';

const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const { assertEnvelope, assertNotFound, assertVaultError, client, unique } = require('./helpers');

function assertNoContent(resp) {
    assert.equal(resp, '', `expected 204 No Content, got ${JSON.stringify(resp)}`);
}

/** A client with no token: what a load balancer or `vault status` is. */
function anonymous() {
    const vault = client();
    vault.token = undefined;
    return vault;
}

const POLICY_TEXT = 'path "aws/creds/*" {\n  capabilities = ["read"]\n}\n';

describe('sys through node-vault', () => {
    const vault = client();

    it('health: sys/health answers without a token', async () => {
        for (const resp of [await anonymous().health(), await vault.health({ standbyok: true })]) {
            assert.equal(resp.initialized, true);
            assert.equal(resp.sealed, false);
            assert.equal(resp.standby, false);
            assert.equal(resp.performance_standby, false);
            assert.equal(typeof resp.version, 'string');
            assert.ok(Number.isInteger(resp.server_time_utc));
            assert.ok(Math.abs(resp.server_time_utc - Date.now() / 1000) < 300);
            assert.equal(typeof resp.cluster_name, 'string');
            assert.equal(typeof resp.cluster_id, 'string');
        }
    });

    it('status: sys/seal-status answers without a token', async () => {
        const resp = await anonymous().status();
        assert.equal(resp.sealed, false);
        assert.equal(resp.initialized, true);
        for (const key of ['t', 'n', 'progress']) assert.ok(Number.isInteger(resp[key]), `${key}: ${resp[key]}`);
        assert.equal(typeof resp.type, 'string');
        assert.equal(typeof resp.version, 'string');
    });

    it('leader: sys/leader, at the top level of the body', async () => {
        const resp = await vault.leader();
        assert.equal(resp.ha_enabled, false, JSON.stringify(resp));
        assert.equal(typeof resp.is_self, 'boolean', JSON.stringify(resp));
        assert.equal(typeof resp.leader_address, 'string', JSON.stringify(resp));
        assert.equal(typeof resp.leader_cluster_address, 'string', JSON.stringify(resp));
        assert.equal(resp.performance_standby, false, JSON.stringify(resp));
    });

    it('mounts, mount and unmount an aws engine', async () => {
        const path = unique('nv-aws');
        assertNoContent(
            await vault.mount({
                mount_point: path,
                type: 'aws',
                description: 'node-vault mount',
                config: { default_lease_ttl: '1h', max_lease_ttl: '2h' },
            }),
        );
        const mounts = await vault.mounts();
        assertEnvelope(mounts);
        const mount = mounts.data[`${path}/`];
        assert.ok(mount, `${path}/ not in ${JSON.stringify(Object.keys(mounts.data))}`);
        assert.deepEqual(mounts[`${path}/`], mount, 'sys/mounts copies its data to the top level');
        assert.equal(mount.type, 'aws');
        assert.equal(mount.description, 'node-vault mount');
        assert.match(mount.accessor, /^aws_[0-9a-f]{8}$/);
        assert.equal(mount.config.default_lease_ttl, 3600);
        assert.equal(mount.config.max_lease_ttl, 7200);
        assert.equal(mount.config.force_no_cache, false);
        assert.equal(mount.local, false);
        assert.equal(mount.seal_wrap, false);
        assert.equal(mounts.data['aws/'].type, 'aws');

        // A fresh mount has nothing to read or list: 404 with no errors.
        await assertNotFound(vault.read(`${path}/config/root`));
        await assertNotFound(vault.read(`${path}/config/lease`));
        await assertNotFound(vault.list(`${path}/roles`));
        await assertNotFound(client({ noCustomHTTPVerbs: true }).list(`${path}/roles`));

        await assertVaultError(vault.mount({ mount_point: path, type: 'aws' }), 400, (body) =>
            assert.deepEqual(body.errors, [`path is already in use at ${path}/`]),
        );

        assertNoContent(await vault.unmount({ mount_point: path }));
        const after = await vault.mounts();
        assert.ok(!(`${path}/` in after.data) && !(`${path}/` in after));
        await assertVaultError(vault.read(`${path}/config/lease`), 404);
    });

    it('policies: addPolicy, getPolicy, policies, removePolicy', async () => {
        const name = unique('nv-pol');
        assertNoContent(await vault.addPolicy({ name, policy: POLICY_TEXT }));
        const got = await vault.getPolicy({ name });
        assertEnvelope(got);
        assert.deepEqual(got.data, { name, rules: POLICY_TEXT });
        assert.equal(got.name, name);
        assert.equal(got.rules, POLICY_TEXT);

        const listed = await vault.policies();
        assertEnvelope(listed);
        for (const p of [name, 'default', 'root']) assert.ok(listed.data.policies.includes(p), `${p} not listed`);
        assert.deepEqual(listed.data.keys, listed.data.policies);
        assert.deepEqual(listed.policies, listed.data.policies);
        assert.deepEqual(listed.keys, listed.data.keys);

        assertNoContent(await vault.removePolicy({ name }));
        await assertNotFound(vault.getPolicy({ name }));
        assert.ok(!(await vault.policies()).data.policies.includes(name));
    });

    it('addPolicy with `rules`, as node-vault documents it: stored, with warnings', async () => {
        // node-vault sends the whole argument object as the body, so `name` is in it too, and
        // the path's `name` replaces it. Vault's legacy sys/policy takes `rules` for `policy`.
        const name = unique('nv-pol');
        const resp = await vault.addPolicy({ name, rules: POLICY_TEXT });
        assert.notEqual(resp, '', 'Vault answers 200 with warnings here, not 204');
        assertEnvelope(resp);
        assert.equal(resp.data, null);
        assert.deepEqual(resp.warnings, [
            "'rules' is deprecated, please use 'policy' instead",
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]",
        ]);
        assert.equal((await vault.getPolicy({ name })).data.rules, POLICY_TEXT);
    });

    it('help: GET <path>?help=1 describes the path and runs nothing', async () => {
        const resp = await vault.help('aws/config/lease');
        assert.equal(typeof resp.help, 'string');
        assert.ok(resp.help.startsWith('Request:        config/lease\nMatching Route: ^config/lease$'), resp.help);
        assert.ok(resp.help.includes('lease_max (duration)'), resp.help);
        assert.equal(resp.data, undefined, 'help is not an envelope');
        await assertVaultError(vault.help('aws/no/such/path'), 404);
    });
});
