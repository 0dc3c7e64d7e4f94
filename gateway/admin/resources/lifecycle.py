"""Bucket lifecycle: run a pass now, at any time (the injectable clock), and see the
transitions under way."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.admin.call import AdminCall
from gateway.admin.spec import Operations, array, integer, obj, string
from gateway.services.admin_errors import Unprocessable

ops = Operations("lifecycle")

# RFC 3339, as the schema can say it; a date it admits but the calendar has not is 422.
TIMESTAMP = string(
    pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
REPORT = obj(
    ["now", "expired", "removed", "uploads_aborted", "transitions_started",
     "transitions_finished", "transitions_waiting", "restores_expired", "warmups_expired"],
    now=string(), expired=integer(), removed=integer(), uploads_aborted=integer(),
    transitions_started=integer(), transitions_finished=integer(),
    transitions_waiting=integer(), restores_expired=integer(), warmups_expired=integer(),
)  # fmt: skip


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Unprocessable(f"{value} is not a date and time Skybridge can use") from None


@ops.add(
    "POST",
    "/lifecycle/run",
    "Run a lifecycle pass now, evaluating the rules at `now` (default: the current time)."
    " A later `now` applies early what would be due then: tests use it to skip days.",
    response=REPORT,
    body=obj(now=TIMESTAMP),
    errors=(422,),
)
async def run_lifecycle(call: AdminCall) -> object:
    now = _moment(call.body.get("now"))
    report = await call.runtime.workers.lifecycle.run_pass(now, wait=True)
    assert report is not None, "a waiting pass always runs"
    return report.as_dict()


UNDER_WAY = obj(["storage_class", "objects", "bytes"], storage_class=string(), objects=integer(),
                bytes=integer())  # fmt: skip


@ops.add(
    "GET",
    "/lifecycle/transitions",
    "Tiering progress: the lifecycle transitions under way (versions whose copies to their"
    " new storage class are being made), in all and per destination class",
    response=obj(["objects", "bytes", "classes"], objects=integer(), bytes=integer(),
                 classes=array(UNDER_WAY)),
)  # fmt: skip
async def list_transitions(call: AdminCall) -> object:
    return await call.management.transitions()
