"""An embedded PostgreSQL for the zero-configuration start.

``pgserver`` (a PostgreSQL shipped on PyPI) is preferred because it needs no system
packages; the Debian binaries are the fallback.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import socket
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _pgserver(directory: Path) -> Iterator[str]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; irrelevant to a server's data.
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(str(directory), cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def _debian(directory: Path, bindir: Path) -> Iterator[str]:
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    if not (directory / "PG_VERSION").exists():
        subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", str(directory), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
    port = _free_port()
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
    pg_ctl = str(bindir / "pg_ctl")
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(directory), "-l", str(directory / "log"), "-w",
                      "-o", options, "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(directory), "-m", "fast", "stop"]),
            check=False, capture_output=True,
        )  # fmt: skip


def _debian_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def embedded_database(data_dir: Path) -> Iterator[str]:
    """Start (or restart) the embedded database under ``data_dir``; yield its DSN."""
    directory = data_dir / "postgres"
    try:
        import pgserver  # noqa: F401
    except ImportError:
        bindir = _debian_bindir()
        if bindir is None:
            raise RuntimeError("no embedded PostgreSQL: install pgserver or postgresql") from None
        with _debian(directory, bindir) as dsn:
            yield dsn
        return
    with _pgserver(directory) as dsn:
        yield dsn
