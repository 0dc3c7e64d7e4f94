"""Keys and bucket names: every key survives the wire as botocore encodes it, a name that
is not UTF-8 (or holds NUL) is InvalidURI, and bucket names follow AWS's naming rules
(written here from the "General purpose bucket naming rules" page)."""

from __future__ import annotations

import re
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import InvalidBucketName, InvalidURI, KeyTooLongError
from gateway.s3.router import split_target
from gateway.services.buckets import check_bucket_name
from gateway.services.objects import MAX_KEY_BYTES, check_key

_KEY_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00")
keys = st.text(_KEY_CHARS, min_size=1, max_size=300)


@given(keys)
def test_every_key_survives_the_wire(key: str) -> None:
    assert split_target("gw:9000", f"/bucket/{quote(key, safe='/~')}", None) == ("bucket", key)
    assert split_target("bucket.s3.test", f"/{quote(key, safe='/~')}", "s3.test") == (
        "bucket",
        key,
    )


@given(keys)
def test_keys_are_limited_to_1024_bytes_of_utf8(key: str) -> None:
    too_long = len(key.encode()) > MAX_KEY_BYTES
    try:
        check_key(key)
    except KeyTooLongError:
        assert too_long
    else:
        assert not too_long


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(st.binary(min_size=1, max_size=40))
def test_a_key_that_is_not_utf8_or_holds_nul_is_invalid_uri(raw: bytes) -> None:
    encoded = "".join(f"%{byte:02X}" for byte in raw)
    try:
        _, key = split_target("gw", f"/bucket/{encoded}", None)
    except InvalidURI:
        assert not _valid_utf8(raw) or b"\x00" in raw
    else:
        assert key == raw.decode("utf-8")
        assert "\x00" not in key


_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def aws_allows(name: str) -> bool:
    return (
        3 <= len(name) <= 63
        and all(c in "abcdefghijklmnopqrstuvwxyz0123456789.-" for c in name)
        # Letters or digits first and last, no "..": every dot-separated label is a
        # non-empty DNS label (which also rules out ".-" and "-.", as virtual hosting needs).
        and all(_LABEL.fullmatch(label) for label in name.split("."))
        and not _IPV4.fullmatch(name)
        and not name.startswith(("xn--", "sthree-", "amzn-s3-demo-"))
        and not name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))
    )


_NAME_PARTS = st.sampled_from(
    ["a", "z", "0", "9", ".", "-", "..", "xn--", "sthree-", "amzn-s3-demo-", "-s3alias",
     "--ol-s3", ".mrap", "--x-s3", "--table-s3", "192.168.1.1", "1.2.3.04", "A", "_", "é"]
)  # fmt: skip
names = st.one_of(
    st.lists(_NAME_PARTS, max_size=12).map("".join),
    st.text(st.sampled_from("ab0.-"), max_size=70),
    st.text(max_size=70),
)


@given(names)
def test_bucket_names_follow_the_aws_rules(name: str) -> None:
    try:
        check_bucket_name(name)
    except InvalidBucketName:
        assert not aws_allows(name), name
    else:
        assert aws_allows(name), name
