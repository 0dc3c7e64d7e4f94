"""The bucket policy evaluator, table-tested (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.services.access_policy import (
    AccessRequest,
    Caller,
    PolicyInvalid,
    Verdict,
    evaluate,
    parse_policy,
)

B = "data"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{B}/*", **extra}  # fmt: skip


def _without_action(**extra: Any) -> dict[str, Any]:
    return {k: v for k, v in _allow(**extra).items() if k != "Action"}


def _ask(action: str = "s3:GetObject", key: str | None = "k", **extra: Any) -> AccessRequest:
    resource = f"arn:aws:s3:::{B}" + (f"/{key}" if key is not None else "")
    fields: dict[str, Any] = {"caller": Caller("beta", "u1"), "source_ip": "127.0.0.1"}
    fields.update(extra)
    return AccessRequest(action=action, resource=resource, **fields)


CASES = [
    ("anyone", _doc(_allow()), _ask(caller=Caller(None)), Verdict.ALLOW),
    ("action case", _doc(_allow(Action="S3:getobject")), _ask(), Verdict.ALLOW),
    ("wildcard action", _doc(_allow(Action="s3:Get*")), _ask("s3:GetObjectVersion"), Verdict.ALLOW),
    ("other action", _doc(_allow()), _ask("s3:PutObject"), None),
    ("NotAction", _doc(_without_action(NotAction="s3:Delete*")), _ask("s3:PutObject"),
     Verdict.ALLOW),
    ("NotAction excludes", _doc(_without_action(NotAction="s3:Delete*")),
     _ask("s3:DeleteObject"), None),
    ("resource case", _doc(_allow(Resource=f"arn:aws:s3:::{B}/Docs/*")), _ask(key="docs/x"), None),
    ("question mark", _doc(_allow(Resource=f"arn:aws:s3:::{B}/a?c")), _ask(key="abc"),
     Verdict.ALLOW),
    ("tenant principal", _doc(_allow(Principal={"AWS": "arn:aws:iam::beta:root"})), _ask(),
     Verdict.ALLOW),
    ("tenant misses anonymous", _doc(_allow(Principal={"AWS": "beta"})),
     _ask(caller=Caller(None)), None),
    ("user principal", _doc(_allow(Principal={"AWS": "arn:aws:iam::beta:user/u2"})), _ask(), None),
    ("deny wins", _doc(_allow(), _allow(Effect="Deny")), _ask(), Verdict.DENY),
    ("prefix equals", _doc(_allow(Action="s3:ListBucket", Resource=f"arn:aws:s3:::{B}",
                                  Condition={"StringEquals": {"s3:prefix": "a/"}})),
     _ask("s3:ListBucket", None, prefix="a/"), Verdict.ALLOW),
    ("prefix missing", _doc(_allow(Action="s3:ListBucket", Resource=f"arn:aws:s3:::{B}",
                                   Condition={"StringLike": {"s3:prefix": "a/*"}})),
     _ask("s3:ListBucket", None), None),
    ("negated prefix missing", _doc(_allow(Action="s3:ListBucket", Resource=f"arn:aws:s3:::{B}",
                                           Condition={"StringNotEquals": {"s3:prefix": "a/"}})),
     _ask("s3:ListBucket", None), Verdict.ALLOW),
    ("ip inside", _doc(_allow(Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})), _ask(),
     Verdict.ALLOW),
    ("ip outside", _doc(_allow(Condition={"NotIpAddress": {"aws:SourceIp": "127.0.0.1/32"}})),
     _ask(), None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "document", "request_", "verdict"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_evaluate(
    name: str, document: dict[str, Any], request_: AccessRequest, verdict: Verdict | None
) -> None:
    assert evaluate(parse_policy(document, B), request_) is verdict


@pytest.mark.parametrize(
    "document",
    [
        {"Statement": [_allow(Principal={"CanonicalUser": "x"})]},
        {"Statement": [_allow(Resource="arn:aws:s3:::other/*")]},
        {"Statement": [_allow(Action=[])]},
        {"Statement": [_allow(Condition={"StringEquals": {"aws:username": "x"}})]},
        {"Statement": [_allow(Condition={"IpAddress": {"s3:prefix": "x"}})]},
        {"Statement": [_allow(Sid=1) | {"Bogus": 1}]},
        {"Version": "2099-01-01", "Statement": [_allow()]},
    ],
)
def test_malformed(document: dict[str, Any]) -> None:
    with pytest.raises(PolicyInvalid):
        parse_policy(document, B)
