"""Lifecycle configurations: the AWS documentation's examples parse, malformed rules are
refused with the codes AWS answers with, and the stored document reads back the same."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.errors import S3Error
from gateway.lifecycle.filters import Filter
from gateway.lifecycle.rules import (
    Expiration,
    LifecycleConfiguration,
    NoncurrentExpiration,
    NoncurrentTransition,
    Rule,
    Transition,
    parse,
    render,
)
from gateway.s3 import xml


def _config(rules: str) -> LifecycleConfiguration:
    body = f"<LifecycleConfiguration>{rules}</LifecycleConfiguration>"
    return parse(xml.parse(body.encode(), "LifecycleConfiguration"))


def _rule(inner: str, rule_id: str = "r") -> str:
    return f"<Rule><ID>{rule_id}</ID>{inner}</Rule>"


# The examples of "Examples of S3 Lifecycle configurations" in the S3 user guide.
VALID = [
    (
        "<Filter><Prefix>tax/</Prefix></Filter><Status>Enabled</Status>"
        "<Transition><Days>365</Days><StorageClass>GLACIER</StorageClass></Transition>"
        "<Expiration><Days>3650</Days></Expiration>",
        Rule("r", True, Filter(prefix="tax/"), Expiration(days=3650),
             (Transition("GLACIER", days=365),)),
    ),
    (
        "<Filter><Tag><Key>key1</Key><Value>value1</Value></Tag></Filter>"
        "<Status>Enabled</Status>"
        "<Transition><Days>0</Days><StorageClass>GLACIER</StorageClass></Transition>",
        Rule("r", True, Filter(tags=(("key1", "value1"),)),
             transitions=(Transition("GLACIER", days=0),)),
    ),
    (
        "<Filter><And><Prefix>projectA/</Prefix><Tag><Key>key1</Key><Value>value1</Value>"
        "</Tag><Tag><Key>key2</Key><Value>value2</Value></Tag></And></Filter>"
        "<Status>Enabled</Status><Expiration><Days>30</Days></Expiration>",
        Rule("r", True, Filter("projectA/", (("key1", "value1"), ("key2", "value2")),
                               use_and=True), Expiration(days=30)),
    ),
    (
        "<Filter></Filter><Status>Disabled</Status>"
        "<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>",
        Rule("r", False, Filter(), Expiration(date=datetime(2030, 1, 1, tzinfo=UTC))),
    ),
    (
        "<Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
        "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
        "<StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>"
        "<NoncurrentVersionExpiration><NoncurrentDays>365</NoncurrentDays>"
        "<NewerNoncurrentVersions>5</NewerNoncurrentVersions></NoncurrentVersionExpiration>",
        Rule("r", True, Filter(prefix="logs/"),
             noncurrent_transitions=(NoncurrentTransition("STANDARD_IA", 30),),
             noncurrent_expiration=NoncurrentExpiration(365, 5)),
    ),
    (
        "<Prefix></Prefix><Status>Enabled</Status>"
        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation>"
        "</AbortIncompleteMultipartUpload>",
        Rule("r", True, Filter(prefix="", legacy=True), abort_incomplete_days=7),
    ),
    (
        "<Filter><Prefix>docs/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
        Rule("r", True, Filter(prefix="docs/"), Expiration(expired_object_delete_marker=True)),
    ),
    (
        "<Filter><And><ObjectSizeGreaterThan>500</ObjectSizeGreaterThan>"
        "<ObjectSizeLessThan>64000</ObjectSizeLessThan></And></Filter>"
        "<Status>Enabled</Status>"
        "<Transition><Date>2031-02-01</Date><StorageClass>GLACIER_IR</StorageClass></Transition>",
        Rule("r", True, Filter(size_greater_than=500, size_less_than=64000, use_and=True),
             transitions=(Transition("GLACIER_IR", date=datetime(2031, 2, 1, tzinfo=UTC)),)),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("inner", "expected"), VALID)
def test_documented_examples_parse(inner: str, expected: Rule) -> None:
    assert _config(_rule(inner)).rules == (expected,)


@pytest.mark.parametrize(("inner", "expected"), VALID)
def test_the_stored_document_reads_back_the_same(inner: str, expected: Rule) -> None:
    config = _config(_rule(inner))
    rendered = xml.render("LifecycleConfiguration", render(config))
    assert parse(xml.parse(rendered, "LifecycleConfiguration")) == config
    assert parse(render(config)) == config


def test_a_rule_without_id_is_named() -> None:
    rules = _config(
        "<Rule><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
    ).rules
    assert len(rules[0].id) == 48


ENABLED = "<Status>Enabled</Status>"
EXPIRE = "<Expiration><Days>10</Days></Expiration>"
ANY = "<Filter></Filter>"
INVALID = [
    ("", "MalformedXML"),  # no rule at all
    (_rule(ENABLED + EXPIRE), "MalformedXML"),  # neither Filter nor Prefix
    (_rule("<Prefix>a</Prefix>" + ANY + ENABLED + EXPIRE), "MalformedXML"),
    (_rule(ANY + "<Status>On</Status>" + EXPIRE), "MalformedXML"),
    (_rule(ANY + ENABLED), "InvalidRequest"),  # no action
    (_rule(ANY + ENABLED + EXPIRE + "<Colour>red</Colour>"), "MalformedXML"),
    (_rule(ANY + ENABLED + EXPIRE) * 2, "InvalidArgument"),  # the same ID twice
    (_rule(ANY + ENABLED + EXPIRE, "x" * 256), "InvalidArgument"),
    (_rule("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
           + ENABLED + EXPIRE), "MalformedXML"),
    (_rule("<Filter><Tag><Key>k</Key></Tag></Filter>" + ENABLED + EXPIRE), "MalformedXML"),
    (_rule("<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key>"
           "<Value>2</Value></Tag></And></Filter>" + ENABLED + EXPIRE), "InvalidRequest"),
    (_rule("<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
           "<ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter>" + ENABLED + EXPIRE),
     "InvalidArgument"),
    (_rule("<Filter><ObjectSizeLessThan>big</ObjectSizeLessThan></Filter>" + ENABLED + EXPIRE),
     "MalformedXML"),
    (_rule(ANY + ENABLED + "<Expiration><Days>0</Days></Expiration>"), "InvalidArgument"),
    (_rule(ANY + ENABLED + "<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date>"
           "</Expiration>"), "MalformedXML"),
    (_rule(ANY + ENABLED + "<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>"),
     "InvalidArgument"),
    (_rule(ANY + ENABLED + "<Expiration><Date>tomorrow</Date></Expiration>"), "MalformedXML"),
    (_rule(ANY + ENABLED + "<Expiration><ExpiredObjectDeleteMarker>yes"
           "</ExpiredObjectDeleteMarker></Expiration>"), "MalformedXML"),
    (_rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>" + ENABLED
           + "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
           "</Expiration>"), "InvalidRequest"),
    (_rule(ANY + ENABLED + "<Transition><Days>-1</Days><StorageClass>GLACIER</StorageClass>"
           "</Transition>"), "InvalidArgument"),
    (_rule(ANY + ENABLED + "<Transition><Days>10</Days><StorageClass>STANDARD_IA"
           "</StorageClass></Transition>"), "InvalidArgument"),  # IA needs 30 days
    (_rule(ANY + ENABLED + "<Transition><Days>40</Days><StorageClass>STANDARD</StorageClass>"
           "</Transition>"), "InvalidStorageClass"),
    (_rule(ANY + ENABLED + "<Transition><Days>40</Days></Transition>"), "MalformedXML"),
    (_rule(ANY + ENABLED + "<Transition><Days>40</Days><StorageClass>GLACIER</StorageClass>"
           "</Transition><Transition><Days>90</Days><StorageClass>GLACIER</StorageClass>"
           "</Transition>"), "InvalidRequest"),
    (_rule(ANY + ENABLED + "<Transition><Days>40</Days><StorageClass>GLACIER</StorageClass>"
           "</Transition><Transition><Date>2030-01-01</Date><StorageClass>DEEP_ARCHIVE"
           "</StorageClass></Transition>"), "InvalidRequest"),
    (_rule(ANY + ENABLED + EXPIRE + "<Transition><Days>10</Days><StorageClass>GLACIER"
           "</StorageClass></Transition>"), "InvalidArgument"),  # expires before it moves
    (_rule(ANY + ENABLED + "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
           "</NoncurrentVersionExpiration>"), "InvalidArgument"),
    (_rule(ANY + ENABLED + "<NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays>"
           "<NewerNoncurrentVersions>101</NewerNoncurrentVersions>"
           "</NoncurrentVersionExpiration>"), "InvalidArgument"),
    (_rule(ANY + ENABLED + "<NoncurrentVersionExpiration></NoncurrentVersionExpiration>"),
     "MalformedXML"),
    (_rule(ANY + ENABLED + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0"
           "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"), "InvalidArgument"),
    (_rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>" + ENABLED
           + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
           "</AbortIncompleteMultipartUpload>"), "InvalidRequest"),
    (_rule(ANY + ENABLED + EXPIRE + EXPIRE), "MalformedXML"),
]  # fmt: skip


@pytest.mark.parametrize(("rules", "code"), INVALID)
def test_malformed_rules_are_refused_with_the_aws_code(rules: str, code: str) -> None:
    with pytest.raises(S3Error) as refused:
        _config(rules)
    assert refused.value.code == code, refused.value.message


def test_enabled_rules_leave_out_disabled_ones() -> None:
    config = _config(
        _rule(ANY + ENABLED + EXPIRE, "on") + _rule(ANY + "<Status>Disabled</Status>" + EXPIRE)
    )
    assert [rule.id for rule in config.enabled_rules] == ["on"]
