"""hvac's `client.secrets.aws`: every method, with the structures it returns.

Reference: ../../shared/reference/vault-aws-api.md sections 2, 3, 8 and 10.1 (what hvac 2.4.0 sends).
"""

import json

import hvac
import pytest
from conftest import (
    ACCOUNT_ID,
    MOTO_URL,
    S3_READ_POLICY,
    assert_envelope,
    aws_client,
    caller_arn,
    configure_root,
    iam_user_names,
    key_is_live,
    unique,
)

ROLE_KEYS = {
    "credential_type",
    "policy_arns",
    "role_arns",
    "policy_document",
    "iam_groups",
    "iam_tags",
    "session_tags",
    "external_id",
    "default_sts_ttl",
    "max_sts_ttl",
    "user_path",
    "permissions_boundary_arn",
    "mfa_serial_number",
}


def test_configure_root_then_read_it_back(configured):
    config = configured.read("aws/config/root")
    assert_envelope(config)
    data = config["data"]
    assert data["region"] == "us-east-1"
    assert data["iam_endpoint"] == MOTO_URL
    assert data["sts_endpoint"] == MOTO_URL
    assert data["access_key"].startswith(("AKIA", "ASIA"))
    assert "secret_key" not in data
    # hvac always sends "max_retries": null when not given; a null int is the zero value, sent.
    assert data["max_retries"] == 0
    assert "{{" in data["username_template"]


def test_configure_and_read_lease(configured):
    configured.secrets.aws.configure_lease(lease="30m", lease_max="12h")
    lease = configured.secrets.aws.read_lease_config()
    assert_envelope(lease)
    assert lease["data"] == {"lease": "30m0s", "lease_max": "12h0m0s"}
    # Integer seconds are accepted as strings too, and read back as Go durations.
    configured.secrets.aws.configure_lease(lease="5400", lease_max="768h")
    assert configured.secrets.aws.read_lease_config()["data"] == {"lease": "1h30m0s", "lease_max": "768h0m0s"}
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.secrets.aws.configure_lease(lease="", lease_max="1h")
    assert str(err.value) == "'lease' is a required parameter, on post {}/v1/aws/config/lease".format(
        configured.url
    )


def test_iam_user_role_round_trip(configured):
    name = unique("hvac-iam")
    resp = configured.secrets.aws.create_or_update_role(
        name=name,
        credential_type="iam_user",
        policy_document=S3_READ_POLICY,
        policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        iam_tags=["team=platform", "cost-center=42"],
    )
    assert resp.status_code == 204
    role = configured.secrets.aws.read_role(name=name)
    assert_envelope(role)
    data = role["data"]
    # Vault's keys, all of them; keymint adds its own (docs/vault-compatibility.md).
    assert ROLE_KEYS <= set(data)
    assert data["credential_type"] == "iam_user"
    # hvac sends a dict as indented JSON; the stored document is compacted.
    assert json.loads(data["policy_document"]) == S3_READ_POLICY
    assert " " not in data["policy_document"] and "\n" not in data["policy_document"]
    assert data["policy_arns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert data["iam_tags"] == {"team": "platform", "cost-center": "42"}
    assert data["role_arns"] is None and data["iam_groups"] is None and data["session_tags"] is None
    assert data["default_sts_ttl"] == 0 and data["max_sts_ttl"] == 0
    assert data["user_path"] == "" and data["external_id"] == "" and data["mfa_serial_number"] == ""

    # A second write merges: what is not sent stays.
    configured.secrets.aws.create_or_update_role(name=name, credential_type="iam_user", iam_tags={"team": "infra"})
    data = configured.secrets.aws.read_role(name=name)["data"]
    assert data["iam_tags"] == {"team": "infra"}
    assert data["policy_arns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]

    listed = configured.secrets.aws.list_roles()
    assert_envelope(listed)
    assert name in listed["data"]["keys"]
    assert listed["data"]["keys"] == sorted(listed["data"]["keys"])

    assert configured.secrets.aws.delete_role(name=name).status_code == 204
    with pytest.raises(hvac.exceptions.InvalidPath):
        configured.secrets.aws.read_role(name=name)
    # Deleting what is gone is still a 204, as in Vault.
    assert configured.secrets.aws.delete_role(name=name).status_code == 204


def test_sts_role_fields_and_validation_texts(configured, aws_role_arn):
    name = unique("hvac-ar")
    configured.secrets.aws.create_or_update_role(
        name=name,
        credential_type="assumed_role",
        role_arns=aws_role_arn,
        default_sts_ttl="15m",
        max_sts_ttl=3600,
    )
    data = configured.secrets.aws.read_role(name=name)["data"]
    assert data["credential_type"] == "assumed_role"
    assert data["role_arns"] == [aws_role_arn]
    assert data["default_sts_ttl"] == 900 and data["max_sts_ttl"] == 3600
    assert data["policy_arns"] is None and data["policy_document"] == ""

    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.secrets.aws.create_or_update_role(
            name=unique("hvac-bad"), credential_type="iam_user", role_arns=[aws_role_arn]
        )
    assert str(err.value).startswith(
        'error(s) validating supplied role data: "1 error occurred:\\n\\t* '
        "cannot supply role_arns when credential_type isn't assumed_role\\n\\n\""
    )
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.secrets.aws.create_or_update_role(
            name=unique("hvac-bad"), credential_type="federation_token", default_sts_ttl=7200, max_sts_ttl=3600
        )
    assert '\\"default_sts_ttl\\" value must be less than or equal to \\"max_sts_ttl\\" value' in str(err.value)
    # hvac refuses session_token itself, before sending anything.
    with pytest.raises(hvac.exceptions.ParamValidationError):
        configured.secrets.aws.create_or_update_role(name=unique("hvac-st"), credential_type="session_token")


def test_legacy_params(configured):
    """hvac's legacy_params sends {"policy": ..., "arn": ...}, one of them null."""
    name = unique("hvac-legacy")
    readonly = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    resp = configured.secrets.aws.create_or_update_role(
        name=name, credential_type="iam_user", policy_arns=[readonly], legacy_params=True
    )
    # Vault answers a legacy write with 200, no data and a warning.
    assert resp["data"] is None
    assert resp["warnings"] == [
        "Detected use of legacy role or policy parameter. Please upgrade to use the new parameters."
    ]
    data = configured.secrets.aws.read_role(name=name)["data"]
    assert data["credential_type"] == "iam_user"
    assert data["policy_arns"] == [readonly]
    # A policy document comes with "arn": null, which counts as given, as in Vault: a 500.
    with pytest.raises(hvac.exceptions.InternalServerError) as err:
        configured.secrets.aws.create_or_update_role(
            name=unique("hvac-legacy"), credential_type="iam_user", policy_document=S3_READ_POLICY, legacy_params=True
        )
    assert "only one of policy or arn should be provided" in str(err.value)


def test_generate_iam_user_credentials_and_revoke(configured):
    name = unique("hvac-creds")
    configured.secrets.aws.create_or_update_role(
        name=name, credential_type="iam_user", policy_document=S3_READ_POLICY
    )
    before = iam_user_names()
    creds = configured.secrets.aws.generate_credentials(name=name)
    assert_envelope(creds, leased=True)
    assert creds["lease_id"].startswith(f"aws/creds/{name}/")
    assert creds["renewable"] is True
    data = creds["data"]
    assert set(data) == {"access_key", "secret_key", "session_token"}
    assert data["session_token"] is None
    arn = caller_arn(data)
    assert arn.startswith(f"arn:aws:iam::{ACCOUNT_ID}:user/")
    user = arn.rsplit("/", 1)[1]
    assert user in iam_user_names() - before
    # The default username template: vault-<display name>-<role>-<unix time>-<random>.
    assert user.startswith(f"vault-root-{name}-")

    configured.sys.revoke_lease(lease_id=creds["lease_id"])
    assert user not in iam_user_names()
    assert not key_is_live(data, arn)


def test_generate_sts_credentials(configured, aws_role_arn):
    assumed = unique("hvac-assumed")
    configured.secrets.aws.create_or_update_role(
        name=assumed, credential_type="assumed_role", role_arns=[aws_role_arn]
    )
    creds = configured.secrets.aws.generate_credentials(
        name=assumed, endpoint="sts", ttl="20m", role_session_name="hvac-session"
    )
    assert_envelope(creds, leased=True)
    assert creds["lease_id"].startswith(f"aws/sts/{assumed}/")
    assert creds["renewable"] is False
    assert 1150 <= creds["lease_duration"] <= 1200
    data = creds["data"]
    assert set(data) == {"access_key", "secret_key", "session_token", "security_token", "arn", "ttl"}
    assert data["security_token"] == data["session_token"]
    assert data["arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/compat-deploy/hvac-session"
    assert caller_arn(data) == data["arn"]

    # The same role through creds/ with a GET and the role ARN in the query string.
    creds = configured.secrets.aws.generate_credentials(name=assumed, role_arn=aws_role_arn)
    assert creds["lease_id"].startswith(f"aws/creds/{assumed}/")
    assert creds["data"]["arn"].startswith(f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/compat-deploy/vault-")

    federated = unique("hvac-fed")
    configured.secrets.aws.create_or_update_role(
        name=federated, credential_type="federation_token", policy_document=S3_READ_POLICY
    )
    creds = configured.secrets.aws.generate_credentials(name=federated, endpoint="sts", ttl=900)
    assert_envelope(creds, leased=True)
    assert set(creds["data"]) == {"access_key", "secret_key", "session_token", "security_token", "ttl"}
    assert creds["data"]["ttl"] == creds["lease_duration"] and 890 <= creds["lease_duration"] <= 900
    assert creds["data"]["session_token"]


def test_generate_credential_errors(configured, aws_role_arn):
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.secrets.aws.generate_credentials(name="no-such-role")
    assert str(err.value).startswith('Role "no-such-role" not found')
    name = unique("hvac-ar")
    configured.secrets.aws.create_or_update_role(
        name=name, credential_type="assumed_role", role_arns=[aws_role_arn]
    )
    other = f"arn:aws:iam::{ACCOUNT_ID}:role/not-allowed"
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.secrets.aws.generate_credentials(name=name, endpoint="sts", role_arn=other)
    assert str(err.value).startswith(f'role_arn "{other}" not in allowed role arns for Vault role "{name}"')
    # STS leases do not renew.
    creds = configured.secrets.aws.generate_credentials(name=name, endpoint="sts")
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.sys.renew_lease(lease_id=creds["lease_id"])
    assert str(err.value).startswith("lease is not renewable")


def test_rotate_root(configured):
    before = configured.read("aws/config/root")["data"]["access_key"]
    rotated = configured.secrets.aws.rotate_root_iam_credentials()
    assert_envelope(rotated)
    new = rotated["data"]["access_key"]
    assert new != before
    assert configured.read("aws/config/root")["data"]["access_key"] == new
    iam = aws_client("iam")
    keys = {k["AccessKeyId"] for k in iam.list_access_keys(UserName="keymint-root")["AccessKeyMetadata"]}
    assert keys == {new}
    # The new key works: credentials can still be minted.
    name = unique("hvac-after-rotate")
    configured.secrets.aws.create_or_update_role(
        name=name, credential_type="iam_user", policy_document=S3_READ_POLICY
    )
    creds = configured.secrets.aws.generate_credentials(name=name)
    assert caller_arn(creds["data"]).startswith(f"arn:aws:iam::{ACCOUNT_ID}:user/")
    configured.sys.revoke_lease(lease_id=creds["lease_id"])


def test_other_mount_points(client):
    """Every method takes mount_point: a second aws mount, configured and used through it."""
    mount = unique("aws-hvac")
    client.sys.enable_secrets_engine(backend_type="aws", path=mount)
    try:
        configure_root(client, unique("root2"), mount_point=mount)
        client.secrets.aws.configure_lease(lease="1h", lease_max="2h", mount_point=mount)
        assert client.secrets.aws.read_lease_config(mount_point=mount)["data"]["lease"] == "1h0m0s"
        with pytest.raises(hvac.exceptions.InvalidPath):
            client.secrets.aws.list_roles(mount_point=mount)
        client.secrets.aws.create_or_update_role(
            name="r", credential_type="iam_user", policy_document=S3_READ_POLICY, mount_point=mount
        )
        assert client.secrets.aws.list_roles(mount_point=mount)["data"]["keys"] == ["r"]
        creds = client.secrets.aws.generate_credentials(name="r", mount_point=mount)
        assert creds["lease_id"].startswith(f"{mount}/creds/r/")
        assert creds["lease_duration"] == 3600
        arn = caller_arn(creds["data"])
        assert arn.startswith(f"arn:aws:iam::{ACCOUNT_ID}:user/")
    finally:
        client.sys.disable_secrets_engine(path=mount)
    # Disabling the mount revoked its lease: the IAM user is gone.
    assert arn.rsplit("/", 1)[1] not in iam_user_names()
    assert not key_is_live(creds["data"], arn)


def test_names_with_at_signs(configured):
    """hvac escapes `@` in names as %40; the server routes on the decoded path, as Vault's does."""
    name = unique("team") + "@prod"
    configured.secrets.aws.create_or_update_role(name=name, credential_type="iam_user", policy_document=S3_READ_POLICY)
    assert configured.secrets.aws.read_role(name=name)["data"]["credential_type"] == "iam_user"
    assert name in configured.secrets.aws.list_roles()["data"]["keys"]
    creds = configured.secrets.aws.generate_credentials(name=name)
    assert creds["lease_id"].startswith(f"aws/creds/{name}/")
    configured.sys.revoke_lease(lease_id=creds["lease_id"])
    configured.secrets.aws.delete_role(name=name)
    with pytest.raises(hvac.exceptions.InvalidPath):
        configured.secrets.aws.read_role(name=name)
