"""The signed-in pages: overview, mounts and the AWS account form, each reachable from the main
navigation and each passing check_page."""

import re

from conftest import unique
from support import NARROW, check_page, form_action, http, path_of, text_of

NAV = {"Overview": "/ui/overview", "Mounts": "/ui/mounts", "AWS account": "/ui/aws/aws/config"}
HEADINGS = {"/ui/overview": "Overview", "/ui/mounts": "Mounts", "/ui/aws/aws/config": "AWS account"}


def header_texts(table):
    return [text_of(th) for th in table.locator("thead th, tr:first-child th").all()]


def test_main_navigation_reaches_every_page(signed_in):
    page = signed_in
    for path in HEADINGS:
        page.goto(path)
        nav = page.locator('nav[aria-label="Main"]')
        assert nav.count() == 1, f"{path}: no <nav aria-label=Main>"
        for name, href in NAV.items():
            link = nav.get_by_role("link", name=name, exact=True)
            assert path_of(link.evaluate("a => a.href")) == href, f"{path}: link {name}"
        sign_out = page.get_by_role("button", name="Sign out")
        form = sign_out.locator("xpath=ancestor::form")
        assert (form.get_attribute("method") or "").lower() == "post"
        assert form_action(form) == "/ui/sign-out"
    # Clicking through, as a person would.
    for name, href in NAV.items():
        page.locator('nav[aria-label="Main"]').get_by_role("link", name=name, exact=True).click()
        page.wait_for_url(f"**{href}")
        assert text_of(page.locator("h1")) == HEADINGS[href]


def test_every_page_of_the_navigation_passes_the_checks(signed_in):
    """Pages beyond the first three (roles, leases, ...) pass check_page too; the first three
    are photographed by their own tests."""
    page = signed_in
    links = page.locator('nav[aria-label="Main"] a').evaluate_all("as => as.map(a => a.href)")
    assert len(links) >= len(NAV), links
    for link in links:
        page.goto(link)
        path = path_of(page.url)
        assert path.startswith("/ui/"), f"{link} left the UI for {page.url}"
        name = "-".join(part for part in path.removeprefix("/ui/").split("/") if part != "aws") or "index"
        check_page(page, name, screenshot=path not in HEADINGS)


def test_overview(signed_in):
    page = signed_in
    assert text_of(page.locator("h1")) == "Overview"
    table = page.locator("table").filter(has=page.locator("th", has_text="Active leases")).first
    assert header_texts(table)[:5] == ["Mount", "Account", "Region", "Health", "Active leases"], header_texts(table)
    # The dev server's aws mount is listed.
    assert table.locator("tbody tr").filter(has_text=re.compile(r"\baws\b")).count() >= 1
    check_page(page, "overview", narrow=True)


def test_mounts(signed_in):
    page = signed_in
    page.goto("/ui/mounts")
    assert text_of(page.locator("h1")) == "Mounts"
    # A section each for secrets engines and auth methods (a table when there is a row).
    for heading in ("Secrets engines", "Auth methods"):
        assert page.get_by_role("heading", name=heading, exact=True).count() == 1, heading
    engines = page.locator("section", has=page.get_by_role("heading", name="Secrets engines"))
    assert engines.locator("tbody tr", has_text="aws").count() >= 1, "the aws mount is not listed"
    path = page.get_by_label("Path", exact=True)
    assert path.get_attribute("id") == "mount_path"
    kind = page.get_by_label("Type", exact=True)
    assert kind.get_attribute("id") == "mount_type"
    options = kind.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert {"aws", "approle", "jwt", "kubernetes"} <= set(options), options
    assert page.get_by_role("button", name="Enable", exact=True).count() == 1
    check_page(page, "mounts")


def test_enable_an_auth_method(signed_in, keymint_url, root_token):
    page = signed_in
    page.goto("/ui/mounts")
    path = unique("ui-approle")
    page.get_by_label("Path", exact=True).fill(path)
    page.get_by_label("Type", exact=True).select_option("approle")
    page.get_by_role("button", name="Enable", exact=True).click()
    page.wait_for_load_state("load")
    status, _, body = http("GET", f"{keymint_url}/v1/sys/auth", headers={"X-Vault-Token": root_token})
    assert status == 200 and f'"{path}/"' in body, f"{path} not enabled: {body}"
    page.goto("/ui/mounts")
    methods = page.locator("section", has=page.get_by_role("heading", name="Auth methods"))
    assert methods.locator("tbody tr", has_text=path).count() == 1, f"{path} not listed"


def test_aws_account_form(signed_in):
    page = signed_in
    page.goto("/ui/aws/aws/config")
    assert text_of(page.locator("h1")) == "AWS account"
    fields = {
        "access_key": "Access key ID",
        "secret_key": "Secret access key",
        "region": "Region",
        "iam_endpoint": "IAM endpoint",
        "sts_endpoint": "STS endpoint",
        "expected_account_id": "Expected account ID",
        "role_arn": "Role ARN",
        "external_id": "External ID",
    }
    for field, label in fields.items():
        assert page.get_by_label(label, exact=True).get_attribute("id") == field, label
    secret = page.locator("#secret_key")
    assert secret.get_attribute("type") == "password"
    assert secret.input_value() == ""
    for name in ("Test connection", "Save"):
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    result = page.locator("section#result")
    assert result.count() == 1 and result.get_attribute("aria-live") == "polite"
    check_page(page, "aws-config")


def test_unknown_mount_is_not_a_crash(signed_in, keymint_url):
    (cookie,) = [c for c in signed_in.context.cookies() if c["name"] == "keymint_ui"]
    status, _, _ = http(
        "GET", f"{keymint_url}/ui/aws/no-such-mount/config", headers={"Cookie": f"keymint_ui={cookie['value']}"}
    )
    assert status < 500, status


def test_every_page_fits_a_narrow_screen(signed_in):
    """At 360 px wide no page scrolls sideways: tables become one card per row, each cell
    named by its column, and long ids wrap."""
    page = signed_in
    page.set_viewport_size(NARROW)
    links = page.locator('nav[aria-label="Main"] a').evaluate_all("as => as.map(a => a.href)")
    for link in links:
        page.goto(link)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{link}: {width} px wide at {NARROW['width']} px"
        for table in page.locator("table").all():
            assert "stack" in (table.get_attribute("class") or ""), f"{link}: a table that does not stack"
            header = table.locator("thead")
            # The header row is there for screen readers, out of sight.
            assert header.evaluate("h => h.getBoundingClientRect().width") <= 1, link
            for cell in table.locator("tbody td").all():
                assert cell.get_attribute("data-label"), f"{link}: a cell without its column's name"


def test_the_keyboard_reaches_the_content_first(signed_in):
    """The first Tab lands on "Skip to the content", which moves focus past the navigation; then
    Tab goes on through the page's own links and fields, each with a visible focus outline."""
    page = signed_in
    page.goto("/ui/aws/aws/roles")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to the content", focused
    assert page.locator("a.skip").evaluate("a => a.getBoundingClientRect().top >= 0"), "shown when focused"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    inside = page.evaluate("document.querySelector('main').contains(document.activeElement)")
    assert inside, page.evaluate("document.activeElement.outerHTML")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline
