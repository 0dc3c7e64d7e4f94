"""Bucket versioning: versions, delete markers, suspension and version listing."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _enable(s3: Any, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def _versions(s3: Any, bucket: str, **kwargs: Any) -> tuple[list[Any], list[Any]]:
    listed = s3.list_object_versions(Bucket=bucket, **kwargs)
    return listed.get("Versions", []), listed.get("DeleteMarkers", [])


def test_get_put_versioning(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    _enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    _enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as info:
        _enable(s3, bucket, "Bogus")
    assert _error(info) == ("IllegalVersioningConfigurationException", 400)


def test_unversioned_objects_have_no_version_id(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "VersionId" not in put
    versions, _ = _versions(s3, bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions] == [("k", "null", True)]


def test_versions_by_id(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    old = s3.get_object(Bucket=bucket, Key="k", VersionId=v1)
    assert old["Body"].read() == b"one"
    assert old["VersionId"] == v1
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["ContentLength"] == 3
    versions, markers = _versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v2, True), (v1, False)]
    assert markers == []
    deleted = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert deleted["VersionId"] == v2
    assert "DeleteMarker" not in deleted
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    versions, _ = _versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId=v2)
    assert _error(info) == ("NoSuchVersion", 404)


def test_delete_marker(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k")
    assert _error(info) == ("NoSuchKey", 404)
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=bucket, Key="k")
    assert _error(info) == ("404", 404)
    # Asking for the marker itself by id is MethodNotAllowed.
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId=marker)
    assert _error(info) == ("MethodNotAllowed", 405)
    headers = info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["last-modified"].endswith(" GMT")
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    versions, markers = _versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, False)]
    assert [(m["Key"], m["VersionId"], m["IsLatest"]) for m in markers] == [("k", marker, True)]
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True
    assert removed["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    versions, markers = _versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]
    assert markers == []


def test_delete_objects_in_versioned_bucket(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    v1 = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["VersionId"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a", "VersionId": v1}, {"Key": "b"}]}
    )
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["a"]["VersionId"] == v1
    assert by_key["b"]["DeleteMarker"] is True
    assert by_key["b"]["DeleteMarkerVersionId"]
    versions, markers = _versions(s3, bucket)
    assert [v["Key"] for v in versions] == ["b"]
    assert [m["Key"] for m in markers] == ["b"]


def test_suspended_writes_null_version(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"versioned")["VersionId"]
    _enable(s3, bucket, "Suspended")
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"null one")
    assert first.get("VersionId") in (None, "null")
    s3.put_object(Bucket=bucket, Key="k", Body=b"null two")
    versions, _ = _versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"], v["Size"]) for v in versions] == [
        ("null", True, 8),
        (kept, False, 9),
    ]
    got = s3.get_object(Bucket=bucket, Key="k", VersionId="null")
    assert got["Body"].read() == b"null two"
    # A delete in a suspended bucket puts a null delete marker over the null version.
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    versions, markers = _versions(s3, bucket)
    assert [v["VersionId"] for v in versions] == [kept]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [("null", True)]


def test_null_version_survives_enabling(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")
    _enable(s3, bucket)
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"after")["VersionId"]
    versions, _ = _versions(s3, bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(new, True), ("null", False)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before"


def test_list_versions_pagination(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    expected: set[tuple[str, str]] = set()
    for key in ("a", "b", "c"):
        for i in range(3):
            put = s3.put_object(Bucket=bucket, Key=key, Body=f"{key}{i}".encode())
            expected.add((key, put["VersionId"]))
    marker = s3.delete_object(Bucket=bucket, Key="b")["VersionId"]
    expected.add(("b", marker))
    seen: list[tuple[str, str]] = []
    kwargs: dict[str, Any] = {}
    pages = 0
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=1, **kwargs)
        pages += 1
        entries = page.get("Versions", []) + page.get("DeleteMarkers", [])
        assert len(entries) == 1
        seen += [(e["Key"], e["VersionId"]) for e in entries]
        if not page["IsTruncated"]:
            break
        kwargs = {
            "KeyMarker": page["NextKeyMarker"],
            "VersionIdMarker": page["NextVersionIdMarker"],
        }
    assert len(seen) == len(set(seen)) == 10
    assert set(seen) == expected
    assert pages == 10
    paginated = s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    via_paginator = [
        (e["Key"], e["VersionId"])
        for p in paginated
        for e in p.get("Versions", []) + p.get("DeleteMarkers", [])
    ]
    assert sorted(via_paginator) == sorted(seen)


def test_list_versions_newest_first(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=bytes([i]))["VersionId"] for i in range(4)]
    versions, _ = _versions(s3, bucket)
    assert [v["VersionId"] for v in versions] == ids[::-1]
    assert [v["IsLatest"] for v in versions] == [True, False, False, False]


def test_list_versions_prefix_delimiter(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    for key in ("d/1", "d/2", "e"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    listed = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["d/"]
    assert [v["Key"] for v in listed["Versions"]] == ["e"]
    listed = s3.list_object_versions(Bucket=bucket, Prefix="d/")
    assert [v["Key"] for v in listed["Versions"]] == ["d/1", "d/2"]


def test_invalid_version_id(s3: Any, bucket: str) -> None:
    _enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert _error(info)[1] in (400, 404)
