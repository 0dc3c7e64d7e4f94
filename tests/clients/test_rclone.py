"""rclone as an S3 client of the gateway: sync a tree up and down, then prove nothing changed.

rclone keeps each file's modification time in ``x-amz-meta-mtime`` and, for multipart
uploads, its MD5 in ``x-amz-meta-md5chksum``: a second sync that transfers nothing proves
the gateway gives user metadata back exactly as stored.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.certs import TestCertificates
from tests.clients.conftest import MIB, FileTree, assert_same_tree
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.servers import random_name, venv_binary

RCLONE_TIMEOUT_S = 120.0
# Fail fast: by default rclone retries a failing sync three times over, for minutes.
FAIL_FAST_FLAGS = ("--retries", "1", "--low-level-retries", "2")
PART_BYTES = 5 * MIB
# Multipart from 5 MiB on, in 5 MiB parts, so the tree's big file takes the multipart path.
MULTIPART_FLAGS = ("--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M")


def run_rclone(gateway: GatewayProcess, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``rclone ARGS`` with a remote named ``sb`` configured by environment variables only."""
    config = home / "rclone.conf"
    config.touch()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "RCLONE_CONFIG_SB_TYPE": "s3",
        "RCLONE_CONFIG_SB_PROVIDER": "Other",
        "RCLONE_CONFIG_SB_ENDPOINT": gateway.endpoint,
        "RCLONE_CONFIG_SB_ACCESS_KEY_ID": gateway.access_key,
        "RCLONE_CONFIG_SB_SECRET_ACCESS_KEY": gateway.secret_key,
        "RCLONE_CONFIG_SB_REGION": "us-east-1",
    }
    command = [venv_binary("rclone"), "--config", str(config), *FAIL_FAST_FLAGS, *args]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RCLONE_TIMEOUT_S, check=False
    )


def rclone(gateway: GatewayProcess, home: Path, *args: str) -> str:
    """``run_rclone`` that must succeed; its log (rclone logs to standard error)."""
    done = run_rclone(gateway, home, *args)
    assert done.returncode == 0, f"rclone {args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _copied(log: str) -> list[str]:
    return re.findall(r"INFO\s+: (.+): Copied \(", log)


@pytest.fixture
def rclone_bucket(local_gateway: GatewayProcess) -> str:
    name = random_name()
    client_for(local_gateway).create_bucket(Bucket=name)
    return name


def test_sync_tree_up_down_and_again(
    local_gateway: GatewayProcess, rclone_bucket: str, file_tree: FileTree, tmp_path: Path
) -> None:
    remote = f"sb:{rclone_bucket}/prefix"
    sync = ("sync", "-v", "--stats-one-line", *MULTIPART_FLAGS)

    up = rclone(local_gateway, tmp_path, *sync, str(file_tree.root), remote)
    assert len(_copied(up)) == file_tree.count

    down_dir = tmp_path / "down"
    down = rclone(local_gateway, tmp_path, *sync, remote, str(down_dir))
    assert len(_copied(down)) == file_tree.count
    assert_same_tree(file_tree.root, down_dir)

    again = rclone(local_gateway, tmp_path, *sync, str(file_tree.root), remote)
    assert _copied(again) == []
    check = rclone(local_gateway, tmp_path, "check", str(file_tree.root), remote)
    assert f"{file_tree.count} matching files" in check

    s3: Any = client_for(local_gateway)
    big_key = f"prefix/{file_tree.big.relative_to(file_tree.root).as_posix()}"
    head = s3.head_object(Bucket=rclone_bucket, Key=big_key)
    parts = -(-file_tree.big.stat().st_size // PART_BYTES)
    assert head["ETag"].strip('"').endswith(f"-{parts}")
    assert "mtime" in head["Metadata"]


def test_sync_deletes_what_the_source_lost(
    local_gateway: GatewayProcess, rclone_bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    for rel in ["keep.txt", "gone.txt", "d/gone too.txt", "d/keep.txt"]:
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(rel)
    remote = f"sb:{rclone_bucket}/p"
    rclone(local_gateway, tmp_path, "sync", str(source), remote)
    (source / "gone.txt").unlink()
    (source / "d" / "gone too.txt").unlink()

    out = rclone(local_gateway, tmp_path, "sync", "-v", str(source), remote)

    assert sorted(re.findall(r"INFO\s+: (.+): Deleted", out)) == ["d/gone too.txt", "gone.txt"]
    listing = client_for(local_gateway).list_objects_v2(Bucket=rclone_bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["p/d/keep.txt", "p/keep.txt"]


def test_check_notices_a_changed_object(
    local_gateway: GatewayProcess, rclone_bucket: str, tmp_path: Path
) -> None:
    """The negative of the check above: rclone check does see a difference."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_bytes(b"first")
    remote = f"sb:{rclone_bucket}/p"
    rclone(local_gateway, tmp_path, "sync", str(source), remote)

    client_for(local_gateway).put_object(Bucket=rclone_bucket, Key="p/a.txt", Body=b"other")

    done = run_rclone(local_gateway, tmp_path, "check", str(source), remote)
    assert done.returncode != 0
    assert "1 differences found" in done.stderr


def test_lsf_and_cat(local_gateway: GatewayProcess, rclone_bucket: str, tmp_path: Path) -> None:
    s3: Any = client_for(local_gateway)
    for key in ["top.txt", "dir/one.txt", "dir/sub/two.txt"]:
        s3.put_object(Bucket=rclone_bucket, Key=key, Body=key.encode())

    listing = rclone(local_gateway, tmp_path, "lsf", "-R", f"sb:{rclone_bucket}")
    assert sorted(listing.split()) == [
        "dir/",
        "dir/one.txt",
        "dir/sub/",
        "dir/sub/two.txt",
        "top.txt",
    ]
    cat = run_rclone(local_gateway, tmp_path, "cat", f"sb:{rclone_bucket}/dir/sub/two.txt")
    assert cat.stdout == "dir/sub/two.txt"


def test_copy_over_tls_with_ca_cert(
    tls_local_gateway: GatewayProcess, certificates: TestCertificates, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(11 * MIB))
    (source / "small.txt").write_bytes(b"small")
    bucket = random_name()
    tls = ("--ca-cert", str(certificates.ca_file))

    rclone(tls_local_gateway, tmp_path, *tls, "mkdir", f"sb:{bucket}")
    up = rclone(
        tls_local_gateway,
        tmp_path,
        *tls,
        "copy",
        "-v",
        *MULTIPART_FLAGS,
        str(source),
        f"sb:{bucket}",
    )
    assert sorted(_copied(up)) == ["big.bin", "small.txt"]
    down = tmp_path / "down"
    rclone(tls_local_gateway, tmp_path, *tls, "copy", f"sb:{bucket}", str(down))

    assert_same_tree(source, down)
    untrusted = run_rclone(tls_local_gateway, tmp_path, "lsf", f"sb:{bucket}")
    assert untrusted.returncode != 0
    assert "certificate signed by unknown authority" in untrusted.stderr
