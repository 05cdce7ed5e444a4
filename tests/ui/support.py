"""What every page of the web UI must pass, and plain-HTTP helpers for what a browser will not do.

`check_page(page, name)` is the per-page gate the tests call after each navigation:
- no Content Security Policy violation was logged by the page since it opened (Chromium logs
  every violation to the console as an error naming "Content Security Policy");
- the document answer carried the security headers of the contract;
- axe-core finds no serious or critical accessibility violation;
- with KEYMINT_UI_SCREENSHOTS set, a full-page screenshot is saved there as `<name>.png`.

axe cannot be injected into the page itself: its CSP (`default-src 'none'` plus 'self') refuses
every script the page did not ship. It runs instead in a second browser context created with
`bypass_csp=True`, on a copy of the page's current DOM served at the page's own URL, so the
stylesheets load as they do for a person, while the page under test keeps its CSP enforced and
the console check above stays honest.
"""

import json
import os
import pathlib
import re
import urllib.error
import urllib.parse
import urllib.request

CSP_MARKER = "Content Security Policy"

# Browser geometry of the screenshots in docs/ui.
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 360, "height": 740}


class ConsoleLog:
    """Everything a page logs to its console, and its uncaught errors, in order."""

    def __init__(self, page):
        self.messages = []
        page.on("console", lambda msg: self.messages.append(f"console.{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: self.messages.append(f"pageerror: {err}"))

    def csp_violations(self):
        return [m for m in self.messages if CSP_MARKER in m]


class Documents:
    """The answers to the main frame's document requests, the latest last."""

    def __init__(self, page):
        self.responses = []

        def record(response):
            request = response.request
            if request.resource_type == "document" and request.frame == page.main_frame:
                self.responses.append(response)

        page.on("response", record)

    def latest(self):
        assert self.responses, "the page has loaded no document"
        return self.responses[-1]


def attach(page):
    """Starts recording `page`'s console and documents; check_page reads both."""
    page._keymint_console = ConsoleLog(page)
    page._keymint_documents = Documents(page)
    return page


def check_page(page, name, *, narrow=False, screenshot=True):
    """The gate every page passes; see the module docstring. `narrow` adds a screenshot at
    360 px wide as `<name>-narrow.png`; `screenshot=False` takes none (a page already shown)."""
    page.wait_for_load_state("load")
    # A round trip to the renderer: console events raised while the page loaded reach us first.
    page.evaluate("0")
    assert_no_csp_violation(page)
    assert_security_headers(page._keymint_documents.latest())
    assert_document_basics(page)
    assert_accessible(page)
    if screenshot:
        save_screenshots(page, name, narrow=narrow)


def assert_no_csp_violation(page):
    violations = page._keymint_console.csp_violations()
    assert not violations, f"{page.url}: CSP violations:\n" + "\n".join(violations)


def assert_security_headers(response):
    headers = response.all_headers()
    where = f"{response.request.method} {response.url} ({response.status})"
    csp = headers.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == "default-src 'none'", f"{where}: CSP {csp!r}"
    assert "'self'" in csp, f"{where}: CSP names no 'self' source: {csp!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{where}: CSP {csp!r}"
    assert "no-store" in headers.get("cache-control", ""), f"{where}: Cache-Control {headers.get('cache-control')!r}"
    assert headers.get("x-content-type-options") == "nosniff", f"{where}: X-Content-Type-Options missing"


def assert_document_basics(page):
    assert page.locator("html").get_attribute("lang") == "en", f"{page.url}: <html lang> is not en"
    assert page.locator("main").count() == 1, f"{page.url}: expected one <main>"
    assert page.locator("h1").count() == 1, f"{page.url}: expected one <h1>"


def assert_accessible(page):
    """axe-core on a copy of the page in a CSP-bypassing context: no serious or critical
    violation. Every violation found is printed on failure, minor ones too."""
    axe_path = axe_script()
    assert pathlib.Path(axe_path).is_file(), f"axe-core not found at {axe_path}: run scripts/test.sh"
    url = page.url
    html = page.content()
    headers = {"content-type": "text/html; charset=utf-8"}
    csp = page._keymint_documents.latest().all_headers().get("content-security-policy")
    if csp:
        # Kept, so the injection below works only because the context bypasses it.
        headers["content-security-policy"] = csp
    context = page.context.browser.new_context(
        bypass_csp=True, viewport=WIDE, storage_state=page.context.storage_state()
    )
    try:
        copy = context.new_page()
        document_url = url.split("#", 1)[0]
        # No `times=1`: Playwright removing a spent route while the page's stylesheet and
        # script requests are being matched can leave one of them hanging. The document is
        # requested once anyway.
        copy.route(
            lambda u: u == document_url,
            lambda route: route.fulfill(status=200, headers=headers, body=html),
        )
        copy.goto(url)
        copy.add_script_tag(path=axe_path)
        violations = copy.evaluate(
            """async () => {
                const results = await axe.run(document, {resultTypes: ['violations']});
                return results.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary),
                }));
            }"""
        )
    finally:
        context.close()
    blocking = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not blocking, f"{url}: axe violations (serious or critical present):\n" + json.dumps(violations, indent=2)


def axe_script():
    """axe.min.js: $KEYMINT_UI_AXE, else the copy npm ci put beside this file."""
    return os.environ.get("KEYMINT_UI_AXE") or str(pathlib.Path(__file__).parent / "node_modules/axe-core/axe.min.js")


def save_screenshots(page, name, *, narrow=False):
    folder = os.environ.get("KEYMINT_UI_SCREENSHOTS")
    if not folder:
        return
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    page.set_viewport_size(WIDE)
    page.screenshot(path=folder / f"{name}.png", full_page=True, animations="disabled")
    if narrow:
        page.set_viewport_size(NARROW)
        page.screenshot(path=folder / f"{name}-narrow.png", full_page=True, animations="disabled")
    page.set_viewport_size(before)


def png_size(path):
    """(width, height) from a PNG's IHDR chunk."""
    data = pathlib.Path(path).read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def http(method, url, *, headers=None, form=None):
    """One HTTP request, redirects not followed: (status, headers, body text)."""
    if isinstance(form, list):
        # Pairs as FormData gives them, through JSON: lists.
        form = [tuple(pair) for pair in form]
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    return _send(method, url, headers or {}, data, "application/x-www-form-urlencoded")


def _send(method, url, headers, data, content_type):
    """Sends one request (redirects not followed): (status, headers, body text)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with _OPENER.open(request, timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode("utf-8", "replace")


def form_action(locator):
    """The path a form (or the form of a button) posts to. Not `form.action`: a field named
    "action", as the AWS account form's buttons are, shadows that property."""
    return path_of(
        locator.evaluate(
            "e => { const f = e.form || e; return new URL(f.getAttribute('action') || '', location.href).href; }"
        )
    )


def path_of(url):
    return urllib.parse.urlsplit(url).path


def text_of(locator):
    return re.sub(r"\s+", " ", locator.inner_text()).strip()


def http_json(method, url, token, body=None):
    """One API request with a JSON body and a token: (status, headers, body text)."""
    data = json.dumps(body).encode() if body is not None else None
    return _send(method, url, {"X-Vault-Token": token}, data, "application/json")
