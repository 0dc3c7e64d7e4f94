"""HTTP dates (RFC 9110 IMF-fixdate), as S3 writes them in Last-Modified and Expires.

Pure. Formatted by hand: ``email.utils.format_datetime`` goes through a time tuple (about
2 % of a small GET's samples in py-spy, with ``strftime`` in a second copy of this
format), and ``strftime`` follows the process's locale for the day and month names.
"""

from __future__ import annotations

from datetime import UTC, datetime

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(moment: datetime) -> str:
    """``moment`` (timezone-aware) in GMT, to the second: "Tue, 08 Dec 2026 04:20:00 GMT"."""
    if moment.tzinfo is None:
        raise ValueError("an HTTP date needs a timezone-aware datetime")
    t = moment.astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d}"
        f" {t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )
