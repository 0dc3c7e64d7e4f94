"""The baseline for a localfs backend: a trivial aiohttp server storing files directly.

PUT /bucket/key writes a temp file and renames it into place, GET streams the file with
1 MiB preads: what the localfs driver does, minus everything else the gateway does (no
auth, no metadata, no hashing). Run it as ``python -m benchmarks.fileserver --root D --port P``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import uvloop
from aiohttp import web

READ_CHUNK_BYTES = 1024 * 1024
ROOT = web.AppKey("root", Path)


async def put(request: web.Request) -> web.Response:
    root = request.app[ROOT]
    target = root / request.match_info["bucket"] / request.match_info["key"]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".put-")
    with os.fdopen(fd, "wb") as file:
        async for chunk in request.content.iter_any():
            file.write(chunk)
    os.replace(tmp, target)
    return web.Response()


async def get(request: web.Request) -> web.StreamResponse:
    path = request.app[ROOT] / request.match_info["bucket"] / request.match_info["key"]
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    try:
        response = web.StreamResponse()
        response.content_length = os.fstat(fd).st_size
        await response.prepare(request)
        position = 0
        while chunk := os.pread(fd, READ_CHUNK_BYTES, position):
            position += len(chunk)
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        os.close(fd)


async def create_bucket(request: web.Request) -> web.Response:
    (request.app[ROOT] / request.match_info["bucket"]).mkdir(exist_ok=True)
    return web.Response()


def make_app(root: Path) -> web.Application:
    app = web.Application(client_max_size=2**40)
    app[ROOT] = root
    app.router.add_put("/{bucket}", create_bucket)
    app.router.add_put("/{bucket}/{key:.+}", put)
    app.router.add_get("/{bucket}/{key:.+}", get)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    serve_on_loopback(make_app(args.root), args.port)


def serve_on_loopback(app: web.Application, port: int) -> None:
    """Serve ``app`` on 127.0.0.1:``port`` with uvloop and no access log until killed."""
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, access_log=None, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    main()
