"""Everything a handler receives: the parsed endpoint, who is calling, the bucket."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.errors import InternalError
from gateway.s3.auth import Identity
from gateway.s3.router import Endpoint
from gateway.services.access import Access
from gateway.services.container import Services
from gateway.services.context import RequestContext
from metadata.models import BucketRow


@dataclass(frozen=True, slots=True)
class S3Call:
    request: web.Request
    endpoint: Endpoint
    services: Services
    identity: Identity
    ctx: RequestContext
    resolved_bucket: BucketRow | None
    # How far the caller is granted on the bucket (see gateway/services/access.py).
    access: Access = Access.GRANTED

    @property
    def bucket(self) -> BucketRow:
        if self.resolved_bucket is None:
            raise InternalError("handler needs a bucket")
        return self.resolved_bucket

    @property
    def key(self) -> str:
        if self.endpoint.key is None:
            raise InternalError("handler needs a key")
        return self.endpoint.key

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query)


def xml_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=body, status=status, headers=headers, content_type="application/xml")


def empty_response(status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, headers=headers)
    return response
