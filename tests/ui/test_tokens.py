"""Tokens and token roles in the browser: a token created here is found in the list, revoked
after the confirmation page, and then refused by the HTTP API; token roles are made, refused
beside their fields, and deleted."""

import json
import urllib.request

from conftest import unique
from support import check_page, http, text_of


def create_token(keymint_url, root_token, body):
    """auth/token/create through the HTTP API, as root: its auth block."""
    request = urllib.request.Request(
        f"{keymint_url}/v1/auth/token/create",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"X-Vault-Token": root_token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())["auth"]


def lookup_self(keymint_url, token):
    status, _, body = http("GET", f"{keymint_url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    return status, body


def test_create_find_and_revoke_a_token(signed_in, keymint_url):
    page = signed_in
    page.goto("/ui/tokens")
    name = unique("ui-token")
    page.get_by_label("Display name", exact=True).fill(name)
    page.get_by_label("Policies", exact=True).fill("default")
    page.get_by_label("TTL", exact=True).fill("1h")
    page.get_by_label("Metadata", exact=True).fill("team=ops")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_load_state("load")
    token = text_of(page.locator("#client_token"))
    accessor = text_of(page.locator("#created_accessor"))
    assert token and accessor, page.content()
    # The token is shown once: no screenshot of it.
    check_page(page, "tokens-created", screenshot=False)
    status, body = lookup_self(keymint_url, token)
    assert status == 200, f"the new token does not work: {status} {body}"
    assert json.loads(body)["data"]["meta"] == {"team": "ops"}

    page.get_by_label("Display name or policy", exact=True).fill(name)
    page.get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url("**/ui/tokens?filter=*")
    rows = page.locator("table.tokens tbody tr")
    assert rows.count() == 1, text_of(page.locator("main"))
    assert f"token-{name}" in text_of(rows.first)
    check_page(page, "tokens-filtered")

    rows.first.get_by_role("link", name=f"Revoke token {accessor}").click()
    page.wait_for_url("**/ui/tokens/revoke?accessor=*")
    assert text_of(page.locator("h1")) == "Revoke a token"
    assert "every token created under it" in text_of(page.locator(".warning"))
    check_page(page, "token-revoke")
    status, _ = lookup_self(keymint_url, token)
    assert status == 200, "the confirmation page revoked nothing"

    page.get_by_role("button", name="Revoke the token and what it made").click()
    page.wait_for_load_state("load")
    assert text_of(page.locator("h1")) == "Tokens"
    assert f"Revoked the token with accessor {accessor}" in text_of(page.locator("p.ok"))
    check_page(page, "tokens-revoked", screenshot=False)
    status, body = lookup_self(keymint_url, token)
    assert status == 403, f"the revoked token still works: {status} {body}"


def test_a_token_is_looked_up_by_accessor(signed_in, keymint_url, root_token):
    auth = create_token(
        keymint_url, root_token, {"policies": ["default"], "ttl": "2h", "display_name": unique("ui-lookup")}
    )
    page = signed_in
    page.goto("/ui/tokens")
    page.get_by_label("Accessor", exact=True).fill(auth["accessor"])
    page.get_by_role("button", name="Look up", exact=True).click()
    page.wait_for_url("**/ui/tokens/accessor?accessor=*")
    facts = text_of(page.locator("dl.facts"))
    assert "Renewable Yes" in facts and "Policies default" in facts, facts
    assert auth["client_token"] not in page.content(), "a lookup by accessor never shows the token"
    page.get_by_label("Renew by", exact=True).fill("3h")
    page.get_by_role("button", name="Renew", exact=True).click()
    page.wait_for_load_state("load")
    assert "Renewed: it expires 3h 0m from now." in text_of(page.locator("p.ok"))
    check_page(page, "token")


def test_token_roles_are_made_refused_and_deleted(signed_in, keymint_url, root_token):
    page = signed_in
    page.goto("/ui/tokens/roles")
    assert text_of(page.locator("h1")) == "Token roles"
    check_page(page, "token-roles")
    page.get_by_role("link", name="New token role").click()
    page.wait_for_url("**/ui/tokens/roles/new")
    check_page(page, "token-role-new")

    name = unique("ui-role")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Allowed policies", exact=True).fill("default")
    page.get_by_label("Default TTL", exact=True).fill("3h")
    page.get_by_label("Maximum TTL", exact=True).fill("1h")
    page.get_by_role("button", name="Save token role").click()
    page.wait_for_load_state("load")
    error = page.locator("#token_ttl-error")
    assert "cannot be greater" in text_of(error), text_of(page.locator("main"))
    assert page.get_by_label("Default TTL", exact=True).get_attribute("aria-invalid") == "true"
    check_page(page, "token-role-error")

    page.get_by_label("Default TTL", exact=True).fill("30m")
    page.get_by_role("button", name="Save token role").click()
    page.wait_for_load_state("load")
    assert f"Saved token role {name}." in text_of(page.locator("p.ok"))
    status, _, body = http("GET", f"{keymint_url}/v1/auth/token/roles/{name}", headers={"X-Vault-Token": root_token})
    assert status == 200 and json.loads(body)["data"]["token_ttl"] == 1800, body

    page.get_by_role("link", name=f"Delete {name}").click()
    page.wait_for_url(f"**/ui/tokens/roles/{name}/delete")
    check_page(page, "token-role-delete")
    page.get_by_role("button", name=f"Delete token role {name}").click()
    page.wait_for_load_state("load")
    assert f"Deleted token role {name}." in text_of(page.locator("p.ok"))
    status, _, _ = http("GET", f"{keymint_url}/v1/auth/token/roles/{name}", headers={"X-Vault-Token": root_token})
    assert status == 404
