"""The ceiling: the least an aiohttp+uvloop S3 server can do per request.

PUT /bucket/key reads the body and throws it away, keeping only its size; GET serves that
many bytes cut from one fixed buffer. No auth, no disk, no metadata: whatever a Python
gateway on this stack does, it cannot beat this. Run it as
``python -m benchmarks.ceiling --port P``.
"""

from __future__ import annotations

import argparse

from aiohttp import web

from benchmarks.fileserver import serve_on_loopback

CHUNK_BYTES = 1024 * 1024
SIZES = web.AppKey("sizes", dict[str, int])
_FIXED = bytes(range(256)) * (CHUNK_BYTES // 256)


async def put(request: web.Request) -> web.Response:
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
    request.app[SIZES][request.path] = size
    return web.Response(headers={"ETag": '"ceiling"'})


async def get(request: web.Request) -> web.StreamResponse:
    size = request.app[SIZES].get(request.path)
    if size is None:
        raise web.HTTPNotFound()
    response = web.StreamResponse()
    response.content_length = size
    await response.prepare(request)
    remaining = size
    while remaining > 0:
        piece = _FIXED if remaining >= CHUNK_BYTES else _FIXED[:remaining]
        remaining -= len(piece)
        await response.write(piece)
    await response.write_eof()
    return response


async def create_bucket(request: web.Request) -> web.Response:
    return web.Response()


def make_app() -> web.Application:
    app = web.Application(client_max_size=2**40)
    app[SIZES] = {}
    app.router.add_put("/{bucket}", create_bucket)
    app.router.add_put("/{bucket}/{key:.+}", put)
    app.router.add_get("/{bucket}/{key:.+}", get)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_on_loopback(make_app(), args.port)


if __name__ == "__main__":
    main()
