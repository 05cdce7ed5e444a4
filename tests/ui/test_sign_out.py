"""Signing out ends the session: the browser lands on sign-in, the pages lead back there, and
the old cookie, replayed, no longer opens them."""

from support import check_page, http, path_of


def test_sign_out_ends_the_session(signed_in, keymint_url):
    page = signed_in
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "keymint_ui"]
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert path_of(page.url) == "/ui/sign-in", page.url
    check_page(page, "signed-out", screenshot=False)

    page.goto("/ui/overview")
    page.wait_for_url("**/ui/sign-in")

    status, headers, _ = http("GET", keymint_url + "/ui/overview", headers={"Cookie": f"keymint_ui={cookie['value']}"})
    assert status in (302, 303, 307), f"the old session cookie still opens the overview: {status}"
    assert path_of(headers["Location"]) == "/ui/sign-in"
