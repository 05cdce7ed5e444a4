"""An operator's day in the browser, against moto with IAM enforcement on:
save the AWS account, create an iam_user role with a group and a permissions boundary, generate
credentials (checked in moto: the user exists with that key, in that group, under that
boundary, and the key works), find the lease in the lease tree, revoke it, and check in moto
that the user is gone. Then a token that may only read aws/creds/<role> generates keys there and
sees 403 notices, not broken pages, everywhere else."""

import json
import re

import boto3
import pytest
from botocore.config import Config

from conftest import EVERYTHING, REGION, sign_in_with_token, unique
from support import check_page, http_json, text_of


@pytest.fixture
def saved_account(signed_in, good_keys, moto_url):
    """The aws mount's account saved through the form with fresh good keys."""
    page = signed_in
    _, key_id, secret = good_keys
    page.goto("/ui/aws/aws/config")
    for field, value in {
        "access_key": key_id,
        "secret_key": secret,
        "region": REGION,
        "iam_endpoint": moto_url,
        "sts_endpoint": moto_url,
        "expected_account_id": "",
        "role_arn": "",
        "external_id": "",
    }.items():
        page.locator(f"#{field}").fill(value)
    with page.expect_navigation():
        page.get_by_role("button", name="Save", exact=True).click()
    result = page.locator("section#result")
    assert result.locator("p.error").count() == 0, text_of(result)
    assert "Saved. Connected" in text_of(result)
    return page


def caller_of(moto_url, access_key, secret_key):
    sts = boto3.client(
        "sts",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}),
    )
    return sts.get_caller_identity()


def new_role(page, name, fields):
    page.goto("/ui/aws/aws/roles")
    page.get_by_role("link", name="New iam_user role").click()
    page.wait_for_url("**/roles/new?type=iam_user")
    check_page(page, "role-new-iam_user")
    page.get_by_label("Name", exact=True).fill(name)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    with page.expect_navigation():
        page.get_by_role("button", name="Save role").click()
    assert page.locator(".error").count() == 0, text_of(page.locator("main"))
    assert f"Saved role {name}." in text_of(page.locator("main"))


def test_iam_user_role_with_group_and_boundary_from_creation_to_revocation(saved_account, iam, moto_url, aws_calls):
    page = saved_account
    group = unique("ui-group")
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="everything", PolicyDocument=EVERYTHING)
    boundary = iam.create_policy(PolicyName=unique("ui-boundary"), PolicyDocument=EVERYTHING)["Policy"]["Arn"]
    role = unique("deploy")
    new_role(
        page,
        role,
        {
            "IAM groups": group,
            "Permissions boundary ARN": boundary,
            "Tags (key=value)": "team=ops",
            "Default lease TTL": "1h",
        },
    )
    check_page(page, "roles")
    # The list shows the role with its type and TTLs.
    row = page.locator("tbody tr").filter(has_text=role)
    assert "iam_user" in text_of(row) and "3600s" in text_of(row), text_of(row)

    page.get_by_role("link", name=f"Generate credentials for {role}").click()
    page.wait_for_url(f"**/creds/{role}")
    with page.expect_navigation():
        page.get_by_role("button", name="Generate credentials").click()
    access_key = text_of(page.locator("#access_key"))
    secret_key = text_of(page.locator("#secret_key"))
    lease_id = text_of(page.locator("#lease_id"))
    assert lease_id.startswith(f"aws/creds/{role}/"), lease_id

    # The script ran (the page's CSP and the script's integrity let it): the copy buttons are
    # shown, and the countdown ticks.
    for name in ("Copy the access key ID", "Copy as env", "Copy as AWS CLI profile", "Copy as JSON"):
        assert page.get_by_role("button", name=name).is_visible(), name
    countdown = page.locator("time[data-countdown]")
    assert countdown.is_visible()
    assert re.fullmatch(r"(\d+h )?\d+m \d+s left", text_of(countdown)), text_of(countdown)
    first = text_of(countdown)
    page.wait_for_function(
        "first => document.querySelector('time[data-countdown]').textContent !== first", arg=first, timeout=5000
    )
    check_page(page, "creds-issued")

    # In moto: the user has exactly this key, is in the group, was made under the boundary, and
    # the key works.
    user = caller_of(moto_url, access_key, secret_key)["Arn"].rsplit("/", 1)[-1]
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    assert keys == [access_key], keys
    groups = [g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]]
    assert groups == [group], groups
    # moto's model drops a user's boundary; its recording of the CreateUser call keeps it.
    created = [c for c in aws_calls("CreateUser") if c.get("UserName") == user]
    assert len(created) == 1, created
    assert created[0].get("PermissionsBoundary") == boundary, created[0]
    assert created[0].get("Path") in (None, "/"), created[0]

    # Find the lease in the tree, as a person would: aws/ → creds/ → the role → the lease.
    page.goto("/ui/leases")
    for folder in ("aws/", "creds/", f"{role}/"):
        page.get_by_role("link", name=folder, exact=True).click()
        page.wait_for_load_state("load")
    lease_link = page.get_by_role("link", name=lease_id.rsplit("/", 1)[-1], exact=True)
    lease_link.click()
    page.wait_for_url("**/ui/leases/lookup**")
    assert lease_id in text_of(page.locator("main"))
    assert page.locator("time[data-countdown]").is_visible()
    check_page(page, "lease")
    with page.expect_navigation():
        page.get_by_role("button", name="Revoke", exact=True).click()
    assert f"Revoked lease {lease_id}." in text_of(page.locator("main"))

    users = [u["UserName"] for u in iam.list_users()["Users"]]
    assert user not in users, f"{user} is still in moto after the revocation"


def api(keymint_url, token, method, path, body=None):
    """One /v1 call with a JSON body: (status, decoded body or None)."""
    status, _, text = http_json(method, f"{keymint_url}/v1/{path}", token, body)
    return status, (json.loads(text) if text.strip() else None)


def test_a_token_that_may_only_read_one_roles_creds(saved_account, keymint_url, root_token, new_page, moto_url):
    """Generates keys with a read, and sees notices (and no offers it may not take) elsewhere."""
    role = unique("reader")
    status, body = api(keymint_url, root_token, "POST", f"aws/roles/{role}", {"credential_type": "iam_user", "policy_document": EVERYTHING})
    assert status in (200, 204), body
    policy = unique("creds-only")
    hcl = f'path "aws/creds/{role}" {{ capabilities = ["read"] }}'
    status, body = api(keymint_url, root_token, "POST", f"sys/policies/acl/{policy}", {"policy": hcl})
    assert status in (200, 204), body
    status, body = api(keymint_url, root_token, "POST", "auth/token/create", {"policies": [policy], "ttl": "1h"})
    assert status == 200, body
    token = body["auth"]["client_token"]

    page = new_page()
    sign_in_with_token(page, token)
    page.wait_for_url("**/ui/overview")
    # Every other page answers with a notice that names what the token may not do.
    for path in ("/ui/overview", "/ui/mounts", "/ui/aws/aws/config", "/ui/aws/aws/roles", "/ui/leases", "/ui/policies"):
        page.goto(path)
        main = text_of(page.locator("main"))
        assert "may not" in main, f"{path}: {main}"
        assert page.locator("h1").count() == 1, path
        check_page(page, "readonly" + path.replace("/", "-"), screenshot=False)

    page.goto(f"/ui/aws/aws/creds/{role}")
    with page.expect_navigation():
        page.get_by_role("button", name="Generate credentials").click()
    access_key = text_of(page.locator("#access_key"))
    secret_key = text_of(page.locator("#secret_key"))
    assert ":user/" in caller_of(moto_url, access_key, secret_key)["Arn"]
    # It may not revoke (sys/leases/revoke): the button is not offered.
    assert page.get_by_role("button", name="Revoke this lease").count() == 0
    check_page(page, "readonly-creds", screenshot=False)
