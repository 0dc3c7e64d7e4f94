"""Issue #10, acceptance 1: the fault matrix. Each fault against each operation, with the
outcome it must have written next to it.

An outcome is one of: ``RECOVERS`` (the operation succeeds and its result reads back
right, the fault hidden from the client), ``s3_error(code)`` (the operation fails with
exactly that S3 error code, and what was stored before is intact), ``BROKEN_BODY`` (a
GET whose body stops short of its Content-Length, so the client's read fails: a download
cut mid-stream cannot be hidden, but it must never pass for a whole object) or
``DROPPED`` (the gateway closes the connection without an answer: nothing acknowledged,
the client retries). Where two outcomes are allowed, both are failures a client sees, and
which one comes depends on timing the test does not control (say, whether the first chunk
of a body was sent before the fault hit).

Whatever the outcome, after every case the fault is removed and every write the matrix
ever had acknowledged must read back with its checksum; the module ends with gc and a
full scrub, which must find nothing missing, corrupt or orphaned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ResponseStreamingError
from urllib3.exceptions import ProtocolError

from tests.faultproxy import Fault, Rule
from tests.faults.conftest import Rig, check_consistent, md5, wait_for
from tests.lifecycle.conftest import run_lifecycle
from tests.servers import random_name

KIB = 1024
MIB = 1024 * KIB
BODY_BYTES = 256 * KIB
PART_BYTES = 5 * MIB
# Past the lifecycle rule's 30 days (the minimum AWS allows for STANDARD_IA).
TRANSITION_DAYS = 31


@dataclass(frozen=True)
class Outcome:
    kind: str
    code: str = ""

    def __str__(self) -> str:
        return f"{self.kind}({self.code})" if self.code else self.kind


RECOVERS = Outcome("recovers")
BROKEN_BODY = Outcome("broken body")
DROPPED = Outcome("connection dropped")


def s3_error(code: str) -> Outcome:
    return Outcome("S3 error", code)


UNAVAILABLE = s3_error("ServiceUnavailable")
# A read failing mid-object: 503 if no byte was sent yet (the gateway holds a chunk back
# until the next one arrives, the last until the checksum matched), else a broken body.
READ_FAILS = frozenset({UNAVAILABLE, BROKEN_BODY})
# A streamed upload to the store reset mid-body: 503, or (a defect, see README) the
# gateway's handler is cancelled and it closes the client's connection unanswered.
WRITE_FAILS = frozenset({UNAVAILABLE, DROPPED})
Expected = Outcome | frozenset[Outcome]


# -- faults ---------------------------------------------------------------------------------

# The object and part requests an operation makes (not gc's sweeps and deletions).
_OBJECT_CALLS = ("PUT", "GET", "POST")


def _once(fault: Fault) -> Callable[[Rig], object]:
    return lambda rig: rig.backend.add(
        Rule(fault, _OBJECT_CALLS, path_contains=f"/{rig.mo_bucket}/b", times=1)
    )


FAULTS: dict[str, Callable[[Rig], object]] = {
    "link cut": lambda rig: rig.link.cut(),
    "link reset mid-upload": lambda rig: rig.link.reset_after(64 * KIB, "up"),
    "link reset mid-download": lambda rig: rig.link.reset_after(64 * KIB, "down"),
    "link delay 300 ms": lambda rig: rig.link.delay(0.3),
    "link throttle 4 MiB/s": lambda rig: rig.link.throttle(4 * MIB),
    "link corrupts uploads": lambda rig: rig.link.corrupt("up"),
    "link corrupts downloads": lambda rig: rig.link.corrupt("down"),
    "backend 500 once": _once(Fault.ERROR_500),
    "backend 500": lambda rig: rig.backend.add(Rule(Fault.ERROR_500)),
    "backend 503 SlowDown once": _once(Fault.SLOW_DOWN),
    "backend 503 SlowDown": lambda rig: rig.backend.add(Rule(Fault.SLOW_DOWN)),
    "backend hangs": lambda rig: rig.backend.add(Rule(Fault.HANG)),
    "backend partial body": lambda rig: rig.backend.add(Rule(Fault.PARTIAL_BODY)),
    "backend wrong ETag": lambda rig: rig.backend.add(Rule(Fault.WRONG_ETAG)),
}


# -- operations -----------------------------------------------------------------------------


class Operation:
    """``prepare`` runs before the fault, ``act`` under it; the checks after it is gone."""

    name = ""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.key = random_name("k-")
        self.touched: set[tuple[str, str]] = set()

    def prepare(self) -> None:
        pass

    def act(self) -> None:
        raise NotImplementedError

    def check_done(self) -> None:
        """After success: the operation's effect is there, and right."""

    def check_undone(self) -> None:
        """After a failure: what was stored before is intact."""

    # helpers

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.rig.s3.put_object(Bucket=bucket, Key=key, Body=body)
        self.acknowledge(bucket, key, md5(body))

    def acknowledge(self, bucket: str, key: str, digest: str | None) -> None:
        self.rig.acknowledged[(bucket, key)] = digest
        self.touched.add((bucket, key))

    def read(self, bucket: str, key: str) -> str | None:
        return read_md5(self.rig.s3, bucket, key)


def read_md5(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return md5(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise


class Put(Operation):
    name = "PUT"

    def prepare(self) -> None:
        self.bucket = self.rig.buckets["remote"]
        self.old, self.new = os.urandom(BODY_BYTES), os.urandom(BODY_BYTES)
        self.put(self.bucket, self.key, self.old)

    def act(self) -> None:
        self.put(self.bucket, self.key, self.new)

    def check_done(self) -> None:
        assert self.read(self.bucket, self.key) == md5(self.new)

    def check_undone(self) -> None:
        assert self.read(self.bucket, self.key) == md5(self.old)


class Multipart(Put):
    name = "multipart"

    def act(self) -> None:
        s3 = self.rig.s3
        self.new = os.urandom(PART_BYTES) + os.urandom(100 * KIB)
        upload = s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        parts = []
        try:
            for number, start in enumerate((0, PART_BYTES), start=1):
                body = self.new[start : start + PART_BYTES]
                etag = s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=upload,
                                      PartNumber=number, Body=body)["ETag"]  # fmt: skip
                parts.append({"PartNumber": number, "ETag": etag})
            s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload,
                                         MultipartUpload={"Parts": parts})  # fmt: skip
        except ClientError:
            self.rig.restore()
            s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload)
            raise
        self.acknowledge(self.bucket, self.key, md5(self.new))


class Get(Put):
    name = "GET"

    def act(self) -> None:
        got = self.rig.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        assert md5(got) == md5(self.old), "a GET returned wrong bytes"

    def check_done(self) -> None:
        self.check_undone()


class Copy(Put):
    """From the remote bucket (read over the faulty link) into the ``both`` bucket (local
    and mo at once, W=1): a failed read fails the copy, a failed mo write only queues it."""

    name = "copy"

    def prepare(self) -> None:
        self.old, self.new = os.urandom(BODY_BYTES), os.urandom(BODY_BYTES)
        self.bucket, self.source = self.rig.buckets["both"], random_name("src-")
        self.put(self.bucket, self.key, self.old)
        self.put(self.rig.buckets["remote"], self.source, self.new)

    def act(self) -> None:
        source = {"Bucket": self.rig.buckets["remote"], "Key": self.source}
        self.rig.s3.copy_object(Bucket=self.bucket, Key=self.key, CopySource=source)
        self.acknowledge(self.bucket, self.key, md5(self.new))


class Delete(Put):
    name = "delete"

    def act(self) -> None:
        self.rig.s3.delete_object(Bucket=self.bucket, Key=self.key)
        self.acknowledge(self.bucket, self.key, None)

    def check_done(self) -> None:
        assert self.read(self.bucket, self.key) is None


class Replication(Operation):
    """A PUT to the replicated bucket is stored on local at once and copied to mo by the
    replication worker: the fault hits the copy, which must arrive intact once it is gone."""

    name = "replication"

    def act(self) -> None:
        self.bucket = self.rig.buckets["replicated"]
        self.body = os.urandom(BODY_BYTES)
        self.put(self.bucket, self.key, self.body)
        time_for_the_worker_to_try()

    def check_done(self) -> None:
        keys = mo_keys_of(self.rig, self.bucket, self.key, replicas=2)
        assert [md5(self.rig.mo_bytes(k)) for k in keys] == [md5(self.body)]
        assert self.read(self.bucket, self.key) == md5(self.body)


class Transition(Operation):
    """A lifecycle transition to STANDARD_IA copies the version from local to mo (warm
    tier) through the replication queue, then switches its placement."""

    name = "transition"

    def prepare(self) -> None:
        self.bucket = self.rig.buckets["local"]
        self.key = f"tr/{self.key}"
        self.body = os.urandom(BODY_BYTES)
        self.put(self.bucket, self.key, self.body)

    def act(self) -> None:
        assert run_lifecycle(self.rig.gateway, TRANSITION_DAYS)["transitions_started"] >= 1
        time_for_the_worker_to_try()
        # Under the fault the object stays readable from its old copy.
        assert self.read(self.bucket, self.key) == md5(self.body)

    def check_done(self) -> None:
        deadline_passes = 100
        while run_lifecycle(self.rig.gateway, TRANSITION_DAYS)["transitions_waiting"]:
            deadline_passes -= 1
            assert deadline_passes, "the transition never finished"
            time_for_the_worker_to_try()
        keys = mo_keys_of(self.rig, self.bucket, self.key, replicas=1)
        assert [md5(self.rig.mo_bytes(k)) for k in keys] == [md5(self.body)]
        head = self.rig.s3.head_object(Bucket=self.bucket, Key=self.key)
        assert head["StorageClass"] == "STANDARD_IA"
        assert self.read(self.bucket, self.key) == md5(self.body)


def time_for_the_worker_to_try() -> None:
    time.sleep(0.4)


def mo_keys_of(rig: Rig, bucket: str, key: str, replicas: int) -> list[str]:
    """Once the queue drained: the backend keys of the version's verified mo placement."""

    def placements() -> list[dict[str, Any]]:
        return rig.ledger.fetch(
            "SELECT p.backend, p.backend_key, p.verified_at IS NOT NULL AS verified"
            " FROM placements p JOIN object_versions v ON v.id = p.version_pk"
            " JOIN buckets b ON b.id = v.bucket_id"
            " WHERE b.name = $1 AND v.key = $2 AND v.is_latest AND p.state = 'ok'",
            bucket,
            key,
        )

    wait_for(
        lambda: len(placements()) == replicas and all(p["verified"] for p in placements()),
        f"{replicas} verified placements of {key}",
    )
    return [p["backend_key"] for p in placements() if p["backend"] == "mo"]


OPERATIONS: dict[str, type[Operation]] = {
    op.name: op for op in (Put, Multipart, Get, Copy, Delete, Replication, Transition)
}

# -- the matrix: every case's expected outcome -------------------------------------------------

Row = dict[str, Expected]
_BACKGROUND: Row = {"replication": RECOVERS, "transition": RECOVERS}
_METADATA_ONLY: Row = {"delete": RECOVERS}
_TRANSPARENT: Row = dict.fromkeys(OPERATIONS, RECOVERS)
_UNAVAILABLE: Row = {"PUT": UNAVAILABLE, "multipart": UNAVAILABLE, "GET": UNAVAILABLE,
                     "copy": UNAVAILABLE} | _METADATA_ONLY | _BACKGROUND  # fmt: skip

MATRIX: dict[str, dict[str, Expected]] = {
    "link cut": _UNAVAILABLE,
    "link reset mid-upload": _UNAVAILABLE
    | {"GET": RECOVERS, "PUT": WRITE_FAILS, "multipart": WRITE_FAILS, "copy": RECOVERS},
    "link reset mid-download": _TRANSPARENT | {"GET": READ_FAILS, "copy": UNAVAILABLE},
    "link delay 300 ms": _TRANSPARENT,
    "link throttle 4 MiB/s": _TRANSPARENT,
    # The store's ETag is checked against the MD5 of the bytes sent; reads against the
    # checksum recorded at write time.
    "link corrupts uploads": _UNAVAILABLE | {"GET": RECOVERS, "copy": RECOVERS},
    "link corrupts downloads": _TRANSPARENT | {"GET": READ_FAILS, "copy": UNAVAILABLE},
    # The S3 driver retries a failed read; a streamed body cannot be sent again, so a
    # write fails at once (the client retries it) and a queued copy is retried later.
    # A copy's first call to the store is its read.
    "backend 500 once": _UNAVAILABLE | {"GET": RECOVERS, "copy": RECOVERS},
    "backend 500": _UNAVAILABLE,
    "backend 503 SlowDown once": _UNAVAILABLE | {"GET": RECOVERS, "copy": RECOVERS},
    "backend 503 SlowDown": _UNAVAILABLE,
    # Reads give up after the link's first-byte timeout, writes after the driver's
    # read_timeout_s per attempt (5 s here, 30 s by default; 3 attempts).
    "backend hangs": _UNAVAILABLE,
    "backend partial body": _TRANSPARENT | {"GET": READ_FAILS, "copy": UNAVAILABLE},
    "backend wrong ETag": _UNAVAILABLE | {"GET": RECOVERS, "copy": RECOVERS},
}

CASES = [(fault, op) for fault, row in MATRIX.items() for op in row]


def _observe(operation: Operation) -> Outcome:
    try:
        operation.act()
    except ClientError as exc:
        return s3_error(str(exc.response["Error"]["Code"]))
    except (ResponseStreamingError, ProtocolError):
        return BROKEN_BODY
    except ConnectionClosedError:
        return DROPPED
    return RECOVERS


def _allowed(expected: Expected) -> frozenset[Outcome]:
    return expected if isinstance(expected, frozenset) else frozenset({expected})


@pytest.fixture
def clean(rig: Rig) -> Iterator[Rig]:
    """A quiet rig: no fault, nothing queued from an earlier case."""
    rig.restore()
    wait_for(lambda: rig.ledger.queue_length() == 0, "the replication queue to drain")
    yield rig
    rig.restore()


@pytest.mark.parametrize(("fault", "op"), CASES, ids=[f"{f}-{o}" for f, o in CASES])
def test_fault_against_operation(clean: Rig, fault: str, op: str) -> None:
    operation = OPERATIONS[op](clean)
    operation.prepare()
    FAULTS[fault](clean)

    observed = _observe(operation)

    clean.restore()
    allowed = _allowed(MATRIX[fault][op])
    assert observed in allowed, f"{observed}, expected {' or '.join(map(str, allowed))}"
    if observed == RECOVERS:
        operation.check_done()
    else:
        operation.check_undone()
    check_acknowledged(clean, operation.touched)


def check_acknowledged(rig: Rig, targets: Iterable[tuple[str, str]]) -> None:
    """Every acknowledged write among ``targets`` reads back with its checksum."""
    wrong = {}
    for target in targets:
        try:
            found = read_md5(rig.s3, *target)
        except (ClientError, ResponseStreamingError, ProtocolError) as exc:
            found = repr(exc)
        if found != rig.acknowledged[target]:
            wrong[target] = (rig.acknowledged[target], found)
    assert not wrong, f"acknowledged writes lost or wrong (acknowledged, found): {wrong}"


def test_after_the_matrix_nothing_is_lost_and_nothing_is_left_over(rig: Rig) -> None:
    """Runs last: every write the matrix acknowledged, and the backends against the ledger."""
    rig.restore()
    check_acknowledged(rig, rig.acknowledged)
    check_consistent(rig)
