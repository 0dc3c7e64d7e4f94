"""Method, host, path and query -> one typed endpoint named after the AWS operation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from gateway.errors import InvalidArgument, InvalidURI, MethodNotAllowed, NotImplementedError_


class Op(StrEnum):
    ListBuckets = "ListBuckets"
    CreateBucket = "CreateBucket"
    DeleteBucket = "DeleteBucket"
    HeadBucket = "HeadBucket"
    GetBucketLocation = "GetBucketLocation"
    GetBucketVersioning = "GetBucketVersioning"
    PutBucketVersioning = "PutBucketVersioning"
    GetBucketTagging = "GetBucketTagging"
    PutBucketTagging = "PutBucketTagging"
    DeleteBucketTagging = "DeleteBucketTagging"
    GetBucketCors = "GetBucketCors"
    PutBucketCors = "PutBucketCors"
    DeleteBucketCors = "DeleteBucketCors"
    ListObjects = "ListObjects"
    ListObjectsV2 = "ListObjectsV2"
    ListObjectVersions = "ListObjectVersions"
    ListMultipartUploads = "ListMultipartUploads"
    DeleteObjects = "DeleteObjects"
    PutObject = "PutObject"
    CopyObject = "CopyObject"
    GetObject = "GetObject"
    HeadObject = "HeadObject"
    DeleteObject = "DeleteObject"
    GetObjectTagging = "GetObjectTagging"
    PutObjectTagging = "PutObjectTagging"
    DeleteObjectTagging = "DeleteObjectTagging"
    CreateMultipartUpload = "CreateMultipartUpload"
    UploadPart = "UploadPart"
    UploadPartCopy = "UploadPartCopy"
    CompleteMultipartUpload = "CompleteMultipartUpload"
    AbortMultipartUpload = "AbortMultipartUpload"
    ListParts = "ListParts"
    GetBucketPolicy = "GetBucketPolicy"
    PutBucketPolicy = "PutBucketPolicy"
    DeleteBucketPolicy = "DeleteBucketPolicy"
    GetBucketPolicyStatus = "GetBucketPolicyStatus"
    GetBucketAcl = "GetBucketAcl"
    PutBucketAcl = "PutBucketAcl"
    GetObjectAcl = "GetObjectAcl"
    GetBucketEncryption = "GetBucketEncryption"
    PutBucketEncryption = "PutBucketEncryption"
    DeleteBucketEncryption = "DeleteBucketEncryption"
    PutObjectAcl = "PutObjectAcl"
    GetBucketLifecycleConfiguration = "GetBucketLifecycleConfiguration"
    PutBucketLifecycleConfiguration = "PutBucketLifecycleConfiguration"
    DeleteBucketLifecycle = "DeleteBucketLifecycle"
    RestoreObject = "RestoreObject"
    Preflight = "Preflight"


# Ops that act on the service or create the bucket: no existing bucket to resolve.
BUCKETLESS = frozenset({Op.ListBuckets, Op.CreateBucket, Op.Preflight})

# Sub-resources S3 has that Skybridge does not implement (yet): answered NotImplemented.
_UNSUPPORTED_BUCKET = frozenset(
    {
        "website", "logging",
        "notification", "replication", "object-lock", "ownershipControls",
        "publicAccessBlock", "accelerate", "requestPayment", "analytics", "metrics",
        "inventory", "intelligent-tiering", "metadataTable", "session",
    }
)  # fmt: skip
_UNSUPPORTED_OBJECT = frozenset(
    {"retention", "legal-hold", "attributes", "torrent", "select", "renameObject"}
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    op: Op
    bucket: str | None
    key: str | None


def split_target(host: str, raw_path: str, domain: str | None) -> tuple[str | None, str | None]:
    """(bucket, key) from virtual-hosted-style or path-style addressing."""
    path = raw_path.partition("?")[0]
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if domain and hostname.endswith("." + domain):
        return hostname[: -len(domain) - 1], decode_name(path[1:]) or None
    trimmed = path[1:] if path.startswith("/") else path
    bucket_part, _, key_part = trimmed.partition("/")
    return decode_name(bucket_part) or None, decode_name(key_part) or None


def decode_name(encoded: str) -> str:
    """A percent-decoded bucket name or key; InvalidURI unless it is valid UTF-8 (as AWS
    answers) and free of NUL, which no key stored in PostgreSQL text can hold."""
    try:
        name = unquote(encoded, errors="strict")
        name.encode("utf-8")  # a raw non-UTF-8 byte on the wire arrives as a surrogate
    except UnicodeError:
        raise InvalidURI() from None
    if "\x00" in name:
        raise InvalidURI()
    return name


def check_query(query: Mapping[str, str]) -> None:
    """InvalidArgument for a query parameter holding NUL: prefixes, markers, version and
    upload ids all reach PostgreSQL text, which cannot hold it."""
    for name, value in query.items():
        if "\x00" in name or "\x00" in value:
            raise InvalidArgument(
                "Query parameters may not contain NUL.", ArgumentName=name.replace("\x00", "")
            )


def route(
    method: str, bucket: str | None, key: str | None, query: Mapping[str, str], copy_source: bool
) -> Op:
    if method == "OPTIONS" and bucket is not None:
        return Op.Preflight
    if bucket is None:
        if method == "GET":
            return Op.ListBuckets
        raise MethodNotAllowed(Method=method, ResourceType="SERVICE")
    if key is None:
        return _bucket_op(method, query)
    return _object_op(method, query, copy_source)


def _unsupported(query: Mapping[str, str], names: frozenset[str]) -> None:
    for name in query:
        if name in names:
            raise NotImplementedError_(f"The {name} sub-resource is not implemented by Skybridge.")


_BUCKET_SUBRESOURCES: dict[tuple[str, str], Op] = {
    ("GET", "location"): Op.GetBucketLocation,
    ("GET", "versioning"): Op.GetBucketVersioning,
    ("PUT", "versioning"): Op.PutBucketVersioning,
    ("GET", "tagging"): Op.GetBucketTagging,
    ("PUT", "tagging"): Op.PutBucketTagging,
    ("DELETE", "tagging"): Op.DeleteBucketTagging,
    ("GET", "cors"): Op.GetBucketCors,
    ("PUT", "cors"): Op.PutBucketCors,
    ("DELETE", "cors"): Op.DeleteBucketCors,
    ("GET", "versions"): Op.ListObjectVersions,
    ("GET", "uploads"): Op.ListMultipartUploads,
    ("POST", "delete"): Op.DeleteObjects,
    ("GET", "policy"): Op.GetBucketPolicy,
    ("PUT", "policy"): Op.PutBucketPolicy,
    ("DELETE", "policy"): Op.DeleteBucketPolicy,
    ("GET", "policyStatus"): Op.GetBucketPolicyStatus,
    ("GET", "acl"): Op.GetBucketAcl,
    ("PUT", "acl"): Op.PutBucketAcl,
    ("GET", "encryption"): Op.GetBucketEncryption,
    ("PUT", "encryption"): Op.PutBucketEncryption,
    ("DELETE", "encryption"): Op.DeleteBucketEncryption,
    ("GET", "lifecycle"): Op.GetBucketLifecycleConfiguration,
    ("PUT", "lifecycle"): Op.PutBucketLifecycleConfiguration,
    ("DELETE", "lifecycle"): Op.DeleteBucketLifecycle,
}

_BUCKET_PLAIN: dict[str, Op] = {
    "PUT": Op.CreateBucket,
    "DELETE": Op.DeleteBucket,
    "HEAD": Op.HeadBucket,
}


def _bucket_op(method: str, query: Mapping[str, str]) -> Op:
    for name in query:
        op = _BUCKET_SUBRESOURCES.get((method, name))
        if op is not None:
            return op
    _unsupported(query, _UNSUPPORTED_BUCKET)
    if method == "GET":
        return Op.ListObjectsV2 if query.get("list-type") == "2" else Op.ListObjects
    op = _BUCKET_PLAIN.get(method)
    if op is None:
        raise MethodNotAllowed(Method=method, ResourceType="BUCKET")
    return op


def _object_op(method: str, query: Mapping[str, str], copy_source: bool) -> Op:
    if "tagging" in query:
        tagging = {"GET": Op.GetObjectTagging, "PUT": Op.PutObjectTagging}
        tag_op = tagging.get(method) or (Op.DeleteObjectTagging if method == "DELETE" else None)
        if tag_op is not None:
            return tag_op
    if "acl" in query and method in ("GET", "PUT"):
        return Op.GetObjectAcl if method == "GET" else Op.PutObjectAcl
    if "restore" in query and method == "POST":
        return Op.RestoreObject
    _unsupported(query, _UNSUPPORTED_OBJECT)
    upload = "uploadId" in query
    if method == "GET":
        return Op.ListParts if upload else Op.GetObject
    if method == "HEAD":
        return Op.HeadObject
    if method == "PUT":
        if upload:
            return Op.UploadPartCopy if copy_source else Op.UploadPart
        return Op.CopyObject if copy_source else Op.PutObject
    if method == "DELETE":
        return Op.AbortMultipartUpload if upload else Op.DeleteObject
    if method == "POST":
        if "uploads" in query:
            return Op.CreateMultipartUpload
        if upload:
            return Op.CompleteMultipartUpload
    raise MethodNotAllowed(Method=method, ResourceType="OBJECT")
