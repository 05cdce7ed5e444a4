// node-vault's token methods against keymint's auth/token/: tokenCreate, tokenCreateOrphan,
// tokenLookup, tokenLookupSelf, tokenLookupAccessor, tokenRenew, tokenRenewSelf, tokenRevoke,
// tokenRevokeAccessor, tokenRevokeOrphan, tokenRevokeSelf, tokenAccessors, the token role
// methods (addTokenRole, getTokenRole, tokenRoles, tokenCreateRole, removeTokenRole), and
// startTokenRenewal once.
//
// node-vault switches a client to the token in the `auth` block of tokenCreate*, tokenRenew and
// tokenRenewSelf answers, so each test makes its own clients.
//
// Reference: ../../../shared/reference/vault-aws-api.md sections 1.3 (the `auth` block) and 9.4;
// Vault answers a lookup of an unknown token with 403 `bad token` (token store handleLookup:
// ErrorResponse("bad token") with ErrPermissionDenied).

'use strict';

const assert = require('node:assert/strict');
const { before, describe, it } = require('node:test');
const { ROOT_TOKEN, assertEnvelope, assertNotFound, assertVaultError, client, unique } = require('./helpers');

const AUTH_KEYS = [
    'client_token',
    'accessor',
    'policies',
    'token_policies',
    'metadata',
    'lease_duration',
    'renewable',
    'entity_id',
    'token_type',
    'orphan',
    'mfa_requirement',
    'num_uses',
];

function assertNoContent(resp) {
    assert.equal(resp, '', `expected 204 No Content, got ${JSON.stringify(resp)}`);
}

/** A token made by the root token; `vault` is a client that now speaks as it. */
async function newToken(args = {}) {
    const vault = client();
    const resp = await vault.tokenCreate({ ttl: '1h', ...args });
    return { vault, token: resp.auth.client_token, accessor: resp.auth.accessor, auth: resp.auth };
}

/**
 * A lookup of a token that is not (or no longer) valid is refused with `bad token`. Its status
 * (Vault: 403) has a test of its own, so that the tests of revocation check revocation only.
 */
async function assertGone(promise) {
    await assert.rejects(promise, (err) => {
        assert.deepEqual(err.response && err.response.body, { errors: ['bad token'] });
        return true;
    });
}

describe('tokens through node-vault', () => {
    const root = client();
    // Lets a token create child tokens.
    const policy = unique('nv-tok');

    before(async () => {
        await root.addPolicy({ name: policy, policy: 'path "auth/token/create" {\n  capabilities = ["update"]\n}\n' });
    });

    it('tokenLookupSelf: the root token', async () => {
        const self = await root.tokenLookupSelf();
        assertEnvelope(self);
        const d = self.data;
        assert.equal(d.id, ROOT_TOKEN);
        assert.deepEqual(d.policies, ['root']);
        assert.equal(d.path, 'auth/token/root');
        assert.equal(d.display_name, 'root');
        assert.equal(d.meta, null);
        assert.equal(d.ttl, 0);
        assert.equal(d.creation_ttl, 0);
        assert.equal(d.explicit_max_ttl, 0);
        assert.equal(d.expire_time, null);
        assert.equal(d.orphan, true);
        assert.equal(d.renewable, false);
        assert.equal(d.num_uses, 0);
        assert.equal(d.entity_id, '');
        assert.equal(d.type, 'service');
        assert.ok(d.accessor);
    });

    it('tokenCreate: the auth block, and the client switched to the new token', async () => {
        const vault = client();
        const resp = await vault.tokenCreate({
            policies: [policy],
            ttl: '1h',
            explicit_max_ttl: '2h',
            meta: { team: 'nv' },
            display_name: 'nv',
            renewable: true,
        });
        assertEnvelope(resp);
        assert.equal(resp.data, null);
        const a = resp.auth;
        for (const key of AUTH_KEYS) assert.ok(key in a, `${key} missing from the auth block`);
        assert.match(a.client_token, /^hvs\./);
        assert.ok(a.accessor && a.accessor !== a.client_token);
        assert.deepEqual(a.policies, ['default', policy]);
        assert.deepEqual(a.token_policies, ['default', policy]);
        assert.deepEqual(a.metadata, { team: 'nv' });
        assert.equal(a.lease_duration, 3600);
        assert.equal(a.renewable, true);
        assert.equal(a.entity_id, '');
        assert.equal(a.token_type, 'service');
        assert.equal(a.orphan, false);
        assert.equal(a.num_uses, 0);
        assert.equal(vault.token, a.client_token);

        const self = await vault.tokenLookupSelf();
        assertEnvelope(self);
        const d = self.data;
        assert.equal(d.id, a.client_token);
        assert.equal(d.accessor, a.accessor);
        assert.deepEqual(d.policies, ['default', policy]);
        assert.equal(d.path, 'auth/token/create');
        assert.equal(d.display_name, 'token-nv');
        assert.deepEqual(d.meta, { team: 'nv' });
        assert.equal(d.creation_ttl, 3600);
        assert.equal(d.explicit_max_ttl, 7200);
        assert.ok(d.ttl > 3500 && d.ttl <= 3600, `ttl ${d.ttl}`);
        assert.equal(typeof d.expire_time, 'string');
        assert.equal(typeof d.issue_time, 'string');
        assert.ok(Number.isInteger(d.creation_time));
        assert.equal(d.orphan, false);
        assert.equal(d.renewable, true);
        assert.equal(d.num_uses, 0);
    });

    it('tokenCreateOrphan', async () => {
        const vault = client();
        const resp = await vault.tokenCreateOrphan({ policies: [policy], ttl: '30m', no_default_policy: true });
        assertEnvelope(resp);
        assert.equal(resp.auth.orphan, true);
        assert.deepEqual(resp.auth.policies, [policy]);
        assert.equal(resp.auth.lease_duration, 1800);
        assert.equal(vault.token, resp.auth.client_token);
        const looked = await root.tokenLookup({ token: resp.auth.client_token });
        assert.equal(looked.data.orphan, true);
        assert.equal(looked.data.path, 'auth/token/create-orphan');
    });

    it('tokenLookup and tokenLookupAccessor', async () => {
        const t = await newToken({ policies: [policy], meta: { k: 'v' }, num_uses: 5 });
        const looked = await root.tokenLookup({ token: t.token });
        assertEnvelope(looked);
        assert.equal(looked.data.id, t.token);
        assert.equal(looked.data.accessor, t.accessor);
        assert.deepEqual(looked.data.policies, ['default', policy]);
        assert.deepEqual(looked.data.meta, { k: 'v' });
        assert.equal(looked.data.num_uses, 5);
        assert.equal(looked.data.display_name, 'token');

        // By accessor: the same facts, the token itself withheld.
        const byAccessor = await root.tokenLookupAccessor({ accessor: t.accessor });
        assertEnvelope(byAccessor);
        assert.equal(byAccessor.data.id, '');
        assert.equal(byAccessor.data.accessor, t.accessor);
        assert.deepEqual(byAccessor.data.policies, looked.data.policies);
        assert.equal(byAccessor.data.num_uses, 5);
    });

    it('tokenLookup of an unknown or revoked token: 403 bad token', async () => {
        // Vault: ErrorResponse("bad token") with ErrPermissionDenied, hence 403 (hashicorp/vault#16102).
        const t = await newToken();
        await root.tokenRevoke({ token: t.token });
        for (const token of ['hvs.nosuchtokenatallxxxxxxx', t.token]) {
            await assertVaultError(root.tokenLookup({ token }), 403, (body) => assert.deepEqual(body.errors, ['bad token']));
        }
    });

    it('tokenRenew: renewed by another token, which node-vault then switches to', async () => {
        const t = await newToken({ policies: [policy] });
        const renewer = client();
        const resp = await renewer.tokenRenew({ token: t.token, increment: '30m' });
        assertEnvelope(resp);
        assert.equal(resp.data, null);
        assert.equal(resp.auth.client_token, t.token);
        assert.equal(resp.auth.accessor, t.accessor);
        assert.equal(resp.auth.lease_duration, 1800);
        assert.equal(resp.auth.renewable, true);
        assert.deepEqual(resp.auth.policies, ['default', policy]);
        assert.equal(renewer.token, t.token);
        const looked = await root.tokenLookup({ token: t.token });
        assert.ok(looked.data.ttl > 1700 && looked.data.ttl <= 1800, `ttl ${looked.data.ttl}`);
        assert.equal(typeof looked.data.last_renewal_time, 'number');
    });

    it('tokenRenewSelf', async () => {
        const t = await newToken({ policies: [policy] });
        const resp = await t.vault.tokenRenewSelf({ increment: 600 });
        assertEnvelope(resp);
        assert.equal(resp.auth.client_token, t.token);
        assert.equal(resp.auth.lease_duration, 600);
        const own = await t.vault.tokenLookupSelf();
        assert.ok(own.data.ttl > 500 && own.data.ttl <= 600, `ttl ${own.data.ttl}`);
    });

    it('tokenRevoke revokes the token and its children', async () => {
        const parent = await newToken({ policies: [policy] });
        // Made by the parent: node-vault then speaks as the child.
        const child = (await parent.vault.tokenCreate({ policies: [policy], ttl: '1h' })).auth;
        assert.equal(child.orphan, false);
        assert.equal(parent.vault.token, child.client_token);

        assertNoContent(await root.tokenRevoke({ token: parent.token }));
        await assertGone(root.tokenLookup({ token: parent.token }));
        await assertGone(root.tokenLookup({ token: child.client_token }));
        await assertVaultError(parent.vault.tokenLookupSelf(), 403);
    });

    it('tokenRevokeOrphan revokes the token and orphans its children', async () => {
        const parent = await newToken({ policies: [policy] });
        const child = (await parent.vault.tokenCreate({ policies: [policy], ttl: '1h' })).auth;
        assertNoContent(await root.tokenRevokeOrphan({ token: parent.token }));
        await assertGone(root.tokenLookup({ token: parent.token }));
        const orphaned = await root.tokenLookup({ token: child.client_token });
        assert.equal(orphaned.data.orphan, true);
        assert.equal((await parent.vault.tokenLookupSelf()).data.accessor, child.accessor);
    });

    it('tokenRevokeAccessor', async () => {
        const t = await newToken();
        assertNoContent(await root.tokenRevokeAccessor({ accessor: t.accessor }));
        await assertVaultError(t.vault.tokenLookupSelf(), 403);
        await assertGone(root.tokenLookup({ token: t.token }));
        await assertVaultError(root.tokenLookupAccessor({ accessor: t.accessor }), 400, (body) =>
            assert.deepEqual(body.errors, ['invalid accessor']),
        );
    });

    it('tokenRevokeSelf', async () => {
        const t = await newToken();
        assertNoContent(await t.vault.tokenRevokeSelf());
        await assertVaultError(t.vault.tokenLookupSelf(), 403);
        await assertGone(root.tokenLookup({ token: t.token }));
    });

    it('tokenAccessors lists live tokens only (LIST auth/token/accessors)', async () => {
        const live = await newToken();
        const dead = await newToken();
        assertNoContent(await root.tokenRevoke({ token: dead.token }));
        const listed = await root.tokenAccessors();
        assertEnvelope(listed);
        const rootAccessor = (await root.tokenLookupSelf()).data.accessor;
        assert.ok(listed.data.keys.includes(live.accessor));
        assert.ok(listed.data.keys.includes(rootAccessor));
        assert.ok(!listed.data.keys.includes(dead.accessor));
    });

    it('token roles: addTokenRole, getTokenRole, tokenRoles, tokenCreateRole, removeTokenRole', async () => {
        const role = unique('nv-role');
        assertNoContent(
            await root.addTokenRole({ role_name: role, allowed_policies: policy, orphan: true, period: 3600, renewable: true }),
        );
        const got = await root.getTokenRole({ role_name: role });
        assertEnvelope(got);
        assert.equal(got.data.name, role);
        assert.deepEqual(got.data.allowed_policies, [policy]);
        assert.equal(got.data.orphan, true);
        assert.equal(got.data.period, 3600);
        assert.equal(got.data.renewable, true);

        const listed = await root.tokenRoles();
        assertEnvelope(listed);
        assert.ok(listed.data.keys.includes(role));

        const vault = client();
        const created = await vault.tokenCreateRole({ role_name: role, policies: [policy] });
        assertEnvelope(created);
        assert.equal(created.auth.orphan, true);
        assert.deepEqual(created.auth.policies, ['default', policy]);
        assert.equal(created.auth.lease_duration, 3600);
        assert.equal(vault.token, created.auth.client_token);
        const looked = await root.tokenLookup({ token: created.auth.client_token });
        assert.equal(looked.data.path, `auth/token/create/${role}`);
        assert.equal(looked.data.role, role);
        assert.equal(looked.data.period, 3600);

        assertNoContent(await root.removeTokenRole({ role_name: role }));
        await assertNotFound(root.getTokenRole({ role_name: role }));
    });

    it('startTokenRenewal renews the token in the background', async () => {
        const t = await newToken({ policies: [policy] });
        // Without a ttl it asks lookup-self, and schedules the renewal at 80% of the answer.
        const looked = await t.vault.startTokenRenewal();
        assert.ok(looked.data.ttl > 3500, `ttl ${looked.data.ttl}`);
        t.vault.stopTokenRenewal();

        // Told the token has 1 s left, it renews it after a second.
        const renewed = new Promise((resolve, reject) => {
            // node-vault's own timer does not keep the process alive; this one does.
            const guard = setTimeout(() => reject(new Error('no token:renewed event within 30 s')), 30_000);
            t.vault.once('token:renewed', (r) => {
                clearTimeout(guard);
                resolve(r);
            });
            t.vault.once('token:error:renew', (e) => {
                clearTimeout(guard);
                reject(e);
            });
        });
        await t.vault.startTokenRenewal({ ttl: 1, increment: '2h' });
        try {
            const result = await renewed;
            assert.equal(result.auth.client_token, t.token);
            assert.equal(result.auth.lease_duration, 7200);
        } finally {
            t.vault.stopTokenRenewal();
        }
        const own = await t.vault.tokenLookupSelf();
        assert.ok(own.data.ttl > 7000, `ttl ${own.data.ttl}`);
    });
});
