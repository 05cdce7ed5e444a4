"""Fixtures of the web UI's browser tests.

The Rust driver (tests/compat/ui.rs) starts a moto with IAM enforcement on and a dev-mode
keymint, then runs pytest here with:
- KEYMINT_URL: keymint's base URL (plain HTTP on 127.0.0.1), KEYMINT_ROOT_TOKEN its root token;
- KEYMINT_COMPAT_MOTO_URL: moto, and KEYMINT_UI_MOTO_ACCESS_KEY/_SECRET_KEY an administrator's
  keys there (moto checks signatures, so a wrong secret is refused as AWS would refuse it);
- KEYMINT_UI_CHROMIUM: the browser (Debian's /usr/bin/chromium), driven by Playwright; never a
  browser Playwright downloads;
- KEYMINT_UI_AXE: axe-core's axe.min.js (tests/ui/node_modules, from package-lock.json);
- KEYMINT_UI_MOTO_RECORDING: the file moto records every call to (see `aws_calls`), for what
  moto's model drops, such as CreateUser's PermissionsBoundary;
- KEYMINT_UI_SCREENSHOTS (optional): where check_page saves its screenshots (docs/ui).

One keymint serves the whole run. test_harness.py needs none of it: it checks the checks
against pages of its own.
"""

import base64
import json
import os
import urllib.parse
import uuid

import boto3
import pytest
from botocore.config import Config
from playwright.sync_api import sync_playwright

from support import WIDE, attach, http

REGION = "us-east-1"


def env(name):
    value = os.environ.get(name)
    assert value, f"{name} is not set: run this suite through tests/compat/ui.rs (cargo test ui::)"
    return value


def unique(prefix):
    """A name no other test of this run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def browser():
    chromium = os.environ.get("KEYMINT_UI_CHROMIUM", "/usr/bin/chromium")
    assert os.path.isfile(chromium), f"no browser at {chromium}: scripts/test.sh installs Debian's chromium"
    args = ["--disable-dev-shm-usage"]
    if os.geteuid() == 0:
        # Chromium's sandbox refuses to start as root.
        args.append("--no-sandbox")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """Opens pages in fresh contexts (no cookies), each recorded for check_page."""
    contexts = []
    base_url = os.environ.get("KEYMINT_URL")

    def open_page():
        context = browser.new_context(viewport=WIDE, base_url=base_url)
        contexts.append(context)
        return attach(context.new_page())

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="session")
def keymint_url():
    return env("KEYMINT_URL").rstrip("/")


@pytest.fixture(scope="session")
def root_token():
    return env("KEYMINT_ROOT_TOKEN")


def sign_in_with_token(page, token):
    page.goto("/ui/sign-in")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in with a token").click()


@pytest.fixture
def signed_in(page, root_token):
    """A page signed in with the root token, on the overview."""
    sign_in_with_token(page, root_token)
    page.wait_for_url("**/ui/overview")
    return page


@pytest.fixture(scope="session")
def moto_url():
    return env("KEYMINT_COMPAT_MOTO_URL").rstrip("/")


@pytest.fixture(scope="session")
def iam(moto_url):
    """IAM in moto as the administrator the driver made before enforcement started."""
    return boto3.client(
        "iam",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id=env("KEYMINT_UI_MOTO_ACCESS_KEY"),
        aws_secret_access_key=env("KEYMINT_UI_MOTO_SECRET_KEY"),
        config=Config(retries={"max_attempts": 1}),
    )


EVERYTHING = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'


@pytest.fixture
def good_keys(iam):
    """A fresh IAM user in moto allowed everything, and one access key of it:
    (user name, access key id, secret)."""
    user = unique("ui-root")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="everything", PolicyDocument=EVERYTHING)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return user, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def stored_config(keymint_url, root_token):
    """Reads aws/config/root through the API: (status, data or None)."""

    def read(mount="aws"):
        status, _, body = http(
            "GET", f"{keymint_url}/v1/{mount}/config/root", headers={"X-Vault-Token": root_token}
        )
        assert status in (200, 404), f"GET {mount}/config/root: {status} {body}"
        if status == 404:
            return status, None
        return status, json.loads(body)["data"]

    return read


@pytest.fixture(scope="session")
def aws_calls():
    """The query-protocol calls moto has received so far, with a given Action, as dicts of their
    form parameters (the recording keeps every parameter, even those moto's model ignores)."""
    path = env("KEYMINT_UI_MOTO_RECORDING")

    def calls(action):
        found = []
        with open(path, encoding="utf-8") as recording:
            for line in recording:
                entry = json.loads(line)
                body = entry.get("body") or ""
                if entry.get("body_encoded"):
                    body = base64.b64decode(body).decode("utf-8", "replace")
                params = dict(urllib.parse.parse_qsl(body))
                params.update(urllib.parse.parse_qsl(urllib.parse.urlsplit(entry.get("url", "")).query))
                if params.get("Action") == action:
                    found.append(params)
        return found

    return calls
