"""Range and conditional headers against references written from RFC 9110 (sections 14.1
and 13.2.2) with S3's choices: a range S3 does not support (several ranges, bad syntax) is
ignored, and an empty object satisfies no range."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import NotModified, PreconditionFailed
from gateway.http_dates import http_date
from gateway.s3 import headers as h
from gateway.services.objects import evaluate_conditions
from metadata.models import VersionRow
from tests.fuzz import profiles

WHOLE = "whole"  # the header is ignored: 200 with every byte
UNSATISFIABLE = "unsatisfiable"  # 416 InvalidRange


def reference_range(value: str, size: int) -> tuple[int, int] | str:
    spec = value.strip()
    if not spec.startswith("bytes="):
        return WHOLE
    first, dash, last = spec[len("bytes=") :].partition("-")
    ascii_digits = re.compile(r"[0-9]*")
    if not dash or not ascii_digits.fullmatch(first) or not ascii_digits.fullmatch(last):
        return WHOLE
    if not first and not last:
        return WHOLE
    if not first:  # suffix-range
        suffix = int(last)
        return UNSATISFIABLE if suffix == 0 or size == 0 else (max(0, size - suffix), size - 1)
    if last and int(last) < int(first):
        return WHOLE  # an invalid range-spec: the field is ignored
    if int(first) >= size:
        return UNSATISFIABLE
    return int(first), min(int(last), size - 1) if last else size - 1


def gateway_range(value: str, size: int) -> tuple[int, int] | str:
    parsed = h.byte_range(value)
    if parsed is None:
        return WHOLE
    return parsed.resolve(size) or UNSATISFIABLE


_number = st.one_of(st.integers(0, 2**70).map(str), st.just(""), st.sampled_from(["00", "0", "1"]))
_noise = st.sampled_from(["", " ", ",", ",0-1", "-", "+", "\t", "²", "٣", "bytes", "x", "\n"])


@st.composite
def range_values(draw: st.DrawFn) -> str:
    unit = draw(st.sampled_from(["bytes=", "bytes=", "Bytes=", "bytes =", "items=", ""]))
    first, last = draw(_number), draw(_number)
    parts = [draw(_noise), unit, draw(_noise), first, draw(_noise), "-", last, draw(_noise)]
    return "".join(parts)


sizes = st.one_of(st.integers(0, 10), st.integers(0, 2**64))


@given(range_values(), sizes, st.randoms())
def test_ranges_agree_with_rfc_9110(value: str, size: int, rng: Random) -> None:
    assert gateway_range(value, size) == reference_range(value, size)
    for _ in range(profiles.batch() - 1):
        size = rng.choice([rng.randrange(16), rng.randrange(2**64)])
        assert gateway_range(value, size) == reference_range(value, size)
    profiles.fed(profiles.batch())


@given(st.text(max_size=40), sizes)
def test_any_range_text_is_a_range_or_ignored(value: str, size: int) -> None:
    assert gateway_range(value, size) == reference_range(value, size)


@given(st.integers(0, 2**40), st.integers(0, 2**40), st.integers(1, 2**41))
def test_a_satisfiable_range_stays_inside_the_object(first: int, length: int, size: int) -> None:
    result = gateway_range(f"bytes={first}-{first + length}", size)
    if first >= size:
        assert result == UNSATISFIABLE
    else:
        assert result == (first, min(first + length, size - 1))


# Conditional requests

ETAGS = ["0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f", "x-1", "*"]
_etag = st.sampled_from(ETAGS[:3])


@st.composite
def etag_lists(draw: st.DrawFn) -> str | None:
    if draw(st.booleans()):
        return None
    if draw(st.integers(0, 5)) == 0:
        return "*"
    tags = draw(st.lists(_etag, min_size=1, max_size=3))
    spaces = draw(st.sampled_from(["", " ", "  "]))
    return ("," + spaces).join(f'"{tag}"' for tag in tags)


_moments = st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def _listed(header: str, etag: str) -> bool:
    return header.strip() == "*" or f'"{etag}"' in [t.strip() for t in header.split(",")]


def reference_conditions(
    etag: str, modified: datetime, im: str | None, inm: str | None,
    ims: datetime | None, ius: datetime | None,
) -> int:  # fmt: skip
    """The status RFC 9110 section 13.2.2 gives a GET: 412, 304 or 200."""
    modified = modified.replace(microsecond=0)
    if im is not None:
        if not _listed(im, etag):
            return 412
    elif ius is not None and modified > ius:
        return 412
    if inm is not None:
        if _listed(inm, etag):
            return 304
    elif ims is not None and modified <= ims:
        return 304
    return 200


def _version(etag: str, modified: datetime) -> VersionRow:
    return VersionRow(
        pk=1, seq=1, bucket_id=1, key="k", version_id="v", is_null_version=True,
        state="complete", is_latest=True, is_delete_marker=False, size_bytes=0, etag=etag,
        content_type=None, headers={}, user_metadata={}, tags={}, storage_class="STANDARD",
        checksum_algorithm=None, checksum_type=None, checksum_value=None, part_sizes=None,
        part_checksums=None, created_at=modified,
    )  # fmt: skip


def _whole_seconds(moment: datetime | None) -> datetime | None:
    return moment and moment.replace(microsecond=0)


@given(_etag, _moments, etag_lists(), etag_lists(), st.none() | _moments, st.none() | _moments)
def test_conditions_follow_rfc_9110(
    etag: str, modified: datetime, im: str | None, inm: str | None,
    ims: datetime | None, ius: datetime | None,
) -> None:  # fmt: skip
    sent = {"If-Match": im, "If-None-Match": inm,
            "If-Modified-Since": http_date(ims) if ims else None,
            "If-Unmodified-Since": http_date(ius) if ius else None}  # fmt: skip
    conditions = h.conditions({name: value for name, value in sent.items() if value is not None})
    try:
        evaluate_conditions(conditions, _version(etag, modified))
        status = 200
    except PreconditionFailed:
        status = 412
    except NotModified:
        status = 304
    # An HTTP date has whole seconds.
    ims, ius = _whole_seconds(ims), _whole_seconds(ius)
    assert status == reference_conditions(etag, modified, im, inm, ims, ius)


@given(st.dictionaries(
    st.sampled_from(["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"]),
    st.text(max_size=40)), _moments)  # fmt: skip
def test_any_condition_text_is_evaluated_without_error(
    sent: dict[str, str], modified: datetime
) -> None:
    try:
        evaluate_conditions(h.conditions(sent), _version(ETAGS[0], modified))
    except (PreconditionFailed, NotModified):
        pass
