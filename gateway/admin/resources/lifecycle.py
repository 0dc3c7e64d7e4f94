"""Bucket lifecycle: run a pass now, at any time (the injectable clock), and see the
transitions under way."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.admin.call import AdminCall
from gateway.admin.resources.tenancy import BUCKET_NAME
from gateway.admin.spec import Operations, array, integer, nullable, obj, string
from gateway.services.admin_errors import Unprocessable

ops = Operations("lifecycle")

# RFC 3339, as the schema can say it; a date it admits but the calendar has not is 422.
TIMESTAMP = string(
    pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
REPORT = obj(
    ["now", "expired", "removed", "uploads_aborted", "transitions_started",
     "transitions_finished", "transitions_waiting", "restores_expired", "warmups_expired",
     "access_tiered"],
    now=string(), expired=integer(), removed=integer(), uploads_aborted=integer(),
    transitions_started=integer(), transitions_finished=integer(),
    transitions_waiting=integer(), restores_expired=integer(), warmups_expired=integer(),
    access_tiered=integer(),
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


MAX_DAYS = 36500
TIERING = obj(
    ["warm_after_days"],
    warm_after_days=integer(minimum=1, maximum=MAX_DAYS),
    cold_after_days=nullable(integer(minimum=1, maximum=MAX_DAYS)),
)
BUCKET_TIERING = obj(
    ["bucket", "access_tiering"], bucket=string(), access_tiering=nullable(TIERING)
)


@ops.add(
    "PUT",
    "/buckets/{bucket}/tiering",
    "Access-based tiering for a bucket: a current version not read for `warm_after_days`"
    " moves from STANDARD to STANDARD_IA (warm), one not read for `cold_after_days` on to"
    " GLACIER_IR (cold), by lifecycle passes; a GET brings it back to STANDARD",
    response=BUCKET_TIERING,
    path_params={"bucket": BUCKET_NAME},
    body=TIERING,
    errors=(404, 422),
)
async def put_bucket_tiering(call: AdminCall) -> object:
    return await call.management.set_access_tiering(call.param("bucket"), call.body)


@ops.add(
    "DELETE",
    "/buckets/{bucket}/tiering",
    "Stop access-based tiering for a bucket (versions stay in their classes)",
    response=BUCKET_TIERING,
    path_params={"bucket": BUCKET_NAME},
    errors=(404,),
)
async def delete_bucket_tiering(call: AdminCall) -> object:
    return await call.management.set_access_tiering(call.param("bucket"), None)
