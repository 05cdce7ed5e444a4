"""Cross-site request forgery: every form of the UI, posted with the session cookie but from
another origin, is refused with 403 and changes nothing. The same post from keymint's own
origin goes through, so the refusal is the origin's doing."""

import json

import pytest

from conftest import unique
from support import form_action, http

FOREIGN = "https://evil.example"


def session_cookie(page):
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "keymint_ui"]
    return f"keymint_ui={cookie['value']}"


def form_post(page, button_name):
    """The form `button_name` submits, as the browser would send it: (action path, fields)."""
    button = page.get_by_role("button", name=button_name, exact=True)
    fields = button.evaluate("b => Array.from(new FormData(b.form, b.name ? b : null))")
    return form_action(button), fields


def post(keymint_url, path, fields, cookie, origin):
    headers = {"Origin": origin}
    if cookie:
        headers["Cookie"] = cookie
    return http("POST", keymint_url + path, headers=headers, form=fields)


def signed_in_still(keymint_url, cookie):
    status, _, _ = http("GET", keymint_url + "/ui/overview", headers={"Cookie": cookie})
    return status == 200


def auth_mounts(keymint_url, root_token):
    status, _, body = http("GET", f"{keymint_url}/v1/sys/auth", headers={"X-Vault-Token": root_token})
    assert status == 200, body
    return json.loads(body)


def test_enable_from_another_origin_is_refused(signed_in, keymint_url, root_token):
    page = signed_in
    cookie = session_cookie(page)
    page.goto("/ui/mounts")
    path = unique("csrf")
    page.get_by_label("Path", exact=True).fill(path)
    page.get_by_label("Type", exact=True).select_option("approle")
    action, fields = form_post(page, "Enable")

    status, _, body = post(keymint_url, action, fields, cookie, FOREIGN)
    assert status == 403, f"POST {action} from {FOREIGN}: {status} {body[:300]}"
    assert f"{path}/" not in json.dumps(auth_mounts(keymint_url, root_token)), "enabled despite the refusal"

    status, _, body = post(keymint_url, action, fields, cookie, keymint_url)
    assert status < 400, f"POST {action} from keymint's origin: {status} {body[:300]}"
    assert f"{path}/" in json.dumps(auth_mounts(keymint_url, root_token)), "same-origin Enable did nothing"


@pytest.mark.parametrize("button", ["Test connection", "Save"])
def test_aws_account_from_another_origin_is_refused(signed_in, keymint_url, stored_config, button):
    page = signed_in
    cookie = session_cookie(page)
    page.goto("/ui/aws/aws/config")
    page.locator("#access_key").fill("AKIAFORGEDFORGEDXXXX")
    page.locator("#secret_key").fill("forged-secret")
    action, fields = form_post(page, button)
    before = stored_config()
    status, _, body = post(keymint_url, action, fields, cookie, FOREIGN)
    assert status == 403, f"POST {action} ({button}) from {FOREIGN}: {status} {body[:300]}"
    assert stored_config() == before


def test_sign_out_from_another_origin_is_refused(signed_in, keymint_url):
    page = signed_in
    cookie = session_cookie(page)
    action, fields = form_post(page, "Sign out")
    status, _, _ = post(keymint_url, action, fields, cookie, FOREIGN)
    assert status == 403, f"POST {action} from {FOREIGN}: {status}"
    assert signed_in_still(keymint_url, cookie), "a forged sign-out ended the session"


@pytest.mark.parametrize(
    "button, values",
    [
        ("Sign in with a token", {"#token": "root-forged"}),
        ("Sign in with AppRole", {"#role_id": "forged", "#secret_id": "forged"}),
        ("Sign in with a JWT", {"#jwt_role": "forged", "#jwt": "a.b.c"}),
    ],
)
def test_sign_in_from_another_origin_is_refused(page, keymint_url, root_token, button, values):
    page.goto("/ui/sign-in")
    for selector, value in values.items():
        page.locator(selector).fill(value)
    if button == "Sign in with a token":
        # With a token that works: the refusal must not depend on the login failing.
        page.locator("#token").fill(root_token)
    action, fields = form_post(page, button)
    status, headers, _ = post(keymint_url, action, fields, None, FOREIGN)
    assert status == 403, f"POST {action} ({button}) from {FOREIGN}: {status}"
    assert "keymint_ui=" not in (headers.get("Set-Cookie") or ""), "a session for a forged sign-in"
