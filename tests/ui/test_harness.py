"""The checks themselves, against pages served here with the UI's strict CSP: a clean page
passes, and each thing check_page must catch is caught. Needs only the browser and axe-core."""

import http.server
import threading

import pytest
from playwright.sync_api import Error

from support import axe_script, check_page, png_size

STRICT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def document(body, title="Harness"):
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<title>{title}</title><link rel="stylesheet" href="/style.css"></head>'
        f"<body><main><h1>{title}</h1>{body}</main></body></html>"
    )


PAGES = {
    "/clean": (STRICT_HEADERS, document('<p class="lead">Nothing wrong here.</p>')),
    # Blocked by script-src falling back to default-src 'none': Chromium logs the violation.
    "/inline-script": (STRICT_HEADERS, document('<script>document.title = "ran";</script><p>x</p>')),
    # An unlabelled field and an image without alt text: critical for axe.
    "/inaccessible": (STRICT_HEADERS, document('<form><input type="text" name="q"></form><img src="/dot.png">')),
    "/no-headers": ({}, document("<p>No security headers.</p>")),
}
STYLE = b"body { font-family: sans-serif; } .lead { color: rgb(0, 0, 128); }"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/style.css":
            self.reply(200, {"Content-Type": "text/css"}, STYLE)
        elif self.path in PAGES:
            headers, html = PAGES[self.path]
            self.reply(200, {"Content-Type": "text/html; charset=utf-8", **headers}, html.encode())
        else:
            self.reply(404, {"Content-Type": "text/plain"}, b"not found")

    def reply(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_clean_page_passes_and_is_photographed(page, site, tmp_path, monkeypatch):
    monkeypatch.setenv("KEYMINT_UI_SCREENSHOTS", str(tmp_path))
    page.goto(f"{site}/clean")
    # The CSP lets the page's own stylesheet in.
    assert page.locator(".lead").evaluate("e => getComputedStyle(e).color") == "rgb(0, 0, 128)"
    check_page(page, "clean", narrow=True)
    assert png_size(tmp_path / "clean.png")[0] == 1280
    assert png_size(tmp_path / "clean-narrow.png")[0] == 360
    # The axe pass ran elsewhere: the page itself still has no axe and logged no violation.
    assert page.evaluate("typeof window.axe") == "undefined"
    assert page._keymint_console.csp_violations() == []


def test_no_screenshot_without_the_variable(page, site, tmp_path, monkeypatch):
    monkeypatch.delenv("KEYMINT_UI_SCREENSHOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    page.goto(f"{site}/clean")
    check_page(page, "clean")
    assert list(tmp_path.iterdir()) == []


def test_a_csp_violation_fails_the_check(page, site):
    page.goto(f"{site}/inline-script")
    assert page.title() == "Harness", "the inline script ran: the CSP was not enforced"
    with pytest.raises(AssertionError, match="Content Security Policy"):
        check_page(page, "inline-script")


def test_serious_accessibility_violations_fail_the_check(page, site):
    page.goto(f"{site}/inaccessible")
    with pytest.raises(AssertionError) as failure:
        check_page(page, "inaccessible")
    message = str(failure.value)
    assert "axe violations" in message
    assert '"id": "label"' in message and '"id": "image-alt"' in message, message


def test_missing_security_headers_fail_the_check(page, site):
    page.goto(f"{site}/no-headers")
    with pytest.raises(AssertionError, match="CSP"):
        check_page(page, "no-headers")


def test_the_csp_refuses_axe_in_the_page_itself(page, site):
    """Why axe runs in a bypass_csp context: injected into the page, the CSP blocks it."""
    page.goto(f"{site}/clean")
    with pytest.raises(Error):
        page.add_script_tag(path=axe_script())
    assert page.evaluate("typeof window.axe") == "undefined"
    assert page._keymint_console.csp_violations(), "the blocked injection logged no CSP violation"
