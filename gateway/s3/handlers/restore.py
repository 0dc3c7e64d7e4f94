"""RestoreObject: a temporary readable copy of an archived version."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import InvalidArgument, MalformedXML, NotImplementedError_
from gateway.s3 import headers as h
from gateway.s3 import xml
from gateway.s3.body import read_small_body
from gateway.s3.call import S3Call, empty_response
from gateway.s3.xml import element, integer, only_known, text

MAX_REQUEST_BYTES = 64 * 1024
TIERS = ("Standard", "Bulk", "Expedited")
_KNOWN = ("Days", "GlacierJobParameters", "Tier", "Description", "Type", "OutputLocation",
          "SelectParameters")  # fmt: skip


def _days(document: dict[str, Any]) -> int:
    """The days a RestoreRequest asks for; every retrieval tier restores alike here."""
    only_known(document, _KNOWN, "RestoreRequest")
    if "Type" in document or "OutputLocation" in document or "SelectParameters" in document:
        raise NotImplementedError_("Restores with Select are not implemented by Skybridge.")
    job = element(document.get("GlacierJobParameters"), "GlacierJobParameters")
    only_known(job, ("Tier",), "GlacierJobParameters")
    for tier in (job.get("Tier"), document.get("Tier")):
        if tier is not None and text(tier, "Tier") not in TIERS:
            raise MalformedXML("Tier must be Standard, Bulk or Expedited.")
    if "Days" not in document:
        raise MalformedXML("A RestoreRequest needs Days.")
    days = integer(document["Days"], "Days")
    if days < 1:
        raise InvalidArgument("Days must be a positive integer.", ArgumentName="Days")
    return days


async def restore_object(call: S3Call) -> web.StreamResponse:
    data = await read_small_body(call.request, call.identity, MAX_REQUEST_BYTES)
    days = _days(xml.parse(data, "RestoreRequest"))
    version_id = h.check_version_id(call.request.query.get("versionId"))
    started = await call.services.restores.restore(call.bucket, call.key, version_id, days)
    return empty_response(202 if started else 200)
