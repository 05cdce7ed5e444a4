"""The AWS account form of the `aws` mount against moto with signature checking on: Test
connection shows who the keys are and saves nothing; a wrong secret and an account mismatch
show the error and save nothing; Save stores the keys (after the same check) and never shows
the secret again. Rates and rotation are saved, the fields check the API's rules as you type,
config/lease is saved, and "Rotate root key now" leaves exactly one new key in AWS. What is
stored is read back through the API (and the keys from moto)."""

import json
import re

import pytest

from support import check_page, http, text_of

ACCOUNT = "123456789012"
CONFIG = "/ui/aws/aws/config"


@pytest.fixture
def account_form(signed_in, moto_url):
    """The form, with region and moto's endpoints filled in; fill(keys, **more) adds the rest."""
    page = signed_in
    page.goto(CONFIG)

    def fill(access_key, secret_key, **fields):
        values = {
            "access_key": access_key,
            "secret_key": secret_key,
            "region": "us-east-1",
            "iam_endpoint": moto_url,
            "sts_endpoint": moto_url,
            "expected_account_id": "",
            "role_arn": "",
            "external_id": "",
            **fields,
        }
        for field, value in values.items():
            page.locator(f"#{field}").fill(value)

    return page, fill


def submit(page, button):
    with page.expect_navigation():
        page.get_by_role("button", name=button, exact=True).click()
    return page.locator("section#result")


def error_of(result):
    alert = result.locator('p.error[role="alert"]')
    alert.wait_for()
    return text_of(alert)


def secret_hint(page):
    """What the page says about the stored secret: the field's description."""
    described = page.locator("#secret_key").get_attribute("aria-describedby")
    assert described, "#secret_key has no aria-describedby hint"
    return " ".join(text_of(page.locator(f"#{id}")) for id in described.split())


def test_connection_with_good_keys_shows_the_account_and_saves_nothing(account_form, good_keys, stored_config):
    page, fill = account_form
    user, key_id, secret = good_keys
    before = stored_config()
    fill(key_id, secret)
    result = submit(page, "Test connection")
    text = text_of(result)
    assert "Connected" in text, text
    assert ACCOUNT in text, text
    assert f"arn:aws:iam::{ACCOUNT}:user/{user}" in text, text
    assert result.locator('p.error[role="alert"]').count() == 0
    assert secret not in page.content(), "the secret came back in the page"
    assert stored_config() == before, "Test connection saved the config"
    check_page(page, "aws-config-connected")


def test_connection_with_a_wrong_secret_shows_the_aws_error_and_saves_nothing(
    account_form, good_keys, stored_config
):
    page, fill = account_form
    _, key_id, _ = good_keys
    before = stored_config()
    fill(key_id, "wrong-secret-for-this-key-0000000000000")
    message = error_of(submit(page, "Test connection"))
    # AWS's code where the SDK can read it; moto's error body for a bad signature is not in
    # STS's shape, so through moto only the status is known.
    assert re.search(r"SignatureDoesNotMatch|InvalidClientTokenId|\b403\b", message), message
    hint = text_of(page.locator("section#result p.tip"))
    assert re.search(r"access key or secret (is|may be) wrong", hint), hint
    assert "Connected" not in text_of(page.locator("section#result"))
    assert stored_config() == before
    check_page(page, "aws-config-error")


def test_connection_with_another_expected_account_is_refused(account_form, good_keys, stored_config):
    page, fill = account_form
    _, key_id, secret = good_keys
    before = stored_config()
    fill(key_id, secret, expected_account_id="000000000000")
    message = error_of(submit(page, "Test connection"))
    assert "000000000000" in message or ACCOUNT in message, message
    hint = text_of(page.locator("section#result p.tip"))
    assert f"belong to account {ACCOUNT}" in hint and "expected account ID is 000000000000" in hint, hint
    assert stored_config() == before
    check_page(page, "aws-config-mismatch")


def test_save_stores_the_keys_and_never_shows_the_secret(account_form, good_keys, stored_config, moto_url):
    page, fill = account_form
    user, key_id, secret = good_keys
    fill(key_id, secret)
    result = submit(page, "Save")
    assert result.locator('p.error[role="alert"]').count() == 0, text_of(result)
    status, data = stored_config()
    assert status == 200
    assert data["access_key"] == key_id
    assert data["iam_endpoint"] == moto_url and data["sts_endpoint"] == moto_url
    assert data["region"] == "us-east-1"
    assert secret not in page.content()

    page.goto(CONFIG)
    assert page.locator("#access_key").input_value() == key_id
    assert page.locator("#secret_key").input_value() == ""
    assert secret not in page.content()
    hint = secret_hint(page)
    assert re.search(r"\bset\b", hint, re.I) and not re.search(r"\bnot set\b", hint, re.I), hint
    check_page(page, "aws-config-saved")


def test_save_with_a_wrong_secret_keeps_the_stored_keys(account_form, iam, good_keys, stored_config):
    page, fill = account_form
    _, key_id, secret = good_keys
    fill(key_id, secret)
    submit(page, "Save")
    saved = stored_config()
    assert saved[0] == 200 and saved[1]["access_key"] == key_id

    other = iam.create_access_key(UserName=good_keys[0])["AccessKey"]["AccessKeyId"]
    page.goto(CONFIG)
    fill(other, "wrong-secret-for-this-key-0000000000000")
    message = error_of(submit(page, "Save"))
    assert message
    assert stored_config() == saved, "a refused Save changed the stored config"


def test_rates_and_rotation_are_saved_and_read_back(account_form, good_keys, stored_config):
    page, fill = account_form
    _, key_id, secret = good_keys
    fill(key_id, secret)
    pacing = {
        "iam_write_rate": "7",
        "iam_read_rate": "14",
        "sts_rate": "21",
        "max_queue_wait": "90s",
        "retry_deadline": "20s",
        "call_timeout": "15s",
        "rotation_period": "48h",
        "rotation_schedule": "",
        "rotation_window": "",
    }
    for field, value in pacing.items():
        page.locator(f"#{field}").fill(value)
    page.get_by_label("Pause scheduled rotation", exact=True).check()
    result = submit(page, "Save")
    assert "Saved. Connected" in text_of(result), text_of(result)

    status, data = stored_config()
    assert status == 200
    assert data["access_key"] == key_id
    assert (data["iam_write_rate"], data["iam_read_rate"], data["sts_rate"]) == (7, 14, 21)
    assert (data["max_queue_wait"], data["retry_deadline"], data["call_timeout"]) == (90, 20, 15)
    assert (data["rotation_period"], data["rotation_schedule"]) == (48 * 3600, "")
    assert data["disable_automated_rotation"] is True

    page.goto(CONFIG)
    assert page.locator("#iam_write_rate").input_value() == "7"
    assert page.locator("#max_queue_wait").input_value() == "90"
    assert page.locator("#rotation_period").input_value() == str(48 * 3600)
    assert page.get_by_label("Pause scheduled rotation", exact=True).is_checked()
    assert page.locator("#credentials-static").is_checked()
    check_page(page, "aws-config-pacing")


# (field, values the API takes, values it refuses): the browser's own check of each pattern.
RULES = [
    ("expected_account_id", ["123456789012"], ["12345678901", "12345678901a"]),
    ("role_arn", ["arn:aws:iam::123456789012:role/keymint", "arn:role/x"], ["arn:aws:iam::123456789012:user/x"]),
    ("external_id", ["tenant-42:/x=y,z.@+"], ["a", "has space", "under_score"]),
    ("role_session_name", ["keymint_root-1+=,.@"], ["a", "slash/no", "n" * 65]),
    ("rotation_period", ["900", "1h30m", "7d", "1.5h"], ["10x", "1h30", "-5m"]),
]


def test_fields_check_the_apis_rules_as_you_type(account_form, stored_config):
    page, _ = account_form
    before = stored_config()
    for field, good, bad in RULES:
        box = page.locator(f"#{field}")
        for value in good + bad:
            # The browser's check, without maxlength (a person cannot type past it).
            refused = box.evaluate(
                "(e, v) => { const c = e.cloneNode(); c.removeAttribute('maxlength'); c.value = v; "
                "return !c.checkValidity(); }",
                value,
            )
            assert refused == (value in bad), f"{field}={value!r}: the browser refused it: {refused}"
    # A refused value is marked in words, not only by colour, once it has been typed.
    box = page.locator("#external_id")
    box.fill("has space")
    box.press("Tab")
    assert page.locator("#external_id:user-invalid").count() == 1
    marker = page.evaluate(
        "getComputedStyle(document.querySelector('#external_id-hint'), '::before').content"
    )
    assert "Not accepted" in marker, marker
    assert not page.locator("form.account").evaluate("f => f.checkValidity()")
    check_page(page, "aws-config-invalid")
    box.fill("tenant-42")
    box.press("Tab")
    assert page.locator("#external_id:user-invalid").count() == 0
    assert stored_config() == before


def test_lease_settings_are_saved(signed_in, keymint_url, root_token):
    page = signed_in
    page.goto(CONFIG)
    page.get_by_label("Default lease", exact=True).fill("2h")
    page.get_by_label("Longest lease", exact=True).fill("48h")
    with page.expect_navigation():
        page.get_by_role("button", name="Save lease settings", exact=True).click()
    assert "Saved the lease settings." in text_of(page.locator("main"))
    status, _, body = http("GET", f"{keymint_url}/v1/aws/config/lease", headers={"X-Vault-Token": root_token})
    assert status == 200, body
    assert json.loads(body)["data"] == {"lease": "2h0m0s", "lease_max": "48h0m0s"}
    assert page.get_by_label("Longest lease", exact=True).input_value() == "48h0m0s"
    check_page(page, "aws-config-lease", screenshot=False)


def test_rotate_now_leaves_one_new_key_in_aws(account_form, iam, good_keys, stored_config):
    page, fill = account_form
    user, key_id, secret = good_keys
    fill(key_id, secret)
    assert "Saved. Connected" in text_of(submit(page, "Save"))

    with page.expect_navigation():
        page.get_by_role("button", name="Rotate root key now", exact=True).click()
    assert "stops working" in text_of(page.locator("main"))
    assert stored_config()[1]["access_key"] == key_id, "asking rotates nothing"
    check_page(page, "aws-config-rotate-confirm")

    with page.expect_navigation():
        page.get_by_role("button", name="Rotate the root key", exact=True).click()
    new_key = text_of(page.locator("#new_access_key"))
    assert new_key and new_key != key_id, text_of(page.locator("main"))
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    assert keys == [new_key], f"keys of {user} in AWS: {keys}"
    assert stored_config()[1]["access_key"] == new_key
    assert secret not in page.content()
    check_page(page, "aws-config-rotated")
