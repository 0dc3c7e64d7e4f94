"""ListObjects, ListObjectsV2 and their pagination, against every backend kind."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def _put_all(s3: Any, bucket: str, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())


def _keys(page: dict[str, Any]) -> list[str]:
    return [o["Key"] for o in page.get("Contents", [])]


def _prefixes(page: dict[str, Any]) -> list[str]:
    return [p["Prefix"] for p in page.get("CommonPrefixes", [])]


NESTED = ["a/b/c/1", "a/b/c/2", "a/b/d", "a/e", "a/f/g", "b", "c/x"]


def test_empty_bucket(s3: Any, bucket: str) -> None:
    page = s3.list_objects_v2(Bucket=bucket)
    assert page["KeyCount"] == 0
    assert page["IsTruncated"] is False
    assert "Contents" not in page
    assert page["Name"] == bucket


def test_prefix_and_delimiter(s3: Any, bucket: str) -> None:
    _put_all(s3, bucket, NESTED)
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert _keys(top) == ["b"]
    assert _prefixes(top) == ["a/", "c/"]
    assert top["KeyCount"] == 3
    assert top["Delimiter"] == "/"
    inner = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert _keys(inner) == ["a/e"]
    assert _prefixes(inner) == ["a/b/", "a/f/"]
    assert inner["Prefix"] == "a/"
    deep = s3.list_objects_v2(Bucket=bucket, Prefix="a/b/", Delimiter="/")
    assert _keys(deep) == ["a/b/d"]
    assert _prefixes(deep) == ["a/b/c/"]
    flat = s3.list_objects_v2(Bucket=bucket, Prefix="a/b")
    assert _keys(flat) == ["a/b/c/1", "a/b/c/2", "a/b/d"]
    assert flat["KeyCount"] == 3
    assert s3.list_objects_v2(Bucket=bucket, Prefix="zzz").get("Contents") is None


def test_non_slash_delimiter(s3: Any, bucket: str) -> None:
    _put_all(s3, bucket, ["x-1-a", "x-1-b", "x-2", "y"])
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="-")
    assert _prefixes(page) == ["x-"]
    assert _keys(page) == ["y"]
    page = s3.list_objects_v2(Bucket=bucket, Prefix="x-", Delimiter="-")
    assert _prefixes(page) == ["x-1-"]
    assert _keys(page) == ["x-2"]


def test_max_keys_and_manual_continuation(s3: Any, bucket: str) -> None:
    keys = [f"k{i:02d}" for i in range(7)]
    _put_all(s3, bucket, keys)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": 3}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        assert page["MaxKeys"] == 3
        assert page["KeyCount"] == len(_keys(page))
        seen += _keys(page)
        if token:
            assert page["ContinuationToken"] == token
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        token = page["NextContinuationToken"]
    assert seen == keys
    assert pages == 3


def test_paginator(s3: Any, bucket: str) -> None:
    keys = [f"p/{i:03d}" for i in range(11)] + ["q"]
    _put_all(s3, bucket, keys)
    paginator = s3.get_paginator("list_objects_v2")
    pages = list(paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 4}))
    assert [len(_keys(p)) for p in pages] == [4, 4, 4]
    assert [k for p in pages for k in _keys(p)] == keys
    limited = paginator.paginate(Bucket=bucket, Prefix="p/", PaginationConfig={"MaxItems": 5})
    assert [k for p in limited for k in _keys(p)] == keys[:5]


def test_start_after(s3: Any, bucket: str) -> None:
    _put_all(s3, bucket, ["a", "b", "c", "d"])
    page = s3.list_objects_v2(Bucket=bucket, StartAfter="b")
    assert _keys(page) == ["c", "d"]
    assert page["StartAfter"] == "b"
    assert _keys(s3.list_objects_v2(Bucket=bucket, StartAfter="bb")) == ["c", "d"]
    assert _keys(s3.list_objects_v2(Bucket=bucket, StartAfter="z")) == []


def test_encoding_type_url(s3: Any, bucket: str) -> None:
    keys = ["dir one/a b", "dir one/é+x", "plain"]
    _put_all(s3, bucket, keys)
    # boto3 asks for url encoding itself and decodes the answer.
    page = s3.list_objects_v2(Bucket=bucket)
    assert _keys(page) == keys
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert _prefixes(page) == ["dir one/"]
    assert _keys(page) == ["plain"]
    assert _keys(s3.list_objects(Bucket=bucket, Prefix="dir one/")) == keys[:2]
    # Asked for explicitly, the encoding is the caller's to undo: boto3 leaves it.
    page = s3.list_objects_v2(Bucket=bucket, Delimiter="/", EncodingType="url")
    assert _prefixes(page) == ["dir%20one/"]
    v1 = s3.list_objects(Bucket=bucket, Prefix="dir one/", EncodingType="url")
    assert _keys(v1) == ["dir%20one/a%20b", "dir%20one/%C3%A9%2Bx"]
    assert v1["Prefix"] == "dir%20one/"


def test_encoding_type_url_on_the_wire(s3: Any, bucket: str) -> None:
    _put_all(s3, bucket, ["a b/é"])
    raw: list[bytes] = []

    def capture(http_response: Any, **_: Any) -> None:
        raw.append(http_response.content)

    s3.meta.events.register("after-call.s3.ListObjectsV2", capture)
    s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    assert b"<Key>a%20b/%C3%A9</Key>" in raw[0]
    assert b"<EncodingType>url</EncodingType>" in raw[0]


def test_max_keys_zero(s3: Any, bucket: str) -> None:
    _put_all(s3, bucket, ["a"])
    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert page["KeyCount"] == 0
    assert "Contents" not in page
    assert page["MaxKeys"] == 0
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=0)
    assert "Contents" not in v1


def test_utf8_byte_order(s3: Any, bucket: str) -> None:
    keys = ["a", "B", "é", "~", "Z", "0", "a/", "a-", "\u00ff", "\u4e00", "😀", "\uff5e"]
    _put_all(s3, bucket, keys)
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert _keys(s3.list_objects_v2(Bucket=bucket)) == expected
    paged = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    assert [k for p in paged for k in _keys(p)] == expected


def test_delimiter_pagination_across_prefix(s3: Any, bucket: str) -> None:
    keys = ["a0", "b/1", "b/2", "b/3", "b/4", "c", "d/1", "d/2", "e"]
    _put_all(s3, bucket, keys)
    for page_size in (1, 2, 3):
        pages = list(
            s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": page_size}
            )
        )
        entries = [e for p in pages for e in _keys(p) + _prefixes(p)]
        assert sorted(entries) == ["a0", "b/", "c", "d/", "e"], page_size
        assert all(p["KeyCount"] <= page_size for p in pages)
        v1_pages = list(
            s3.get_paginator("list_objects").paginate(
                Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": page_size}
            )
        )
        v1_entries = [e for p in v1_pages for e in _keys(p) + _prefixes(p)]
        assert sorted(v1_entries) == ["a0", "b/", "c", "d/", "e"], page_size


def test_list_objects_v1_marker(s3: Any, bucket: str) -> None:
    keys = [f"k{i}" for i in range(5)]
    _put_all(s3, bucket, keys)
    first = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert _keys(first) == ["k0", "k1"]
    assert first["IsTruncated"] is True
    # Without a delimiter S3 omits NextMarker: the last key is the next marker.
    assert "NextMarker" not in first
    second = s3.list_objects(Bucket=bucket, MaxKeys=2, Marker="k1")
    assert _keys(second) == ["k2", "k3"]
    assert second["Marker"] == "k1"
    with_delimiter = s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/")
    assert with_delimiter["NextMarker"] == "k1"
    owner = first["Contents"][0]["Owner"]
    assert owner["ID"]
    paged = s3.get_paginator("list_objects").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    )
    assert [k for p in paged for k in _keys(p)] == keys


def test_list_entry_fields(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"12345")
    entry = s3.list_objects_v2(Bucket=bucket)["Contents"][0]
    assert entry["ETag"] == put["ETag"]
    assert entry["Size"] == 5
    assert entry["StorageClass"] == "STANDARD"
    head = s3.head_object(Bucket=bucket, Key="k")
    assert entry["LastModified"] == head["LastModified"]
    assert "Owner" not in entry
    with_owner = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]
    assert with_owner["Owner"]["ID"]


def test_invalid_encoding_type(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket=bucket, EncodingType="base64")
    assert info.value.response["Error"]["Code"] == "InvalidArgument"


def test_continuation_token_wins_over_start_after(s3: Any, bucket: str) -> None:
    _put_all(s3, bucket, ["a", "b", "c", "d", "e"])
    first = s3.list_objects_v2(Bucket=bucket, StartAfter="a", MaxKeys=2)
    assert _keys(first) == ["b", "c"]
    second = s3.list_objects_v2(
        Bucket=bucket, StartAfter="a", MaxKeys=2, ContinuationToken=first["NextContinuationToken"]
    )
    assert _keys(second) == ["d", "e"]
    assert second["IsTruncated"] is False


def test_list_versions_encoding(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="sp ace/é", Body=b"x")
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["Key"] for v in versions] == ["sp ace/é"]
    listed = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["sp ace/"]
