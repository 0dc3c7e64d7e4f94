"""Pure pieces of listing, ranges, conditions and segment reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.errors import InvalidBucketName, NotModified, PreconditionFailed
from gateway.s3.xml import iso_time
from gateway.services.buckets import check_bucket_name
from gateway.services.context import ByteRange, Conditions
from gateway.services.listing import decode_token, encode_token, lower_bound_after
from gateway.services.objects import etag_matches, evaluate_conditions
from gateway.services.streams import segment_spans
from metadata.listing import common_prefix, successor
from metadata.models import VersionRow


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("", None), ("a", "b"), ("a/", "a0"), ("photos/2024", "photos/2025"), ("\U0010ffff", None)],
)
def test_successor(prefix: str, expected: str | None) -> None:
    assert successor(prefix) == expected


@pytest.mark.parametrize(
    ("key", "prefix", "delimiter", "expected"),
    [
        ("a/b/c", "", "/", "a/"),
        ("a/b/c", "a/", "/", "a/b/"),
        ("a/b", "a/", "/", None),
        ("abc", "", "", None),
        ("x--y--z", "x--", "--", "x--y--"),
    ],
)
def test_common_prefix(key: str, prefix: str, delimiter: str, expected: str | None) -> None:
    assert common_prefix(key, prefix, delimiter) == expected


def test_lower_bound_skips_a_common_prefix_at_or_before_the_marker() -> None:
    assert lower_bound_after("", "", "/") == ""
    assert lower_bound_after("a/", "", "/") == "a0"
    assert lower_bound_after("a/b", "", "/") == "a0"
    assert lower_bound_after("ab", "", "/") == "ab\x01"
    assert lower_bound_after("ab", "", "") == "ab\x01"


def test_continuation_tokens_round_trip() -> None:
    for lower in ["", "a\x01", "dir/é/😀", "x" * 1024]:
        assert decode_token(encode_token(lower)) == lower


@pytest.mark.parametrize(
    ("byte_range", "size", "expected"),
    [
        (ByteRange(0, 9), 100, (0, 9)),
        (ByteRange(90, None), 100, (90, 99)),
        (ByteRange(90, 500), 100, (90, 99)),
        (ByteRange(100, None), 100, None),
        (ByteRange(None, None, suffix=10), 100, (90, 99)),
        (ByteRange(None, None, suffix=500), 100, (0, 99)),
        (ByteRange(None, None, suffix=0), 100, None),
        (ByteRange(0, 0), 0, None),
    ],
)
def test_byte_range_resolution(
    byte_range: ByteRange, size: int, expected: tuple[int, int] | None
) -> None:
    assert byte_range.resolve(size) == expected


def test_segment_spans_cover_exactly_the_range() -> None:
    sizes = [5, 5, 3]
    assert segment_spans(sizes, 0, 12) == [(0, 0, 5), (1, 0, 5), (2, 0, 3)]
    assert segment_spans(sizes, 4, 5) == [(0, 4, 1), (1, 0, 1)]
    assert segment_spans(sizes, 10, 10) == [(2, 0, 1)]
    assert segment_spans([0, 4], 0, 3) == [(1, 0, 4)]


def _version(etag: str, modified: datetime) -> VersionRow:
    return VersionRow(
        pk=1, seq=1, bucket_id=1, key="k", version_id="v", is_null_version=True,
        state="complete", is_latest=True, is_delete_marker=False, size_bytes=1, etag=etag,
        content_type=None, headers={}, user_metadata={}, tags={}, storage_class="STANDARD",
        checksum_algorithm=None, checksum_type=None, checksum_value=None, part_sizes=None,
        part_checksums=None, created_at=modified,
    )  # fmt: skip


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
EARLIER, LATER = NOW - timedelta(hours=1), NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("conditions", "outcome"),
    [
        (Conditions(if_match='"e1"'), None),
        (Conditions(if_match='"other"'), PreconditionFailed),
        (Conditions(if_match="*"), None),
        (Conditions(if_none_match='"e1"'), NotModified),
        (Conditions(if_none_match='"other"'), None),
        (Conditions(if_modified_since=LATER), NotModified),
        (Conditions(if_modified_since=EARLIER), None),
        (Conditions(if_unmodified_since=EARLIER), PreconditionFailed),
        (Conditions(if_unmodified_since=LATER), None),
        # RFC 7232: If-Match wins over If-Unmodified-Since, If-None-Match over
        # If-Modified-Since, exactly as the S3 documentation describes.
        (Conditions(if_match='"e1"', if_unmodified_since=EARLIER), None),
        (Conditions(if_none_match='"other"', if_modified_since=LATER), None),
    ],
)
def test_conditions(conditions: Conditions, outcome: type[Exception] | None) -> None:
    version = _version("e1", NOW)
    if outcome is None:
        evaluate_conditions(conditions, version)
    else:
        with pytest.raises(outcome):
            evaluate_conditions(conditions, version)


def test_etag_lists() -> None:
    assert etag_matches('"a", "b"', "b")
    assert not etag_matches('"a"', "b")


@pytest.mark.parametrize(
    "name", ["ab", "A" * 3, "a" * 64, "bad_name", "-abc", "abc-", "a..b", "a.-b", "192.168.1.1",
             "xn--abc", "abc-s3alias", "sthree-x"],
)  # fmt: skip
def test_invalid_bucket_names(name: str) -> None:
    with pytest.raises(InvalidBucketName):
        check_bucket_name(name)


@pytest.mark.parametrize("name", ["abc", "my.bucket-1", "a" * 63, "0bucket9"])
def test_valid_bucket_names(name: str) -> None:
    check_bucket_name(name)


def test_iso_time_is_whole_seconds_in_utc_whatever_the_zone() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=UTC)
    assert iso_time(moment) == "2026-01-02T03:04:05.000Z"
    east = moment.astimezone(timezone(timedelta(hours=2)))
    assert east.hour == 5
    assert iso_time(east) == "2026-01-02T03:04:05.000Z"
    # Across midnight and the year's end in another zone.
    west = datetime(2026, 1, 1, 0, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    assert (west.year, iso_time(west)) == (2025, "2026-01-01T00:30:00.000Z")
