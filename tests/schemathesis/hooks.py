"""Schemathesis hooks of the OpenAPI fuzz test (tests/blackbox/openapi.rs), loaded through
SCHEMATHESIS_HOOKS. Two checks:

- `vault_error_shape`: every 4xx/5xx answer is Vault's error body, a JSON object whose `errors`
  is a list of strings (`{"errors": []}` for a read that found nothing).
- `no_unexpected_server_error`: no 5xx, except the 500s Vault itself answers for these inputs,
  which keymint keeps on purpose (docs/vault-compatibility.md, and the wire contract
  shared/reference/vault-aws-api.md). The test runs schemathesis' own `not_a_server_error`
  on every operation whose inputs cannot reach one of them.
"""

import json

import schemathesis

# Vault's 500s for a caller's input, kept for parity (see the docs above), by message prefix.
VAULT_PARITY_500S = (
    # roles/:name with both legacy parameters.
    "only one of policy or arn should be provided",
    # static-roles/:name: Enterprise-only fields, a period under 60 s, a user IAM does not know.
    "cross-account static roles are only supported in Vault Enterprise",
    "role rotation period out of range",
    "unable to validate username",
)

WRAPPED = "1 error occurred:\n\t* "


def _header(response, name):
    value = response.headers.get(name, [""])
    if isinstance(value, list):
        return value[0] if value else ""
    return value


def _errors(response):
    """The `errors` list of a Vault error body; AssertionError when the body is not one."""
    content_type = _header(response, "content-type")
    if not content_type.startswith("application/json"):
        raise AssertionError(f"{response.status_code} with Content-Type {content_type!r}, not JSON")
    try:
        body = json.loads(response.content or b"")
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} body is not JSON: {exc}") from None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        raise AssertionError(f'{response.status_code} body is not {{"errors": [string]}}: {body!r}')
    return errors


@schemathesis.check
def vault_error_shape(ctx, response, case):
    if response.status_code >= 400:
        _errors(response)
    return None


@schemathesis.check
def no_unexpected_server_error(ctx, response, case):
    if response.status_code < 500:
        return None
    errors = _errors(response)
    messages = [e[len(WRAPPED):] if e.startswith(WRAPPED) else e for e in errors]
    if response.status_code == 500 and messages and all(m.startswith(VAULT_PARITY_500S) for m in messages):
        return None
    raise AssertionError(f"server error {response.status_code}: {errors!r}")
