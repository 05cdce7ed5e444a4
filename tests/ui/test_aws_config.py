"""The AWS account form of the `aws` mount against moto with signature checking on: Test
connection shows who the keys are and saves nothing; a wrong secret and an account mismatch
show the error and save nothing; Save stores the keys (after the same check) and never shows
the secret again. What is stored is read back through the API."""

import re

import pytest

from support import check_page, text_of

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
