"""The basic round trip, against every backend kind."""

from __future__ import annotations

import os
from typing import Any


def test_put_get_round_trip(s3: Any, bucket: str) -> None:
    body = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="dir/obj", Body=body)
    got = s3.get_object(Bucket=bucket, Key="dir/obj")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    headers = got["ResponseMetadata"]["HTTPHeaders"]
    assert headers["server"] == "Skybridge"
    assert headers["x-amz-request-id"]
