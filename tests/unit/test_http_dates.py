"""HTTP dates as the standard library's email.utils writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.http_dates import http_date

_moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


@given(_moments)
def test_a_utc_moment_is_written_as_email_utils_writes_it(moment: datetime) -> None:
    assert http_date(moment) == format_datetime(moment.replace(microsecond=0), usegmt=True)


@given(_moments, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_another_zone_is_written_in_gmt(moment: datetime, offset_min: int) -> None:
    elsewhere = moment.astimezone(timezone(timedelta(minutes=offset_min)))
    assert http_date(elsewhere) == http_date(moment)


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        http_date(datetime(2026, 12, 8, 4, 20))
