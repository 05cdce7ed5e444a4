"""hvac's `client.sys`: mounts, leases, policies (both APIs) and health.

Reference: ../../shared/reference/vault-aws-api.md sections 9 and 10.1.
"""

import datetime

import hvac
import pytest
from conftest import S3_READ_POLICY, assert_envelope, caller_arn, iam_user_names, key_is_live, unique

SYSTEM_MAX_TTL = 2764800


def rfc3339(text):
    """Vault's RFC 3339 times (nanoseconds and a Z allowed); Python 3.11 reads them."""
    assert text.endswith("Z") or "+" in text, text
    head, dot, frac = text.rstrip("Z").partition(".")
    return datetime.datetime.fromisoformat(head + (dot + frac[:6] if dot else "") + "+00:00")


# --- mounts ------------------------------------------------------------------------------------


def test_mounts_enable_list_tune_disable(client):
    path = unique("aws-mount")
    resp = client.sys.enable_secrets_engine(
        backend_type="aws",
        path=path,
        description="for the compat suite",
        config={"default_lease_ttl": "1h", "max_lease_ttl": 7200},
    )
    assert resp.status_code == 204

    mounts = client.sys.list_mounted_secrets_engines()
    assert_envelope(mounts)
    # Vault lists every mount twice: at the top level and under data.
    for listing in (mounts, mounts["data"]):
        entry = listing[f"{path}/"]
        assert entry["type"] == "aws"
        assert entry["description"] == "for the compat suite"
        assert entry["accessor"].startswith("aws_")
        assert entry["config"]["default_lease_ttl"] == 3600
        assert entry["config"]["max_lease_ttl"] == 7200
        assert entry["config"]["force_no_cache"] is False
        assert entry["local"] is False and entry["seal_wrap"] is False
    assert client.sys.retrieve_mount_option(path, "nope", "fallback") == "fallback"

    tune = client.sys.read_mount_configuration(path)
    assert_envelope(tune)
    assert tune["data"]["default_lease_ttl"] == 3600
    assert tune["data"]["max_lease_ttl"] == 7200
    assert tune["data"]["description"] == "for the compat suite"
    assert tune["data"]["force_no_cache"] is False

    assert client.sys.tune_mount_configuration(path, default_lease_ttl="30m", max_lease_ttl="2h").status_code == 204
    tune = client.sys.read_mount_configuration(path)["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (1800, 7200)
    # "0s" (or 0) goes back to the system default.
    client.sys.tune_mount_configuration(path, default_lease_ttl="0s", max_lease_ttl=0)
    tune = client.sys.read_mount_configuration(path)["data"]
    assert (tune["default_lease_ttl"], tune["max_lease_ttl"]) == (SYSTEM_MAX_TTL, SYSTEM_MAX_TTL)

    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.sys.enable_secrets_engine(backend_type="aws", path=path)
    assert str(err.value).startswith(f"path is already in use at {path}/")

    assert client.sys.disable_secrets_engine(path).status_code == 204
    assert f"{path}/" not in client.sys.list_mounted_secrets_engines()["data"]


def test_enable_with_the_defaults_hvac_sends(client):
    """hvac sends description, config, options and plugin_name as null."""
    path = unique("aws-nulls")
    assert client.sys.enable_secrets_engine("aws", path=path).status_code == 204
    entry = client.sys.list_mounted_secrets_engines()["data"][f"{path}/"]
    assert entry["description"] == ""
    # The listing shows the mount's own settings: 0 means "the system default".
    assert entry["config"]["default_lease_ttl"] == 0
    assert entry["config"]["max_lease_ttl"] == 0
    assert entry["options"] is None or entry["options"] == {}
    client.sys.disable_secrets_engine(path)


def test_unknown_engine_type_is_refused(client):
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.enable_secrets_engine(backend_type="kv", path=unique("kv"))


# --- leases ------------------------------------------------------------------------------------


@pytest.fixture
def iam_role(configured):
    name = unique("hvac-lease")
    configured.secrets.aws.create_or_update_role(
        name=name, credential_type="iam_user", policy_document=S3_READ_POLICY
    )
    return name


def test_read_list_renew_revoke_lease(configured, iam_role):
    creds = configured.secrets.aws.generate_credentials(name=iam_role)
    lease_id = creds["lease_id"]

    lease = configured.sys.read_lease(lease_id=lease_id)
    assert_envelope(lease)
    data = lease["data"]
    assert set(data) >= {"id", "issue_time", "expire_time", "last_renewal", "renewable", "ttl"}
    assert data["id"] == lease_id
    assert data["renewable"] is True
    assert data["last_renewal"] is None
    issued, expires = rfc3339(data["issue_time"]), rfc3339(data["expire_time"])
    assert 0 < (expires - issued).total_seconds() <= SYSTEM_MAX_TTL + 1
    assert 0 < data["ttl"] <= SYSTEM_MAX_TTL

    listed = configured.sys.list_leases(prefix=f"aws/creds/{iam_role}/")
    assert_envelope(listed)
    assert listed["data"]["keys"] == [lease_id.rsplit("/", 1)[1]]
    folders = configured.sys.list_leases(prefix="aws/creds/")["data"]["keys"]
    assert f"{iam_role}/" in folders

    renewed = configured.sys.renew_lease(lease_id=lease_id, increment=600)
    assert_envelope(renewed, leased=True)
    assert renewed["lease_id"] == lease_id
    assert renewed["renewable"] is True
    assert 590 <= renewed["lease_duration"] <= 600
    assert renewed["data"] is None
    assert configured.sys.read_lease(lease_id=lease_id)["data"]["last_renewal"] is not None
    # increment null (hvac's default) is the backend's default.
    renewed = configured.sys.renew_lease(lease_id=lease_id)
    assert renewed["lease_duration"] > 600

    user = caller_arn(creds["data"]).rsplit("/", 1)[1]
    assert configured.sys.revoke_lease(lease_id=lease_id).status_code == 204
    assert user not in iam_user_names()
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.sys.read_lease(lease_id=lease_id)
    assert str(err.value).startswith("invalid lease")
    # Nothing left to list: a 404.
    with pytest.raises(hvac.exceptions.InvalidPath):
        configured.sys.list_leases(prefix=f"aws/creds/{iam_role}/")


def test_lease_errors(configured):
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.sys.read_lease(lease_id="")
    assert str(err.value).startswith("lease_id must be specified")
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.sys.renew_lease(lease_id="aws/creds/nope/abc")
    assert "lease not found" in str(err.value) or "invalid lease" in str(err.value)


def test_revoke_prefix_and_force(configured, iam_role):
    first = configured.secrets.aws.generate_credentials(name=iam_role)
    second = configured.secrets.aws.generate_credentials(name=iam_role)
    arns = [caller_arn(c["data"]) for c in (first, second)]
    users = {arn.rsplit("/", 1)[1] for arn in arns}
    assert users <= iam_user_names()
    assert configured.sys.revoke_prefix(prefix=f"aws/creds/{iam_role}").status_code == 204
    assert not users & iam_user_names()
    for creds, arn in zip((first, second), arns):
        assert not key_is_live(creds["data"], arn)

    third = configured.secrets.aws.generate_credentials(name=iam_role)
    arn = caller_arn(third["data"])
    assert configured.sys.revoke_force(prefix=f"aws/creds/{iam_role}").status_code == 204
    with pytest.raises(hvac.exceptions.InvalidRequest):
        configured.sys.read_lease(lease_id=third["lease_id"])
    # revoke-force forgets the leases after trying the backend: here the backend worked.
    assert not key_is_live(third["data"], arn)


# --- policies ----------------------------------------------------------------------------------

POLICY_HCL = 'path "aws/creds/deploy" {\n  capabilities = ["read"]\n}\n'


def test_acl_policies_api(client):
    name = unique("hvac-acl")
    assert client.sys.create_or_update_acl_policy(name=name, policy=POLICY_HCL).status_code == 204
    read = client.sys.read_acl_policy(name)
    assert_envelope(read)
    assert read["data"] == {"name": name, "policy": POLICY_HCL}
    listed = client.sys.list_acl_policies()
    assert {"default", "root", name} <= set(listed["data"]["keys"])
    # A dict policy is sent as JSON text and kept as sent.
    as_json = {"path": {"aws/sts/*": {"capabilities": ["update"]}}}
    client.sys.create_or_update_acl_policy(name=name, policy=as_json, pretty_print=False)
    assert client.sys.read_acl_policy(name)["data"]["policy"] == '{"path": {"aws/sts/*": {"capabilities": ["update"]}}}'
    assert client.sys.delete_acl_policy(name).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.read_acl_policy(name)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.create_or_update_acl_policy(name=unique("bad"), policy='path "x" { capabilities = ["fly"] }')


def test_legacy_policy_api(client):
    name = unique("hvac-legacy-policy")
    assert client.sys.create_or_update_policy(name=name, policy=POLICY_HCL).status_code == 204
    read = client.sys.read_policy(name)
    # The legacy API answers {name, rules}.
    assert read["data"] == {"name": name, "rules": POLICY_HCL}
    listed = client.sys.list_policies()
    assert name in listed["data"]["policies"]
    assert listed["data"]["policies"] == listed["data"]["keys"]
    assert client.sys.delete_policy(name).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.read_policy(name)


# --- health ------------------------------------------------------------------------------------


def test_health(client):
    # hvac's default: HEAD, no exception whatever the code.
    head = client.sys.read_health_status()
    assert head.status_code == 200
    assert head.text == ""
    health = client.sys.read_health_status(method="GET")
    for key in (
        "initialized",
        "sealed",
        "standby",
        "performance_standby",
        "replication_performance_mode",
        "replication_dr_mode",
        "server_time_utc",
        "version",
        "cluster_name",
        "cluster_id",
    ):
        assert key in health, key
    assert health["initialized"] is True and health["sealed"] is False and health["standby"] is False
    assert isinstance(health["server_time_utc"], int)
    assert health["replication_dr_mode"] == "disabled"
    # Code overrides go in the query string.
    resp = client.sys.read_health_status(method="GET", active_code=299)
    assert resp.status_code == 299
    assert client.sys.is_initialized() is True
    assert client.sys.is_sealed() is False
    assert client.seal_status["sealed"] is False
