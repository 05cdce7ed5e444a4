"""Fixtures of the hvac conformance suite.

The Rust driver (tests/compat/hvac.rs) starts a moto and a dev-mode keymint, then runs pytest
here with VAULT_ADDR and VAULT_TOKEN (the root token) pointing at keymint and
KEYMINT_COMPAT_MOTO_URL at moto. One keymint serves the whole run, so every test names its own
roles, policies and mounts.
"""

import os
import time
import uuid

import boto3
import hvac
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

MOTO_URL = os.environ["KEYMINT_COMPAT_MOTO_URL"]
ACCOUNT_ID = os.environ["KEYMINT_COMPAT_ACCOUNT_ID"]
REGION = "us-east-1"

# The keys the suite's own boto3 calls to moto sign with: moto accepts any.
HARNESS_KEY = "compat-harness"
HARNESS_SECRET = "compat-harness-secret"

S3_READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


def unique(prefix):
    """A name no other test of this run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def aws_client(service, access_key=HARNESS_KEY, secret_key=HARNESS_SECRET, session_token=None):
    return boto3.client(
        service,
        endpoint_url=MOTO_URL,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(retries={"max_attempts": 1}),
    )


def caller_arn(data):
    """GetCallerIdentity signed with minted keys (a `data` block): the ARN AWS sees."""
    sts = aws_client(
        "sts",
        access_key=data["access_key"],
        secret_key=data["secret_key"],
        session_token=data.get("session_token"),
    )
    return sts.get_caller_identity()["Arn"]


def key_is_live(data, arn):
    """Whether minted keys still sign as `arn`. moto answers GetCallerIdentity for keys it does
    not know with a default identity, so a deleted key shows as a different ARN."""
    try:
        return caller_arn(data) == arn
    except ClientError:
        return False


def eventually(probe, what, timeout=30.0):
    """Polls `probe` until it returns true: for what Vault too does in the background (the
    leases of a revoked token are revoked after the token)."""
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def iam_user_names(path_prefix="/"):
    iam = aws_client("iam")
    return {u["UserName"] for u in iam.list_users(PathPrefix=path_prefix)["Users"]}


def assert_envelope(resp, *, leased=False):
    """The keys of Vault's JSON envelope (reference 1.3), with their types."""
    for key in ("request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"):
        assert key in resp, f"{key} missing from {resp}"
    uuid.UUID(resp["request_id"])
    assert isinstance(resp["renewable"], bool)
    assert isinstance(resp["lease_duration"], int)
    assert resp["wrap_info"] is None
    assert resp["warnings"] is None or all(isinstance(w, str) for w in resp["warnings"])
    if leased:
        assert resp["lease_id"] and resp["lease_duration"] > 0
    else:
        assert resp["lease_id"] == "" and resp["lease_duration"] == 0 and resp["renewable"] is False


@pytest.fixture(scope="session")
def client():
    c = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    assert c.is_authenticated()
    return c


def configure_root(client, user, **kwargs):
    """Makes the IAM user `user` in moto with one access key, and configures a mount through
    hvac with that key and moto's endpoints (`kwargs`: hvac's other arguments)."""
    iam = aws_client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    client.secrets.aws.configure_root_iam_credentials(
        access_key=key["AccessKeyId"],
        secret_key=key["SecretAccessKey"],
        iam_endpoint=MOTO_URL,
        sts_endpoint=MOTO_URL,
        **kwargs,
    )


@pytest.fixture(scope="session")
def configured(client):
    """`aws/` configured through hvac with the root keys of a moto IAM user."""
    configure_root(client, "keymint-root", region=REGION)
    return client


@pytest.fixture(scope="session")
def aws_role_arn():
    """An IAM role in moto that assumed_role credentials can assume."""
    iam = aws_client("iam")
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        f'"Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_ID}:root"}},"Action":"sts:AssumeRole"}}]}}'
    )
    return iam.create_role(RoleName="compat-deploy", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
