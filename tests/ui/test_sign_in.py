"""Signing in: the page, a refused token and AppRole login showing the server's message, and the
root token leading to the overview with a strict session cookie."""

from conftest import sign_in_with_token
from support import check_page, form_action, http, path_of, text_of


def test_without_a_session_ui_leads_to_sign_in(page, keymint_url):
    page.goto("/ui/")
    page.wait_for_url("**/ui/sign-in")
    assert text_of(page.locator("h1")) == "Sign in"
    for path in ("/ui/overview", "/ui/mounts", "/ui/aws/aws/config"):
        status, headers, _ = http("GET", keymint_url + path)
        assert status in (302, 303, 307), f"GET {path} without a session: {status}"
        assert path_of(headers["Location"]) == "/ui/sign-in", f"GET {path}: Location {headers['Location']}"


def test_sign_in_page_has_the_three_labelled_forms(page):
    page.goto("/ui/sign-in")
    token = page.get_by_label("Token", exact=True)
    assert token.get_attribute("id") == "token"
    assert token.get_attribute("type") == "password"
    assert page.get_by_label("Role ID", exact=True).get_attribute("id") == "role_id"
    assert page.get_by_label("Secret ID", exact=True).get_attribute("id") == "secret_id"
    assert page.locator("#approle_mount").input_value() == "approle"
    assert page.get_by_label("Role", exact=True).get_attribute("id") == "jwt_role"
    jwt = page.get_by_label("JWT", exact=True)
    assert jwt.evaluate("e => e.tagName") == "TEXTAREA" and jwt.get_attribute("id") == "jwt"
    assert page.locator("#jwt_mount").input_value() == "jwt"
    # Both mount fields are labelled "Mount".
    for field in ("#approle_mount", "#jwt_mount"):
        label = page.locator(f'label[for="{field[1:]}"]')
        assert text_of(label) == "Mount", f"label of {field}"
    for name in ("Sign in with a token", "Sign in with AppRole", "Sign in with a JWT"):
        button = page.get_by_role("button", name=name)
        form = button.locator("xpath=ancestor::form")
        assert (form.get_attribute("method") or "").lower() == "post", name
        assert form_action(form) == "/ui/sign-in", name
    check_page(page, "sign-in", narrow=True)


def test_a_wrong_token_shows_the_servers_message(page):
    sign_in_with_token(page, "not-a-token")
    alert = page.locator('p.error[role="alert"]')
    alert.wait_for()
    assert text_of(alert), "empty error message"
    assert path_of(page.url) == "/ui/sign-in"
    assert page._keymint_documents.latest().status in (200, 400, 401, 403)
    assert not [c for c in page.context.cookies() if c["name"] == "keymint_ui"], "a session for a bad token"
    check_page(page, "sign-in-error")


def test_a_wrong_approle_login_shows_the_servers_message(page):
    page.goto("/ui/sign-in")
    page.get_by_label("Role ID", exact=True).fill("no-such-role-id")
    page.get_by_label("Secret ID", exact=True).fill("no-such-secret-id")
    page.get_by_role("button", name="Sign in with AppRole").click()
    alert = page.locator('p.error[role="alert"]')
    alert.wait_for()
    assert text_of(alert)
    assert not [c for c in page.context.cookies() if c["name"] == "keymint_ui"]
    check_page(page, "sign-in-approle-error")


def test_the_root_token_signs_in(page, root_token, keymint_url):
    sign_in_with_token(page, root_token)
    page.wait_for_url("**/ui/overview")
    assert text_of(page.locator("h1")) == "Overview"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "keymint_ui"]
    assert cookie["httpOnly"], cookie
    assert cookie["sameSite"] == "Strict", cookie
    assert root_token not in cookie["value"], "the session cookie carries the token itself"
    # With the session, /ui/ leads to the overview.
    page.goto("/ui/")
    page.wait_for_url("**/ui/overview")
    status, headers, _ = http("GET", keymint_url + "/ui/", headers={"Cookie": f"keymint_ui={cookie['value']}"})
    assert status in (302, 303, 307) and path_of(headers["Location"]) == "/ui/overview"
    assert page.get_by_role("button", name="Sign out").count() == 1
