"""Issue #5: users, key disable and rotation, bucket policies and canned ACLs.

Acceptance 1 (second half): a bucket policy grants tenant B read on one prefix, and exactly
that access opens. Acceptance 2: anonymous GET works only where public-read is granted, and
an explicit Deny overrides an Allow."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.admin.client import AdminClient
from tests.conftest import gateway_config
from tests.e2e.test_tenants import _client, _denied, _operations
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

# Access keys are cached per node for this long (gateway/services/auth.py).
KEY_CACHE_S = 5


@pytest.fixture(scope="module")
def world(
    start_module_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> tuple[GatewayProcess, dict[str, Any]]:
    """Tenants alpha and beta, each with users u1 and u2 holding one key each."""
    root: Path = tmp_path_factory.mktemp("access")
    gateway = start_module_gateway(gateway_config({"name": "localfs", "driver": "localfs",
                                            "path": str(root)}))  # fmt: skip
    admin = AdminClient.of(gateway)
    clients: dict[str, Any] = {}
    for tenant in ("alpha", "beta"):
        for user in ("u1", "u2"):
            admin.ok("POST", f"/tenants/{tenant}/users", {"name": user})
            key = admin.ok("POST", "/access-keys", {"tenant": tenant, "user": user})
            clients[f"{tenant}/{user}"] = _client(gateway, key)
    return gateway, clients


def _anonymous(gateway: GatewayProcess, bucket: str, key: str = "") -> tuple[int, str]:
    """An unsigned GET: (status, S3 error code or body)."""
    try:
        with urllib.request.urlopen(f"{gateway.endpoint}/{bucket}/{key}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            body = error.read().decode()
        code = body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else body
        return error.code, code


def _policy(bucket: str, *statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _outside_the_grant(s3: Any, bucket: str) -> dict[str, Callable[[], object]]:
    return {
        "GetObject private": lambda: s3.get_object(Bucket=bucket, Key="private/c.txt"),
        "List all": lambda: s3.list_objects_v2(Bucket=bucket),
        "List private": lambda: s3.list_objects_v2(Bucket=bucket, Prefix="private/"),
        "PutObject shared": lambda: s3.put_object(Bucket=bucket, Key="shared/x", Body=b""),
        "DeleteObject shared": lambda: s3.delete_object(Bucket=bucket, Key="shared/a.txt"),
        "GetBucketPolicy": lambda: s3.get_bucket_policy(Bucket=bucket),
        "PutBucketPolicy": lambda: s3.put_bucket_policy(Bucket=bucket, Policy="{}"),
        "GetObjectAcl": lambda: s3.get_object_acl(Bucket=bucket, Key="shared/a.txt"),
    }


def test_a_policy_opens_exactly_one_prefix_to_another_tenant(
    world: tuple[GatewayProcess, dict[str, Any]],
) -> None:
    _, c = world
    owner, bucket, other = c["alpha/u1"], random_name(), random_name()
    owner.create_bucket(Bucket=bucket)
    c["beta/u1"].create_bucket(Bucket=other)
    c["beta/u1"].put_object(Bucket=other, Key="mine.txt", Body=b"beta")
    for key in ("shared/a.txt", "shared/b.txt", "private/c.txt", "shared.txt"):
        owner.put_object(Bucket=bucket, Key=key, Body=key.encode())
    beta = (c["beta/u1"], c["beta/u2"])
    assert _denied(lambda: beta[0].get_object(Bucket=bucket, Key="shared/a.txt")) == (
        "403 AccessDenied"
    )
    owner.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, {
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::beta:root"},
        "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/shared/*",
    }, {
        "Effect": "Allow", "Principal": {"AWS": ["beta"]}, "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
        "Condition": {"StringLike": {"s3:prefix": "shared/*"}},
    }))  # fmt: skip
    for s3 in beta:
        assert s3.get_object(Bucket=bucket, Key="shared/a.txt")["Body"].read() == b"shared/a.txt"
        assert s3.head_object(Bucket=bucket, Key="shared/b.txt")["ContentLength"] == 12
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="shared/")["Contents"]
        assert [o["Key"] for o in listed] == ["shared/a.txt", "shared/b.txt"]
        refused = _outside_the_grant(s3, bucket)
        outcomes = {name: _denied(call) for name, call in refused.items()}
        assert set(outcomes.values()) == {"403 AccessDenied"}, outcomes
        # Every operation of the isolation matrix stays refused (its keys are outside shared/).
        matrix = {name: _denied(call) for name, call in _operations(s3, bucket, other).items()}
        assert {n: o for n, o in matrix.items() if not o.startswith("403")} == {}
    # Tenant alpha's own second user is unaffected, and nothing changed.
    listed = c["alpha/u2"].list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        "private/c.txt", "shared.txt", "shared/a.txt", "shared/b.txt",
    ]  # fmt: skip
    owner.delete_bucket_policy(Bucket=bucket)
    assert _denied(lambda: beta[0].get_object(Bucket=bucket, Key="shared/a.txt")) == (
        "403 AccessDenied"
    )


def test_a_policy_can_name_one_user(world: tuple[GatewayProcess, dict[str, Any]]) -> None:
    _, c = world
    bucket = random_name()
    c["alpha/u1"].create_bucket(Bucket=bucket)
    c["alpha/u1"].put_object(Bucket=bucket, Key="k", Body=b"v")
    c["alpha/u1"].put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, {
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::beta:user/u2"},
        "Action": ["s3:Get*"], "Resource": [f"arn:aws:s3:::{bucket}/*"],
    }))  # fmt: skip
    assert c["beta/u2"].get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"
    assert _denied(lambda: c["beta/u1"].get_object(Bucket=bucket, Key="k")) == "403 AccessDenied"


def test_anonymous_reads_only_what_is_public(world: tuple[GatewayProcess, dict[str, Any]]) -> None:
    gateway, c = world
    owner, bucket = c["alpha/u1"], random_name()
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="open.txt", Body=b"open", ACL="public-read")
    owner.put_object(Bucket=bucket, Key="closed.txt", Body=b"closed")
    assert _anonymous(gateway, bucket, "open.txt") == (200, "open")
    assert _anonymous(gateway, bucket, "closed.txt") == (403, "AccessDenied")
    # A missing key is not told apart from a private one.
    assert _anonymous(gateway, bucket, "missing.txt") == (403, "AccessDenied")
    assert _anonymous(gateway, bucket) == (403, "AccessDenied")
    assert _anonymous(gateway, "") == (403, "AccessDenied")
    # Another tenant reads the public object too, and only it.
    assert c["beta/u1"].get_object(Bucket=bucket, Key="open.txt")["Body"].read() == b"open"
    assert _denied(lambda: c["beta/u1"].get_object(Bucket=bucket, Key="closed.txt")) == (
        "403 AccessDenied"
    )
    acl = owner.get_object_acl(Bucket=bucket, Key="open.txt")
    assert acl["Owner"]["ID"] == "alpha"
    grants = {(g["Grantee"].get("ID") or g["Grantee"]["URI"], g["Permission"])
              for g in acl["Grants"]}  # fmt: skip
    assert grants == {
        ("alpha", "FULL_CONTROL"), ("http://acs.amazonaws.com/groups/global/AllUsers", "READ"),
    }  # fmt: skip
    private = owner.get_bucket_acl(Bucket=bucket)["Grants"]
    assert [(g["Grantee"]["ID"], g["Permission"]) for g in private] == [("alpha", "FULL_CONTROL")]
    # A public-read bucket ACL opens listing, not the private objects.
    owner.put_bucket_acl(Bucket=bucket, ACL="public-read")
    status, listing = _anonymous(gateway, bucket)
    assert status == 200
    assert "<Key>closed.txt</Key>" in listing
    assert _anonymous(gateway, bucket, "closed.txt") == (403, "AccessDenied")
    owner.put_object_acl(Bucket=bucket, Key="open.txt", ACL="private")
    assert _anonymous(gateway, bucket, "open.txt") == (403, "AccessDenied")


def test_explicit_deny_overrides_every_allow(world: tuple[GatewayProcess, dict[str, Any]]) -> None:
    gateway, c = world
    owner, bucket = c["alpha/u1"], random_name()
    owner.create_bucket(Bucket=bucket)
    for key in ("public/a.txt", "public/secret.txt"):
        owner.put_object(Bucket=bucket, Key=key, Body=key.encode(), ACL="public-read")
    owner.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, {
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/public/*",
    }, {
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/public/secret*",
    }))  # fmt: skip
    assert _anonymous(gateway, bucket, "public/a.txt") == (200, "public/a.txt")
    # Denied despite the Allow and despite the object's public-read ACL ...
    assert _anonymous(gateway, bucket, "public/secret.txt") == (403, "AccessDenied")
    # ... and for the owning tenant too.
    assert _denied(lambda: owner.get_object(Bucket=bucket, Key="public/secret.txt")) == (
        "403 AccessDenied"
    )
    assert owner.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    # The owner can always take the policy back.
    owner.delete_bucket_policy(Bucket=bucket)
    assert owner.get_object(Bucket=bucket, Key="public/secret.txt")["Body"].read()


def test_source_ip_conditions(world: tuple[GatewayProcess, dict[str, Any]]) -> None:
    gateway, c = world
    owner, bucket = c["alpha/u1"], random_name()
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="k", Body=b"v")
    allow_loopback = {
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8"]}},
    }  # fmt: skip
    owner.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, allow_loopback))
    assert _anonymous(gateway, bucket, "k") == (200, "v")
    elsewhere = {**allow_loopback, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    owner.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, elsewhere))
    assert _anonymous(gateway, bucket, "k") == (403, "AccessDenied")


@pytest.mark.parametrize(
    "policy",
    [
        "not json",
        "[]",
        '{"Statement": []}',
        '{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject",'
        ' "Resource": "arn:aws:s3:::BUCKET/*"}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",'
        ' "Resource": "arn:aws:s3:::some-other-bucket/*"}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "iam:PassRole",'
        ' "Resource": "arn:aws:s3:::BUCKET/*"}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",'
        ' "Resource": "arn:aws:s3:::BUCKET/*", "Condition": {"DateLessThan": {}}}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",'
        ' "Resource": "arn:aws:s3:::BUCKET/*",'
        ' "Condition": {"IpAddress": {"aws:SourceIp": "not-an-ip"}}}]}',
    ],
)
def test_malformed_policies_are_refused_and_change_nothing(
    world: tuple[GatewayProcess, dict[str, Any]], policy: str
) -> None:
    _, c = world
    owner, bucket = c["alpha/u1"], random_name()
    owner.create_bucket(Bucket=bucket)
    kept = _policy(bucket, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::{bucket}/*"})  # fmt: skip
    owner.put_bucket_policy(Bucket=bucket, Policy=kept)
    refused = _denied(lambda: owner.put_bucket_policy(
        Bucket=bucket, Policy=policy.replace("BUCKET", bucket)))  # fmt: skip
    assert refused == "400 MalformedPolicy"
    assert json.loads(owner.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(kept)


def test_keys_are_disabled_enabled_and_rotated(
    world: tuple[GatewayProcess, dict[str, Any]],
) -> None:
    gateway, _ = world
    admin = AdminClient.of(gateway)
    key = admin.ok("POST", "/access-keys", {"tenant": "alpha", "user": "u2"})
    users = admin.ok("GET", "/tenants/alpha/users")
    assert key["access_key"] in next(u for u in users if u["name"] == "u2")["access_keys"]
    s3 = _client(gateway, key)
    s3.list_buckets()
    assert (
        admin.ok("PATCH", f"/access-keys/{key['access_key']}", {"status": "disabled"})["status"]
        == "disabled"
    )
    _eventually_refused(s3, "InvalidAccessKeyId")
    admin.ok("PATCH", f"/access-keys/{key['access_key']}", {"status": "active"})
    _eventually_accepted(s3)
    rotated = admin.ok("POST", f"/access-keys/{key['access_key']}/rotate")
    assert rotated["secret_key"] != key["secret_key"]
    _eventually_refused(s3, "SignatureDoesNotMatch")
    _client(gateway, rotated).list_buckets()
    # A user holding keys cannot be deleted; without them it can.
    status, answer = admin.call("DELETE", "/tenants/alpha/users/u2")
    assert (status, answer["error"]["code"]) == (409, "Conflict")


def _eventually_refused(s3: Any, code: str) -> None:
    deadline = time.monotonic() + KEY_CACHE_S + 5
    seen = None
    while seen is None and time.monotonic() < deadline:
        try:
            s3.list_buckets()
            time.sleep(0.3)
        except ClientError as error:
            seen = error.response["Error"]["Code"]
    assert seen == code


def _eventually_accepted(s3: Any) -> None:
    deadline = time.monotonic() + KEY_CACHE_S + 5
    while True:
        try:
            s3.list_buckets()
            return
        except ClientError:
            assert time.monotonic() < deadline, "an enabled key stayed refused"
            time.sleep(0.3)
