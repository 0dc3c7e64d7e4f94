"""The XML request parsers: on any bytes they answer a document or an S3 error (never
another exception), and valid documents round-trip through render and parse."""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import MalformedXML, S3Error
from gateway.lifecycle import rules as lifecycle_rules
from gateway.s3 import xml
from gateway.s3.handlers.buckets import parse_cors, parse_tag_set, render_tag_set
from gateway.s3.handlers.encryption import _rule as encryption_rule
from gateway.s3.handlers.multipart import _completed_parts
from gateway.s3.handlers.objects import _delete_targets
from gateway.s3.handlers.restore import _days as restore_days
from tests.fuzz import profiles

# Each request document, by root element, with the parser that follows xml.parse.
PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "Tagging": parse_tag_set,
    "CORSConfiguration": parse_cors,
    "ServerSideEncryptionConfiguration": encryption_rule,
    "CompleteMultipartUpload": _completed_parts,
    "Delete": _delete_targets,
    "RestoreRequest": restore_days,
    "LifecycleConfiguration": lifecycle_rules.parse,
    "VersioningConfiguration": dict,
    "CreateBucketConfiguration": dict,
}
NAMES = sorted(
    {*PARSERS, "TagSet", "Tag", "Key", "Value", "CORSRule", "AllowedMethod", "AllowedOrigin",
     "AllowedHeader", "ExposeHeader", "MaxAgeSeconds", "ID", "Rule", "SSEAlgorithm",
     "ApplyServerSideEncryptionByDefault", "KMSMasterKeyID", "Part", "PartNumber", "ETag",
     "ChecksumCRC32", "Object", "VersionId", "Quiet", "Days", "Tier", "GlacierJobParameters",
     "Status", "Filter", "Prefix", "And", "Expiration", "Date", "Transition", "StorageClass",
     "NoncurrentVersionExpiration", "NoncurrentDays", "AbortIncompleteMultipartUpload",
     "DaysAfterInitiation", "ExpiredObjectDeleteMarker", "ObjectSizeGreaterThan",
     "LocationConstraint", "x:Key", "Bogus"}
)  # fmt: skip
VALUES = ["", "1", "-1", "0", "true", "Enabled", "Disabled", "GET", "*", "AES256", "aws:kms",
          "2026-01-01T00:00:00.000Z", "GLACIER", "Standard", "9" * 30, "1e3", " 7 ", "x" * 300,
          "²", "\u00e9", "&amp;", "&#0;"]  # fmt: skip

_text = st.one_of(st.sampled_from(VALUES), st.text(max_size=20))


def _render(tree: Any) -> str:
    if isinstance(tree, str):
        return tree if tree in VALUES else escape(tree)
    name, attrs, children = tree
    attributes = "".join(f" {a}={quoteattr(v)}" for a, v in attrs.items())
    return f"<{name}{attributes}>{''.join(_render(c) for c in children)}</{name}>"


trees = st.recursive(
    _text,
    lambda kids: st.tuples(
        st.sampled_from(NAMES),
        st.dictionaries(
            st.sampled_from(["xmlns", "id", "xmlns:x"]), st.text(max_size=8), max_size=1
        ),  # fmt: skip
        st.lists(kids, max_size=5),
    ),
    max_leaves=30,
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, bytes]:
    """(root name, body): a tree under a known root, sometimes with bytes corrupted."""
    root = draw(st.sampled_from(sorted(PARSERS)))
    children = draw(st.lists(trees, max_size=6))
    body = _render((root, {}, children)).encode()
    if draw(st.booleans()):
        body = xml.XML_DECLARATION.encode() + body
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, max(0, len(body) - 1)))
        body = body[:at] + draw(st.binary(min_size=0, max_size=3)) + body[at + 1 :]
    return root, body


def _parse_fully(root: str, body: bytes) -> None:
    try:
        PARSERS[root](xml.parse(body, root))
    except S3Error:
        pass


@given(documents())
def test_documents_parse_or_fail_with_an_s3_error(document: tuple[str, bytes]) -> None:
    _parse_fully(*document)


@given(documents(), st.randoms())
def test_mutated_documents_parse_or_fail_with_an_s3_error(
    document: tuple[str, bytes], rng: Random
) -> None:
    root, body = document
    for _ in range(profiles.batch()):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(mutated) + 1)
            mutated[at : at + rng.randint(0, 3)] = rng.randbytes(rng.randint(0, 3))
        _parse_fully(root, bytes(mutated))
    profiles.fed(profiles.batch())


@given(st.sampled_from(sorted(PARSERS)), st.binary(max_size=200))
def test_any_bytes_parse_or_fail_with_an_s3_error(root: str, body: bytes) -> None:
    _parse_fully(root, body)


# Round trips. xmltodict strips the whitespace around text, so values are drawn stripped.

_XML_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                           exclude_characters="\ufffe\uffff")  # fmt: skip
words = st.text(_XML_CHARS, min_size=1, max_size=30).map(str.strip).filter(bool)


@given(st.dictionaries(words, st.one_of(st.just(""), words), max_size=10))
def test_tag_sets_round_trip(tags: dict[str, str]) -> None:
    body = xml.render("Tagging", render_tag_set(tags))
    assert parse_tag_set(xml.parse(body, "Tagging")) == tags


@given(st.lists(st.tuples(st.integers(1, 10000), words), min_size=0, max_size=20))
def test_completed_parts_round_trip(parts: list[tuple[int, str]]) -> None:
    body = xml.render(
        "CompleteMultipartUpload", {"Part": [{"PartNumber": n, "ETag": e} for n, e in parts]}
    )
    parsed = _completed_parts(xml.parse(body, "CompleteMultipartUpload"))
    assert [(p.part_number, p.etag) for p in parsed] == parts


@given(st.lists(st.tuples(words, st.none() | words), min_size=1, max_size=20), st.booleans())
def test_delete_documents_round_trip(targets: list[tuple[str, str | None]], quiet: bool) -> None:
    objects = [{"Key": key, "VersionId": version} for key, version in targets]
    body = xml.render("Delete", {"Quiet": quiet, "Object": objects})
    assert _delete_targets(xml.parse(body, "Delete")) == (targets, quiet)


_methods = st.lists(st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD"]), min_size=1,
                    max_size=5)  # fmt: skip
cors_rules = st.fixed_dictionaries(
    {"AllowedMethod": _methods, "AllowedOrigin": st.lists(words, min_size=1, max_size=3),
     "AllowedHeader": st.lists(words, max_size=3), "ExposeHeader": st.lists(words, max_size=3)},
    optional={"ID": words, "MaxAgeSeconds": st.integers(0, 10**9)},
)  # fmt: skip


@given(st.lists(cors_rules, min_size=1, max_size=5))
def test_cors_rules_round_trip(rules: list[dict[str, Any]]) -> None:
    body = xml.render("CORSConfiguration", {"CORSRule": rules})
    assert parse_cors(xml.parse(body, "CORSConfiguration")) == rules


# Hostile documents.

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Tagging [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<Tagging><TagSet><Tag><Key>k</Key><Value>&d;</Value></Tag></TagSet></Tagging>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Tagging [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Tagging><TagSet><Tag><Key>k</Key><Value>&x;</Value></Tag></TagSet></Tagging>"""


@given(st.sampled_from([BILLION_LAUGHS, EXTERNAL_ENTITY]))
def test_documents_with_entities_are_malformed(body: bytes) -> None:
    try:
        xml.parse(body, "Tagging")
    except MalformedXML:
        return
    raise AssertionError("a document type declaration was accepted")


@given(st.integers(xml.MAX_XML_DEPTH + 1, 5000), st.sampled_from(["Value", "Bogus"]))
def test_documents_nested_too_deep_are_malformed(depth: int, name: str) -> None:
    inner = f"<{name}>" * (depth - 3) + "x" + f"</{name}>" * (depth - 3)
    body = f"<Tagging><TagSet><Tag><Key>k</Key>{inner}</Tag></TagSet></Tagging>".encode()
    try:
        xml.parse(body, "Tagging")
    except MalformedXML:
        return
    raise AssertionError(f"a document {depth} levels deep was accepted")


@given(st.integers(1, xml.MAX_XML_DEPTH - 4))
def test_documents_within_the_depth_limit_parse(depth: int) -> None:
    inner = "<Bogus>" * depth + "x" + "</Bogus>" * depth
    body = f"<Tagging><TagSet><Tag><Key>k</Key><Value>{inner}</Value></Tag></TagSet></Tagging>"
    assert "TagSet" in xml.parse(body.encode(), "Tagging")
