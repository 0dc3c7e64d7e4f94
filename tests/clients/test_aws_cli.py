"""The aws CLI (``aws s3`` and ``aws s3api``) against the gateway, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.certs import TestCertificates
from tests.clients.conftest import MIB, FileTree, assert_same_tree
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.servers import random_name, venv_binary

AWS_TIMEOUT_S = 300.0
# aws s3 uses 8 MiB parts by default.
DEFAULT_PART_BYTES = 8 * MIB


def run_aws(
    gateway: GatewayProcess, home: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``aws ARGS`` against the gateway with credentials from the environment only."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": gateway.access_key,
        "AWS_SECRET_ACCESS_KEY": gateway.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        # No retries: on loopback a failed request is a gateway bug, not a network blip.
        "AWS_MAX_ATTEMPTS": "1",
    }
    command = [venv_binary("aws"), "--endpoint-url", gateway.endpoint, *args]
    return subprocess.run(
        command, env=env, input=stdin, capture_output=True, timeout=AWS_TIMEOUT_S, check=False
    )


def aws(gateway: GatewayProcess, home: Path, *args: str, stdin: bytes | None = None) -> str:
    """``run_aws`` that must succeed; its standard output."""
    done = run_aws(gateway, home, *args, stdin=stdin)
    assert done.returncode == 0, f"aws {args} failed:\n{done.stdout!r}\n{done.stderr!r}"
    return done.stdout.decode()


@pytest.fixture
def cli_bucket(local_gateway: GatewayProcess) -> str:
    name = random_name()
    client_for(local_gateway).create_bucket(Bucket=name)
    return name


def _lines(output: str, prefix: str) -> list[str]:
    # The CLI pads lines with spaces to overwrite its progress line.
    return [line.strip() for line in output.splitlines() if line.startswith(prefix)]


def test_sync_tree_up_down_and_again(
    local_gateway: GatewayProcess, cli_bucket: str, file_tree: FileTree, tmp_path: Path
) -> None:
    target = f"s3://{cli_bucket}/prefix"

    up = aws(local_gateway, tmp_path, "s3", "sync", str(file_tree.root), target, "--no-progress")
    assert len(_lines(up, "upload:")) == file_tree.count

    down_dir = tmp_path / "down"
    down = aws(local_gateway, tmp_path, "s3", "sync", target, str(down_dir), "--no-progress")
    assert len(_lines(down, "download:")) == file_tree.count
    assert_same_tree(file_tree.root, down_dir)

    again = aws(local_gateway, tmp_path, "s3", "sync", str(file_tree.root), target)
    assert _lines(again, "upload:") == []

    big_key = f"prefix/{file_tree.big.relative_to(file_tree.root).as_posix()}"
    head = json.loads(
        aws(
            local_gateway,
            tmp_path,
            "s3api",
            "head-object",
            "--bucket",
            cli_bucket,
            "--key",
            big_key,
        )
    )
    parts = -(-file_tree.big.stat().st_size // DEFAULT_PART_BYTES)
    assert head["ContentLength"] == file_tree.big.stat().st_size
    assert head["ETag"].strip('"').endswith(f"-{parts}")


def test_sync_delete_removes_what_the_source_lost(
    local_gateway: GatewayProcess, cli_bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    for rel in ["keep.txt", "gone.txt", "d/gone too.txt", "d/keep.txt"]:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(rel)
    target = f"s3://{cli_bucket}/p"
    aws(local_gateway, tmp_path, "s3", "sync", str(source), target)
    (source / "gone.txt").unlink()
    (source / "d" / "gone too.txt").unlink()

    out = aws(local_gateway, tmp_path, "s3", "sync", "--delete", str(source), target)

    assert sorted(_lines(out, "delete:")) == [
        f"delete: {target}/d/gone too.txt",
        f"delete: {target}/gone.txt",
    ]
    listing = client_for(local_gateway).list_objects_v2(Bucket=cli_bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["p/d/keep.txt", "p/keep.txt"]


def test_cp_up_and_down(local_gateway: GatewayProcess, cli_bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(200_000))

    out = aws(local_gateway, tmp_path, "s3", "cp", str(source), f"s3://{cli_bucket}/a/b.bin")
    assert "upload:" in out
    copy = tmp_path / "copy.bin"
    aws(local_gateway, tmp_path, "s3", "cp", f"s3://{cli_bucket}/a/b.bin", str(copy))

    assert copy.read_bytes() == source.read_bytes()


def test_cp_from_stdin_streams_multipart(
    local_gateway: GatewayProcess, cli_bucket: str, tmp_path: Path
) -> None:
    """``aws s3 cp - s3://...`` does not know the size, so it streams parts from a pipe."""
    body = os.urandom(10 * MIB)
    aws(local_gateway, tmp_path, "s3", "cp", "-", f"s3://{cli_bucket}/piped", stdin=body)

    s3: Any = client_for(local_gateway)
    assert s3.get_object(Bucket=cli_bucket, Key="piped")["Body"].read() == body


def test_mb_ls_buckets_prefixes_and_recursive(
    local_gateway: GatewayProcess, tmp_path: Path
) -> None:
    cli_bucket = random_name()
    assert f"make_bucket: {cli_bucket}" in aws(
        local_gateway, tmp_path, "s3", "mb", f"s3://{cli_bucket}"
    )
    s3: Any = client_for(local_gateway)
    for key in ["top.txt", "dir/one.txt", "dir/sub/two.txt"]:
        s3.put_object(Bucket=cli_bucket, Key=key, Body=b"12345")

    buckets = aws(local_gateway, tmp_path, "s3", "ls")
    assert cli_bucket in buckets.split()
    shallow = aws(local_gateway, tmp_path, "s3", "ls", f"s3://{cli_bucket}/")
    assert "PRE dir/" in shallow
    assert [line.split()[-1] for line in shallow.splitlines() if "PRE" not in line] == ["top.txt"]
    deep = aws(local_gateway, tmp_path, "s3", "ls", "--recursive", f"s3://{cli_bucket}")
    assert [line.split()[-1] for line in deep.splitlines()] == [
        "dir/one.txt",
        "dir/sub/two.txt",
        "top.txt",
    ]
    assert all(line.split()[2] == "5" for line in deep.splitlines())


def test_s3api_head_object(local_gateway: GatewayProcess, cli_bucket: str, tmp_path: Path) -> None:
    s3: Any = client_for(local_gateway)
    s3.put_object(Bucket=cli_bucket, Key="h", Body=b"hello", Metadata={"owner": "cli"})

    head = json.loads(
        aws(
            local_gateway,
            tmp_path,
            "s3api",
            "head-object",
            "--bucket",
            cli_bucket,
            "--key",
            "h",
            "--checksum-mode",
            "ENABLED",
        )
    )
    assert head["ContentLength"] == 5
    assert head["ETag"] == '"5d41402abc4b2a76b9719d911017c592"'  # MD5 of "hello"
    assert head["Metadata"] == {"owner": "cli"}
    assert head["ChecksumCRC32"] == "NhCmhg=="  # CRC32 of "hello", as boto3 sent it


def test_s3api_head_missing_object_fails(
    local_gateway: GatewayProcess, cli_bucket: str, tmp_path: Path
) -> None:
    args = ("s3api", "head-object", "--bucket", cli_bucket, "--key", "no")
    done = run_aws(local_gateway, tmp_path, *args)
    assert done.returncode != 0
    assert b"(404)" in done.stderr


def test_cp_over_tls_with_ca_bundle(
    tls_local_gateway: GatewayProcess, certificates: TestCertificates, tmp_path: Path
) -> None:
    """Over https the CLI sends aws-chunked parts with CRC32 trailers; the CA is verified."""
    bucket = random_name()
    tls = ("--ca-bundle", str(certificates.ca_file))
    aws(tls_local_gateway, tmp_path, *tls, "s3", "mb", f"s3://{bucket}")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(12 * MIB))

    aws(tls_local_gateway, tmp_path, *tls, "s3", "cp", str(source), f"s3://{bucket}/big")
    copy = tmp_path / "copy.bin"
    aws(tls_local_gateway, tmp_path, *tls, "s3", "cp", f"s3://{bucket}/big", str(copy))

    assert copy.read_bytes() == source.read_bytes()
    head = json.loads(
        aws(
            tls_local_gateway,
            tmp_path,
            *tls,
            "s3api",
            "head-object",
            "--bucket",
            bucket,
            "--key",
            "big",
            "--checksum-mode",
            "ENABLED",
        )
    )
    assert head["ChecksumCRC32"].endswith("-2")  # two 8 MiB parts, each with its CRC32
    untrusted = run_aws(tls_local_gateway, tmp_path, "s3", "ls", f"s3://{bucket}")
    assert untrusted.returncode != 0
    assert b"CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
