"""hvac's `client.auth.token` and `is_authenticated`, and what a token's policies allow.

Reference: ../../shared/reference/vault-aws-api.md sections 9.4, 9.5 and 10.1.
"""

import os

import hvac
import pytest
from conftest import S3_READ_POLICY, assert_envelope, caller_arn, eventually, iam_user_names, unique

AUTH_KEYS = {
    "client_token",
    "accessor",
    "policies",
    "token_policies",
    "metadata",
    "lease_duration",
    "renewable",
    "entity_id",
    "token_type",
    "orphan",
}
LOOKUP_KEYS = {
    "accessor",
    "creation_time",
    "creation_ttl",
    "display_name",
    "entity_id",
    "expire_time",
    "explicit_max_ttl",
    "id",
    "issue_time",
    "meta",
    "num_uses",
    "orphan",
    "path",
    "policies",
    "renewable",
    "ttl",
    "type",
}


def as_token(token):
    return hvac.Client(url=os.environ["VAULT_ADDR"], token=token)


def test_is_authenticated(client):
    assert client.is_authenticated() is True
    assert as_token("not-a-token").is_authenticated() is False
    assert hvac.Client(url=os.environ["VAULT_ADDR"], token="").is_authenticated() is False


def test_root_lookup_self(client):
    me = client.auth.token.lookup_self()
    assert_envelope(me)
    data = me["data"]
    assert LOOKUP_KEYS <= set(data)
    assert data["policies"] == ["root"]
    assert data["display_name"] == "root"
    assert data["path"] == "auth/token/root"
    assert data["ttl"] == 0 and data["expire_time"] is None
    assert data["id"] == os.environ["VAULT_TOKEN"]


def test_create_lookup_renew_revoke(client):
    policy = unique("hvac-reader")
    client.sys.create_or_update_acl_policy(name=policy, policy='path "aws/roles/*" { capabilities = ["read"] }')
    created = client.auth.token.create(
        policies=[policy], ttl="1h", meta={"team": "platform"}, display_name="ci", num_uses=0
    )
    assert created["data"] is None
    auth = created["auth"]
    assert AUTH_KEYS <= set(auth)
    assert auth["policies"] == sorted(["default", policy])
    assert auth["token_policies"] == auth["policies"]
    assert auth["metadata"] == {"team": "platform"}
    assert auth["lease_duration"] == 3600
    assert auth["renewable"] is True
    assert auth["token_type"] == "service"
    assert auth["orphan"] is False
    token, accessor = auth["client_token"], auth["accessor"]
    assert token.startswith("hvs.")

    child = as_token(token)
    assert child.is_authenticated()
    me = child.auth.token.lookup_self()["data"]
    assert LOOKUP_KEYS <= set(me)
    assert me["display_name"] == "token-ci"
    assert me["meta"] == {"team": "platform"}
    assert me["path"] == "auth/token/create"
    assert me["type"] == "service"
    assert me["creation_ttl"] == 3600 and 3590 <= me["ttl"] <= 3600
    assert me["expire_time"] is not None

    looked_up = client.auth.token.lookup(token)["data"]
    assert looked_up["accessor"] == accessor and looked_up["id"] == token
    by_accessor = client.auth.token.lookup_accessor(accessor)["data"]
    assert by_accessor["accessor"] == accessor
    # A lookup by accessor never shows the token itself.
    assert by_accessor["id"] == ""
    assert accessor in client.auth.token.list_accessors()["data"]["keys"]

    renewed = child.auth.token.renew_self(increment="30m")
    assert renewed["auth"]["client_token"] == token
    assert 1790 <= renewed["auth"]["lease_duration"] <= 1800
    renewed = client.auth.token.renew(token, increment=600)
    assert renewed["auth"]["lease_duration"] <= 600
    renewed = client.auth.token.renew_accessor(accessor)
    assert renewed["auth"]["accessor"] == accessor

    # The token reads what its policy allows and nothing more.
    with pytest.raises(hvac.exceptions.Forbidden):
        child.secrets.aws.list_roles()
    with pytest.raises(hvac.exceptions.Forbidden):
        child.write("sys/policies/acl/" + unique("x"), policy='path "*" { capabilities = ["sudo"] }')

    assert child.auth.token.revoke_self().status_code == 204
    assert child.is_authenticated() is False
    with pytest.raises(hvac.exceptions.Forbidden):
        child.auth.token.lookup_self()


def test_revoke_cascades_and_orphans(client):
    creator = unique("hvac-creator")
    client.sys.create_or_update_acl_policy(
        name=creator, policy='path "auth/token/create*" { capabilities = ["update", "sudo"] }'
    )
    parent = as_token(client.auth.token.create(policies=[creator], ttl="1h")["auth"]["client_token"])
    child_token = parent.auth.token.create(ttl="30m")["auth"]["client_token"]
    orphan_token = parent.auth.token.create_orphan(ttl="30m")["auth"]
    assert orphan_token["orphan"] is True
    client.auth.token.revoke(parent.token)
    assert as_token(child_token).is_authenticated() is False
    assert as_token(orphan_token["client_token"]).is_authenticated() is True
    client.auth.token.revoke_accessor(orphan_token["accessor"])
    assert as_token(orphan_token["client_token"]).is_authenticated() is False

    parent = as_token(client.auth.token.create(policies=[creator], ttl="1h")["auth"]["client_token"])
    child_token = parent.auth.token.create(ttl="30m")["auth"]["client_token"]
    client.auth.token.revoke_and_orphan_children(parent.token)
    assert parent.is_authenticated() is False
    assert as_token(child_token).is_authenticated() is True


def test_a_token_holds_its_leases(configured):
    """Credentials a token minted are revoked with the token, as in Vault."""
    role = unique("hvac-tok")
    configured.secrets.aws.create_or_update_role(name=role, credential_type="iam_user", policy_document=S3_READ_POLICY)
    policy = unique("hvac-minter")
    configured.sys.create_or_update_acl_policy(
        name=policy, policy=f'path "aws/creds/{role}" {{ capabilities = ["read"] }}'
    )
    minter = as_token(configured.auth.token.create(policies=[policy], ttl="1h")["auth"]["client_token"])
    creds = minter.secrets.aws.generate_credentials(name=role)
    user = caller_arn(creds["data"]).rsplit("/", 1)[1]
    # Another role is out of the policy.
    with pytest.raises(hvac.exceptions.Forbidden):
        minter.secrets.aws.generate_credentials(name=unique("other"))
    minter.auth.token.revoke_self()
    # The token goes at once, its leases right after it (as in Vault, in the background).
    assert minter.is_authenticated() is False
    eventually(lambda: user not in iam_user_names(), f"IAM user {user} to be deleted")


def test_create_errors(client):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(ttl="soon")
    policy = unique("hvac-creator")
    client.sys.create_or_update_acl_policy(name=policy, policy='path "auth/token/create" { capabilities = ["update"] }')
    limited = as_token(client.auth.token.create(policies=[policy], ttl="1h")["auth"]["client_token"])
    # A non-root token grants only policies it has.
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        limited.auth.token.create(policies=["root"])
    assert str(err.value).startswith("child policies must be subset of parent")
    assert limited.auth.token.create(policies=[policy])["auth"]["policies"] == sorted(["default", policy])
