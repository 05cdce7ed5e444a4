"""hvac's generic `read`, `write`, `list` and `delete` on keymint's paths.

hvac's `list` sends `GET ?list=True` and `read`/`list` turn a 404 into None (reference 10.1).
"""

import json

import hvac
import pytest
from conftest import S3_READ_POLICY, assert_envelope, caller_arn, iam_user_names, unique


def test_write_read_list_delete_a_role(configured):
    name = unique("generic")
    # write sends a JSON POST; a write with nothing to say is a 204.
    resp = configured.write(
        f"aws/roles/{name}", credential_type="iam_user", policy_document=json.dumps(S3_READ_POLICY), user_path="/compat/"
    )
    assert resp.status_code == 204
    role = configured.read(f"aws/roles/{name}")
    assert_envelope(role)
    assert role["data"]["user_path"] == "/compat/"
    assert name in configured.list("aws/roles")["data"]["keys"]
    # hvac's delete returns nothing; the 204 is checked by the next read.
    configured.delete(f"aws/roles/{name}")
    assert configured.read(f"aws/roles/{name}") is None


def test_write_data_and_unknown_parameters(configured):
    name = unique("generic")
    resp = configured.write_data(
        f"aws/roles/{name}", data={"credential_type": "iam_user", "policy_document": json.dumps(S3_READ_POLICY), "colour": "blue"}
    )
    # An ignored parameter turns the 204 into a 200 carrying a warning.
    assert resp["warnings"] == ["Endpoint ignored these unrecognized parameters: [colour]"]
    assert resp["data"] is None


def test_read_creds_and_list_nothing(configured):
    name = unique("generic")
    # hvac sends a dict as a JSON object, which a string field refuses, as in Vault.
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.write(f"aws/roles/{name}", credential_type="iam_user", policy_document=S3_READ_POLICY)
    assert str(err.value).startswith('Field validation failed: error converting input map[')
    configured.write(f"aws/roles/{name}", credential_type="iam_user", policy_document=json.dumps(S3_READ_POLICY))
    creds = configured.read(f"aws/creds/{name}")
    assert_envelope(creds, leased=True)
    user = caller_arn(creds["data"]).rsplit("/", 1)[1]
    assert user in iam_user_names()
    configured.write("sys/leases/revoke", lease_id=creds["lease_id"])
    assert user not in iam_user_names()
    # Nothing to list: hvac sees None (a 404 with no errors).
    assert configured.list(f"sys/leases/lookup/aws/creds/{name}/") is None
    assert configured.read("aws/roles/" + unique("missing")) is None


def test_errors_become_hvac_exceptions(configured):
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.write("aws/roles/" + unique("bad"), credential_type="nope")
    assert "unrecognized credential type: nope" in str(err.value)
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        configured.write("aws/roles/" + unique("bad"), credential_type="iam_user", default_sts_ttl="abc")
    assert str(err.value).startswith('Field validation failed: error converting input abc for field "default_sts_ttl"')
    with pytest.raises(hvac.exceptions.InvalidPath):
        configured.write("nomount/roles/x", a=1)
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=configured.url, token="wrong").read("aws/roles/x")


def test_strict_http_client(configured):
    """hvac with strict_http=True lists with GET ?list=true instead of the LIST verb."""
    name = unique("strict")
    configured.write(f"aws/roles/{name}", credential_type="iam_user", policy_document=json.dumps(S3_READ_POLICY))
    strict = hvac.Client(url=configured.url, token=configured.token, strict_http=True)
    assert name in strict.secrets.aws.list_roles()["data"]["keys"]
    assert name in strict.list("aws/roles")["data"]["keys"]
