"""Routing a request to the AWS operation, table-driven from the S3 API reference."""

from __future__ import annotations

import pytest

from gateway.errors import MethodNotAllowed, NotImplementedError_
from gateway.s3.router import Op, route, split_target

CASES = [
    ("GET", "b", None, {"policy": ""}, False, Op.GetBucketPolicy),
    ("PUT", "b", None, {"policy": ""}, False, Op.PutBucketPolicy),
    ("DELETE", "b", None, {"policy": ""}, False, Op.DeleteBucketPolicy),
    ("GET", "b", None, {"policyStatus": ""}, False, Op.GetBucketPolicyStatus),
    ("GET", "b", None, {"acl": ""}, False, Op.GetBucketAcl),
    ("PUT", "b", None, {"acl": ""}, False, Op.PutBucketAcl),
    ("GET", "b", "k", {"acl": ""}, False, Op.GetObjectAcl),
    ("PUT", "b", "k", {"acl": "", "versionId": "v"}, False, Op.PutObjectAcl),
    ("GET", None, None, {}, False, Op.ListBuckets),
    ("PUT", "b", None, {}, False, Op.CreateBucket),
    ("HEAD", "b", None, {}, False, Op.HeadBucket),
    ("DELETE", "b", None, {}, False, Op.DeleteBucket),
    ("GET", "b", None, {}, False, Op.ListObjects),
    ("GET", "b", None, {"list-type": "2"}, False, Op.ListObjectsV2),
    ("GET", "b", None, {"versions": ""}, False, Op.ListObjectVersions),
    ("GET", "b", None, {"uploads": ""}, False, Op.ListMultipartUploads),
    ("GET", "b", None, {"location": ""}, False, Op.GetBucketLocation),
    ("PUT", "b", None, {"versioning": ""}, False, Op.PutBucketVersioning),
    ("DELETE", "b", None, {"cors": ""}, False, Op.DeleteBucketCors),
    ("POST", "b", None, {"delete": ""}, False, Op.DeleteObjects),
    ("PUT", "b", "k", {}, False, Op.PutObject),
    ("PUT", "b", "k", {}, True, Op.CopyObject),
    ("PUT", "b", "k", {"uploadId": "u", "partNumber": "1"}, False, Op.UploadPart),
    ("PUT", "b", "k", {"uploadId": "u", "partNumber": "1"}, True, Op.UploadPartCopy),
    ("POST", "b", "k", {"uploads": ""}, False, Op.CreateMultipartUpload),
    ("POST", "b", "k", {"uploadId": "u"}, False, Op.CompleteMultipartUpload),
    ("DELETE", "b", "k", {"uploadId": "u"}, False, Op.AbortMultipartUpload),
    ("GET", "b", "k", {"uploadId": "u"}, False, Op.ListParts),
    ("GET", "b", "k", {}, False, Op.GetObject),
    ("HEAD", "b", "k", {"versionId": "v"}, False, Op.HeadObject),
    ("DELETE", "b", "k", {}, False, Op.DeleteObject),
    ("GET", "b", "k", {"tagging": ""}, False, Op.GetObjectTagging),
    ("DELETE", "b", "k", {"tagging": ""}, False, Op.DeleteObjectTagging),
    ("OPTIONS", "b", "k", {}, False, Op.Preflight),
    ("PUT", "b", None, {"lifecycle": ""}, False, Op.PutBucketLifecycleConfiguration),
    ("GET", "b", None, {"lifecycle": ""}, False, Op.GetBucketLifecycleConfiguration),
    ("DELETE", "b", None, {"lifecycle": ""}, False, Op.DeleteBucketLifecycle),
    ("POST", "b", "k", {"restore": "", "versionId": "v"}, False, Op.RestoreObject),
]


@pytest.mark.parametrize(("method", "bucket", "key", "query", "copy", "op"), CASES)
def test_route(
    method: str, bucket: str | None, key: str | None, query: dict[str, str], copy: bool, op: Op
) -> None:
    assert route(method, bucket, key, query, copy) is op


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query"),
    [("GET", "b", None, {"website": ""}), ("PUT", "b", None, {"logging": ""}),
     ("GET", "b", "k", {"retention": ""}), ("POST", "b", "k", {"select": ""})],
)  # fmt: skip
def test_unbuilt_subresources_answer_not_implemented(
    method: str, bucket: str, key: str | None, query: dict[str, str]
) -> None:
    with pytest.raises(NotImplementedError_):
        route(method, bucket, key, query, False)


@pytest.mark.parametrize(
    ("method", "bucket", "key"), [("PUT", None, None), ("POST", "b", None), ("PATCH", "b", "k")]
)
def test_wrong_methods(method: str, bucket: str | None, key: str | None) -> None:
    with pytest.raises(MethodNotAllowed):
        route(method, bucket, key, {}, False)


@pytest.mark.parametrize(
    ("host", "path", "domain", "expected"),
    [
        ("127.0.0.1:9000", "/", None, (None, None)),
        ("127.0.0.1:9000", "/bkt", None, ("bkt", None)),
        ("127.0.0.1:9000", "/bkt/", None, ("bkt", None)),
        ("127.0.0.1:9000", "/bkt/a/b%20c?x=1", None, ("bkt", "a/b c")),
        ("127.0.0.1:9000", "/bkt//double", None, ("bkt", "/double")),
        ("bkt.s3.example.com:9000", "/a%2Fb", "s3.example.com", ("bkt", "a/b")),
        ("bkt.s3.example.com", "/", "s3.example.com", ("bkt", None)),
        ("s3.example.com", "/bkt/k", "s3.example.com", ("bkt", "k")),
    ],
)
def test_split_target(
    host: str, path: str, domain: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert split_target(host, path, domain) == expected
