"""The web console: one HTML page, one script and one style sheet on the admin listener.

The page holds no data and no secret. Its script asks the operator for an admin token, keeps
it in the tab's ``sessionStorage`` and fetches ``/admin/v1/...`` with it, so the console can
show nothing that the token could not read through the API itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

ASSETS_PREFIX = "/console"
# Only this page's own script and style sheet run, and it talks to its own origin only: a
# compromised backend name or tenant name in an API answer cannot load or send anything.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Asset:
    file: str
    content_type: str
    cache_control: str


# The HTML is never stored; the script and style sheet are revalidated on every load, so an
# upgraded gateway never runs an old script against a new API.
ASSETS = {
    "/": Asset("index.html", "text/html", "no-store"),
    ASSETS_PREFIX + "/console.js": Asset("console.js", "text/javascript", "no-cache"),
    ASSETS_PREFIX + "/console.css": Asset("console.css", "text/css", "no-cache"),
}


def _serve(asset: Asset) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    body = resources.files(__name__).joinpath(asset.file).read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": asset.cache_control}

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body, content_type=asset.content_type, charset="utf-8", headers=headers
        )

    return serve


def add_routes(app: web.Application) -> None:
    """Serve the console at ``/`` and its script and style sheet under ``/console/``."""
    for path, asset in ASSETS.items():
        app.router.add_get(path, _serve(asset))
