"""hvac's `client.sys` auth-method calls, `client.auth.approle`, `client.auth.jwt` and
`client.auth.kubernetes`, and `client.sys.unwrap`, ending in AWS keys that work in moto.

Reference: ../../shared/reference/vault-auth-methods.md sections 1.4 and 5.1. JWTs are signed
here with a fresh EC key (`cryptography`), given to keymint as `jwt_validation_pubkeys` /
`pem_keys`; the fetched key sets and the TokenReview are covered by the black-box tests.
"""

import base64
import json
import os
import time

import hvac
import pytest
from conftest import caller_arn, unique
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://token.actions.githubusercontent.com"
DEPLOY_POLICY = 'path "aws/creds/%s" {\n  capabilities = ["read"]\n}\n'


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Signer:
    """An EC P-256 key that signs ES256 tokens."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())

    def pem(self):
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def cert_pem(self):
        """A self-signed certificate of the key: hvac takes only certificates as `pem_keys`."""
        name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "service-account-signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, claims):
        head = b64url(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(claims).encode())
        der = self.key.sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{head}.{body}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def as_token(token):
    return hvac.Client(url=os.environ["VAULT_ADDR"], token=token)


def anonymous():
    return hvac.Client(url=os.environ["VAULT_ADDR"])


@pytest.fixture(scope="module")
def deploy_role(configured):
    """An iam_user role in aws/ and a policy that reads its credentials."""
    name = unique("deploy")
    configured.secrets.aws.create_or_update_role(name, "iam_user")
    configured.sys.create_or_update_policy(name, DEPLOY_POLICY % name)
    return name


def test_auth_methods_are_enabled_listed_tuned_and_disabled(client):
    path = unique("approle")
    client.sys.enable_auth_method("approle", path=path, description="ci")
    methods = client.sys.list_auth_methods()
    # hvac's own tests look for the method at the top level of the answer.
    assert f"{path}/" in methods and f"{path}/" in methods["data"]
    assert methods[f"{path}/"]["type"] == "approle"
    assert "token/" in methods["data"]
    client.sys.tune_auth_method(path, default_lease_ttl="1h", max_lease_ttl="2h")
    tuned = client.sys.read_auth_method_tuning(path)
    assert tuned["data"]["default_lease_ttl"] == 3600 and tuned["data"]["max_lease_ttl"] == 7200
    with pytest.raises(hvac.exceptions.InvalidRequest, match="path is already in use"):
        client.sys.enable_auth_method("approle", path=path)
    client.sys.disable_auth_method(path)
    assert f"{path}/" not in client.sys.list_auth_methods()["data"]


def test_approle_from_role_to_aws_keys(client, deploy_role):
    mount = unique("approle")
    client.sys.enable_auth_method("approle", path=mount)
    approle = client.auth.approle
    approle.create_or_update_approle(
        "jenkins",
        token_policies=[deploy_role],
        token_ttl="20m",
        secret_id_num_uses=2,
        enable_local_secret_ids=False,
        mount_point=mount,
    )
    role = approle.read_role("jenkins", mount_point=mount)["data"]
    assert role["token_policies"] == [deploy_role.lower()]
    assert role["secret_id_num_uses"] == 2 and role["bind_secret_id"] is True
    assert approle.list_roles(mount_point=mount)["data"]["keys"] == ["jenkins"]

    role_id = approle.read_role_id("jenkins", mount_point=mount)["data"]["role_id"]
    approle.update_role_id("jenkins", "jenkins-role-id", mount_point=mount)
    assert approle.read_role_id("jenkins", mount_point=mount)["data"]["role_id"] == "jenkins-role-id"
    assert role_id != "jenkins-role-id"

    made = approle.generate_secret_id("jenkins", metadata={"job": "nightly"}, mount_point=mount)["data"]
    accessor = made["secret_id_accessor"]
    assert approle.list_secret_id_accessors("jenkins", mount_point=mount)["data"]["keys"] == [accessor]
    looked = approle.read_secret_id("jenkins", made["secret_id"], mount_point=mount)["data"]
    assert looked["metadata"] == {"job": "nightly"} and looked["secret_id_num_uses"] == 2
    assert approle.read_secret_id_accessor("jenkins", accessor, mount_point=mount)["data"]["secret_id_accessor"] == accessor

    job = anonymous()
    login = job.auth.approle.login("jenkins-role-id", made["secret_id"], mount_point=mount)
    assert login["auth"]["metadata"] == {"job": "nightly", "role_name": "jenkins"}
    assert job.token == login["auth"]["client_token"], "use_token: hvac keeps the token"
    creds = job.secrets.aws.generate_credentials(deploy_role)["data"]
    assert ":user/vault-approle-" in caller_arn(creds)

    # A custom secret id, destroyed by its accessor: its login is refused.
    custom = approle.create_custom_secret_id("jenkins", "my-custom-secret-id", mount_point=mount)["data"]
    approle.destroy_secret_id_accessor("jenkins", custom["secret_id_accessor"], mount_point=mount)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        anonymous().auth.approle.login("jenkins-role-id", "my-custom-secret-id", mount_point=mount)
    approle.destroy_secret_id("jenkins", made["secret_id"], mount_point=mount)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        anonymous().auth.approle.login("jenkins-role-id", made["secret_id"], mount_point=mount)
    approle.delete_role("jenkins", mount_point=mount)
    client.sys.disable_auth_method(mount)


def test_a_wrapped_secret_id_is_unwrapped_once(client):
    mount = unique("approle")
    client.sys.enable_auth_method("approle", path=mount)
    client.auth.approle.create_or_update_approle("ci", token_policies=["default"], secret_id_num_uses=1, mount_point=mount)
    wrapped = client.auth.approle.generate_secret_id("ci", mount_point=mount, wrap_ttl="60s")
    info = wrapped["wrap_info"]
    assert info["creation_path"] == f"auth/{mount}/role/ci/secret-id" and info["ttl"] == 60
    # The job unwraps with the wrapping token itself as its client token.
    unwrapped = as_token(info["token"]).sys.unwrap()
    secret_id = unwrapped["data"]["secret_id"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="wrapping token is not valid or does not exist"):
        client.sys.unwrap(info["token"])
    role_id = client.auth.approle.read_role_id("ci", mount_point=mount)["data"]["role_id"]
    assert anonymous().auth.approle.login(role_id, secret_id, mount_point=mount)["auth"]["client_token"]
    client.sys.disable_auth_method(mount)


def github_claims(ref="refs/heads/main", repo="acme/app"):
    now = int(time.time())
    return {
        "iss": ISSUER, "aud": "https://github.com/acme", "sub": f"repo:{repo}:ref:{ref}",
        "repository": repo, "repository_owner": repo.split("/")[0], "ref": ref,
        "iat": now, "nbf": now, "exp": now + 300,
    }


def test_jwt_from_config_to_aws_keys(client, deploy_role):
    path = unique("jwt")
    signer = Signer()
    client.sys.enable_auth_method("jwt", path=path)
    client.auth.jwt.configure(jwt_validation_pubkeys=[signer.pem()], bound_issuer=ISSUER, path=path)
    assert client.auth.jwt.read_config(path=path)["data"]["bound_issuer"] == ISSUER
    client.auth.jwt.create_role(
        "deploy",
        user_claim="repository",
        allowed_redirect_uris=[],
        bound_audiences=["https://github.com/acme"],
        bound_claims={"repository": "acme/app"},
        claim_mappings={"ref": "ref"},
        token_policies=[deploy_role],
        path=path,
    )
    role = client.auth.jwt.read_role("deploy", path=path)["data"]
    assert role["role_type"] == "jwt" and role["bound_claims_type"] == "string"
    assert client.auth.jwt.list_roles(path=path)["data"]["keys"] == ["deploy"]

    job = anonymous()
    login = job.auth.jwt.jwt_login("deploy", signer.sign(github_claims()), path=path)
    assert login["auth"]["metadata"] == {"ref": "refs/heads/main", "role": "deploy"}
    creds = job.secrets.aws.generate_credentials(deploy_role)["data"]
    assert ":user/vault-" in caller_arn(creds) and "acme_app" in caller_arn(creds)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="does not match any associated bound claim values"):
        anonymous().auth.jwt.jwt_login("deploy", signer.sign(github_claims(repo="evil/app")), path=path)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no known key successfully validated"):
        anonymous().auth.jwt.jwt_login("deploy", Signer().sign(github_claims()), path=path)
    client.auth.jwt.delete_role("deploy", path=path)
    client.sys.disable_auth_method(path)


def test_kubernetes_from_config_to_a_token(client):
    mount = unique("kubernetes")
    signer = Signer()
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.auth.kubernetes.configure("https://127.0.0.1:1", pem_keys=[signer.cert_pem()], mount_point=mount)
    # hvac's kubernetes reads answer the `data` block itself.
    config = client.auth.kubernetes.read_config(mount_point=mount)
    assert config["token_reviewer_jwt_set"] is False and config["disable_local_ca_jwt"] is False
    client.auth.kubernetes.create_role(
        "runner", ["runner"], ["ci"], ttl="15m", policies=["default"], audience="vault", mount_point=mount
    )
    role = client.auth.kubernetes.read_role("runner", mount_point=mount)
    assert role["token_ttl"] == 900 and role["ttl"] == 900 and role["audience"] == "vault"
    assert client.auth.kubernetes.list_roles(mount_point=mount)["keys"] == ["runner"]
    now = int(time.time())
    claims = {
        "iss": "https://kubernetes.default.svc", "aud": ["vault"], "sub": "system:serviceaccount:ci:runner",
        "kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "runner", "uid": "uid-1"}},
        "iat": now, "nbf": now, "exp": now + 600,
    }
    login = anonymous().auth.kubernetes.login("runner", signer.sign(claims), mount_point=mount)
    assert login["auth"]["metadata"]["service_account_namespace"] == "ci"
    assert login["auth"]["lease_duration"] == 900
    claims["kubernetes.io"]["namespace"] = "prod"
    with pytest.raises(hvac.exceptions.Forbidden):
        anonymous().auth.kubernetes.login("runner", signer.sign(claims), mount_point=mount)
    client.auth.kubernetes.delete_role("runner", mount_point=mount)
    client.sys.disable_auth_method(mount)
