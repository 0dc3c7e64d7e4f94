"""The one S3 entry point: route, authenticate, resolve the bucket, call one handler.

Errors are rendered here and only here.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import AccessDenied, InternalError, S3Error, ServiceUnavailable, SlowDown
from gateway.s3 import actions, connections, cors, xml
from gateway.s3.auth import Identity, authenticate
from gateway.s3.call import S3Call
from gateway.s3.handlers import access as access_handlers
from gateway.s3.handlers import buckets, listing, multipart, objects
from gateway.s3.handlers import encryption as encryption_handlers
from gateway.s3.handlers import lifecycle as lifecycle_handlers
from gateway.s3.handlers import restore as restore_handlers
from gateway.s3.router import BUCKETLESS, Endpoint, Op, check_query, route, split_target
from gateway.services.access import Access
from gateway.services.container import Services
from gateway.services.context import RequestContext
from metadata import db
from metadata.models import BucketRow

log = logging.getLogger(__name__)

Handler = Callable[[S3Call], Awaitable[web.StreamResponse]]


class InFlight:
    """Counts requests being handled, so a shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self.count = 0
        # Set when a graceful shutdown starts: responses close their connections, and
        # readiness fails, so that clients and load balancers move to other nodes.
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def exit(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


SERVICES = web.AppKey("services", Services)
INFLIGHT = web.AppKey("inflight", InFlight)
DOMAIN = web.AppKey("domain", str)
_REQUEST_ID = web.RequestKey("request_id", str)
# The caller, or why it was refused (kept so that a refusal is not authenticated twice).
_IDENTITY: web.RequestKey[Identity | S3Error] = web.RequestKey("identity")
_BUCKET = web.RequestKey("bucket", BucketRow)
_ENDPOINT = web.RequestKey("endpoint", Endpoint)
# Operations on many keys at once: each key is authorized on its own.
PER_KEY = frozenset({Op.DeleteObjects})

HANDLERS: dict[Op, Handler] = {
    Op.ListBuckets: buckets.list_buckets,
    Op.CreateBucket: buckets.create_bucket,
    Op.DeleteBucket: buckets.delete_bucket,
    Op.HeadBucket: buckets.head_bucket,
    Op.GetBucketLocation: buckets.get_bucket_location,
    Op.GetBucketVersioning: buckets.get_bucket_versioning,
    Op.PutBucketVersioning: buckets.put_bucket_versioning,
    Op.GetBucketTagging: buckets.get_bucket_tagging,
    Op.PutBucketTagging: buckets.put_bucket_tagging,
    Op.DeleteBucketTagging: buckets.delete_bucket_tagging,
    Op.GetBucketCors: buckets.get_bucket_cors,
    Op.PutBucketCors: buckets.put_bucket_cors,
    Op.DeleteBucketCors: buckets.delete_bucket_cors,
    Op.ListObjects: listing.list_objects,
    Op.ListObjectsV2: listing.list_objects_v2,
    Op.ListObjectVersions: listing.list_object_versions,
    Op.ListMultipartUploads: multipart.list_multipart_uploads,
    Op.DeleteObjects: objects.delete_objects,
    Op.PutObject: objects.put_object,
    Op.CopyObject: objects.copy_object,
    Op.GetObject: objects.get_object,
    Op.HeadObject: objects.head_object,
    Op.DeleteObject: objects.delete_object,
    Op.GetObjectTagging: objects.get_object_tagging,
    Op.PutObjectTagging: objects.put_object_tagging,
    Op.DeleteObjectTagging: objects.delete_object_tagging,
    Op.CreateMultipartUpload: multipart.create_multipart_upload,
    Op.UploadPart: multipart.upload_part,
    Op.UploadPartCopy: multipart.upload_part_copy,
    Op.CompleteMultipartUpload: multipart.complete_multipart_upload,
    Op.AbortMultipartUpload: multipart.abort_multipart_upload,
    Op.ListParts: multipart.list_parts,
    Op.GetBucketPolicy: access_handlers.get_bucket_policy,
    Op.PutBucketPolicy: access_handlers.put_bucket_policy,
    Op.DeleteBucketPolicy: access_handlers.delete_bucket_policy,
    Op.GetBucketPolicyStatus: access_handlers.get_bucket_policy_status,
    Op.GetBucketAcl: access_handlers.get_bucket_acl,
    Op.PutBucketAcl: access_handlers.put_bucket_acl,
    Op.GetObjectAcl: access_handlers.get_object_acl,
    Op.PutObjectAcl: access_handlers.put_object_acl,
    Op.GetBucketEncryption: encryption_handlers.get_bucket_encryption,
    Op.PutBucketEncryption: encryption_handlers.put_bucket_encryption,
    Op.DeleteBucketEncryption: encryption_handlers.delete_bucket_encryption,
    Op.GetBucketLifecycleConfiguration: lifecycle_handlers.get_bucket_lifecycle_configuration,
    Op.PutBucketLifecycleConfiguration: lifecycle_handlers.put_bucket_lifecycle_configuration,
    Op.DeleteBucketLifecycle: lifecycle_handlers.delete_bucket_lifecycle,
    Op.RestoreObject: restore_handlers.restore_object,
}


def request_id(request: web.Request) -> str:
    rid = request.get(_REQUEST_ID)
    if rid is None:
        rid = secrets.token_hex(8).upper()
        request[_REQUEST_ID] = rid
    return str(rid)


def endpoint_of(request: web.Request) -> Endpoint:
    """The routed endpoint, computed once per request (raises if there is none)."""
    endpoint = request.get(_ENDPOINT)
    if endpoint is None:
        bucket, key = split_target(request.host, request.raw_path, request.app[DOMAIN] or None)
        check_query(request.query)
        copy = "x-amz-copy-source" in request.headers
        endpoint = Endpoint(route(request.method, bucket, key, request.query, copy), bucket, key)
        request[_ENDPOINT] = endpoint
    return endpoint


def caller(request: web.Request) -> Identity | None:
    """Who sent the request, once it is authenticated."""
    identity = request.get(_IDENTITY)
    return identity if isinstance(identity, Identity) else None


def render_error(request: web.Request, error: S3Error) -> web.Response:
    rid = request_id(request)
    headers = {"x-amz-request-id": rid, "x-amz-id-2": rid, **error.headers}
    if request.method == "HEAD" or error.status == 304:
        return web.Response(status=error.status, headers=headers)
    fields = {"Code": error.code, "Message": error.message, **error.fields}
    fields.update({"RequestId": rid, "HostId": rid})
    body = xml.render("Error", fields, namespace=False)
    response = web.Response(
        status=error.status, body=body, headers=headers, content_type="application/xml"
    )
    if request.body_exists and not request.content.is_eof():
        # The body was not read; the connection cannot be reused safely.
        response.force_close()
    return response


async def _identity(request: web.Request, services: Services) -> Identity:
    """Authenticate once per request; a refusal is kept and raised again."""
    identity = request.get(_IDENTITY)
    if identity is None:
        try:
            identity = await authenticate(request, services.auth, request.app[DOMAIN] or None)
        except S3Error as refusal:
            identity = refusal
        request[_IDENTITY] = identity
    if isinstance(identity, S3Error):
        raise identity
    assert isinstance(identity, Identity)
    return identity


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` only once the request is authenticated. A refusal or
    a failure is left to the handler, which renders it like any other error (and middleware
    sees it)."""
    try:
        await _identity(request, request.app[SERVICES])
    except Exception:
        return None
    if request.version >= (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def _dispatch(request: web.Request) -> web.StreamResponse:
    if connections.refuses(request):
        raise SlowDown("Too many connections to this node; retry later.")
    services = request.app[SERVICES]
    endpoint = endpoint_of(request)
    if endpoint.op is Op.Preflight:
        bucket = await services.buckets.lookup(endpoint.bucket or "")
        return cors.preflight(bucket, request)
    identity = await _identity(request, services)
    key = identity.key
    ctx = RequestContext(
        key.access_key_id, key.tenant, request_id(request), key.user_name, request.remote or ""
    )
    bucket_row: BucketRow | None = None
    access = Access.GRANTED
    if endpoint.op in BUCKETLESS:
        if identity.anonymous:
            raise AccessDenied()
    elif endpoint.op in PER_KEY:
        # Authorized key by key in the handler.
        bucket_row = await services.buckets.find(endpoint.bucket or "")
    else:
        bucket_row, access = await services.buckets.resolve(
            ctx,
            endpoint.bucket or "",
            actions.action(endpoint.op, request.query),
            endpoint.key,
            request.query.get("prefix"),
        )
    if bucket_row is not None:
        request[_BUCKET] = bucket_row
    call = S3Call(request, endpoint, services, identity, ctx, bucket_row, access)
    return await HANDLERS[endpoint.op](call)


async def handle(request: web.Request) -> web.StreamResponse:
    inflight = request.app[INFLIGHT]
    inflight.enter()
    try:
        return await _handle(request)
    finally:
        inflight.exit()


async def _handle(request: web.Request) -> web.StreamResponse:
    try:
        response = await _dispatch(request)
    except objects.StreamAborted:
        raise
    except S3Error as error:
        response = render_error(request, error)
    except Exception as error:
        response = render_error(request, _unexpected(request, error))
    return response


def _unexpected(request: web.Request, error: Exception) -> S3Error:
    """What a failure that is no S3Error becomes: 503 while PostgreSQL is unreachable (the
    client retries, and nothing was acknowledged), else 500."""
    if db.is_unreachable(error):
        log.warning("%s %s: metadata unreachable: %r", request.method, request.path, error)
        return ServiceUnavailable("The metadata database is unreachable; retry later.")
    log.exception("unhandled error in %s %s", request.method, request.path)
    return InternalError()


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    rid = request_id(request)
    response.headers.setdefault("x-amz-request-id", rid)
    response.headers.setdefault("x-amz-id-2", rid)
    response.headers["Server"] = "Skybridge"
    if request.app[INFLIGHT].draining or connections.refuses(request):
        # aiohttp settles its Connection header before this hook runs: say it here.
        response.force_close()
        response.headers["Connection"] = "close"
    cors.apply(request.get(_BUCKET), request, response)


def add_routes(app: web.Application) -> None:
    app[INFLIGHT] = InFlight()
    app.router.add_route("*", "/{tail:.*}", handle, expect_handler=expect_handler)
    app.on_response_prepare.append(on_prepare)
