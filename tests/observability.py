"""A known S3 workload, and what it must move in a Prometheus scrape of the gateway."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

SIZES = [1_000, 20_000, 300_000, 5, 70_000]
READ = 3  # the first objects, read back with GetObject
HEADED = 2  # the last objects, asked for with HeadObject


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def access_lines(log_text: str) -> list[dict[str, Any]]:
    """The JSON lines of the access log among the other lines of a gateway's output."""
    return [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]


def access_lines_of(
    log_path: Path, request_ids: set[str], timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """The access log's lines once every one of ``request_ids`` is in it: a line is
    written after its response went out, so the client can be a moment ahead of it."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = access_lines(log_path.read_text())
        if request_ids <= {line["request_id"] for line in lines} or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"])


@dataclass
class Workload:
    """What ``run`` did: bytes each way and every response's request id and status."""

    bucket: str
    error_body_bytes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def read_bytes(self) -> int:
        return sum(SIZES[:READ])

    def run(self, s3: Any, endpoint: str) -> None:
        for n, size in enumerate(SIZES):
            put = s3.put_object(Bucket=self.bucket, Key=f"k{n}", Body=b"x" * size)
            self.statuses[request_id(put)] = 200
        for n in range(READ):
            got = s3.get_object(Bucket=self.bucket, Key=f"k{n}")
            assert len(got["Body"].read()) == SIZES[n]
            self.statuses[request_id(got)] = 200
        with pytest.raises(ClientError) as missing:
            s3.get_object(Bucket=self.bucket, Key="missing")
        headers = missing.value.response["ResponseMetadata"]["HTTPHeaders"]
        self.error_body_bytes = int(headers["content-length"])
        self.statuses[request_id(missing.value.response)] = 404
        for n in range(len(SIZES) - HEADED, len(SIZES)):
            self.statuses[request_id(s3.head_object(Bucket=self.bucket, Key=f"k{n}"))] = 200
        self.statuses[_unroutable(endpoint)] = 405


def _unroutable(endpoint: str) -> str:
    """POST to the service root: no S3 operation, answered before any authentication."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(endpoint + "/", b"", method="POST"))
    refused.value.close()
    assert refused.value.code == 405
    return str(refused.value.headers["x-amz-request-id"])


def refused_upload(s3_with_wrong_secret: Any, bucket: str) -> None:
    """A PUT that announces its body with ``Expect: 100-continue`` and is refused first."""
    with pytest.raises(ClientError) as refused:
        s3_with_wrong_secret.put_object(Bucket=bucket, Key="refused", Body=io.BytesIO(b"x" * 10))
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def check_s3_counters(before: Samples, after: Samples, workload: Workload) -> None:
    def s3(name: str, **labels: str) -> float:
        return moved(before, after, f"skybridge_s3_{name}", **labels)

    expected = {("PutObject", "200"): 5, ("GetObject", "200"): READ, ("GetObject", "404"): 1,
                ("HeadObject", "200"): HEADED, ("Unknown", "405"): 1}  # fmt: skip
    for (operation, status), count in expected.items():
        assert s3("requests_total", operation=operation, status=status) == count
    counts = {"PutObject": 5, "GetObject": READ + 1, "HeadObject": HEADED, "Unknown": 1}
    for operation, count in counts.items():
        assert s3("request_duration_seconds_count", operation=operation) == count
        assert s3("time_to_first_byte_seconds_count", operation=operation) == count
        assert s3("request_duration_seconds_bucket", operation=operation, le="+Inf") == count
    assert s3("received_bytes_total", operation="PutObject") == sum(SIZES)
    assert s3("received_bytes_total", operation="GetObject") == 0
    sent = workload.read_bytes + workload.error_body_bytes
    assert s3("sent_bytes_total", operation="GetObject") == sent
    assert s3("sent_bytes_total", operation="HeadObject") == 0


def check_link_counters(before: Samples, after: Samples, link: str, backend: str) -> None:
    def link_moved(name: str, **labels: str) -> float:
        return moved(before, after, f"skybridge_link_{name}", link=link, backend=backend, **labels)

    assert link_moved("requests_total", operation="put") == len(SIZES)
    assert link_moved("requests_total", operation="get") == READ
    assert link_moved("request_duration_seconds_count", operation="put") == len(SIZES)
    assert link_moved("errors_total", operation="put") == 0
    assert link_moved("bytes_total", direction="out") == sum(SIZES)
    assert link_moved("bytes_total", direction="in") == sum(SIZES[:READ])
    assert value(after, "skybridge_link_circuit_state", link=link, backend=backend) == 0
    assert value(after, "skybridge_link_latency_ewma_seconds", link=link, backend=backend) > 0
    assert value(after, "skybridge_backend_reachable", backend=backend) == 1


def check_workers(after: Samples, names: list[str]) -> None:
    for name in names:
        assert value(after, "skybridge_worker_passes_total", worker=name) >= 1
        assert value(after, "skybridge_worker_failures_total", worker=name) == 0
        assert value(after, "skybridge_worker_paused", worker=name) == 0
        since = after.get(("skybridge_worker_seconds_since_success", frozenset({("worker", name)})))
        assert since is not None
        assert since >= 0
