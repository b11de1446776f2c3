"""The web UI: the built Vue app (`frontend/` → `src/chatstream/web/`) served at `/`.

One catch-all GET route, registered after every API router, so it only sees what nothing else
answered. Its path convertor never matches `/api…`, `/healthz` or `/readyz`: those keep their
own answers (404 envelope, 405) exactly as without the UI. Files under `assets/` carry a content
hash in their name and are cached for a year; `index.html` is revalidated on every load, and
any other path that is not a file gets it too (client-side routes such as `/c/<id>`).

Text assets are gzipped here, once per file version, so compression never touches the SSE
routes (they are not served by this router).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
IMMUTABLE = "public, max-age=31536000, immutable"
COMPRESSIBLE = {".js", ".css", ".html", ".svg", ".json", ".txt", ".map", ".mjs", ".xml"}

MISSING_BUILD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chatstream</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<h1>chatstream</h1>
<p>The server is running, but the web UI has not been built.</p>
<p>Run <code>make run</code> (builds it, then starts the server) or <code>make web</code>
(builds it only), then reload this page. The API is at <code>/api/v1</code>.</p>
</body></html>
"""


class _WebPath(Convertor[str]):
    """Any path except the API's and the health checks' (those are never shadowed)."""

    regex = r"(?!(?:api|healthz|readyz)(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("chatstream_web", _WebPath())

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class _Cached:
    key: tuple[int, int]  # mtime_ns, size: a new build invalidates the entry
    body: bytes
    gzipped: bytes | None
    etag: str


_cache: dict[Path, _Cached] = {}


def _read(path: Path, key: tuple[int, int]) -> _Cached:
    body = path.read_bytes()
    gzipped = None
    if path.suffix in COMPRESSIBLE and len(body) > 512:
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
    entry = _Cached(key, body, gzipped, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    _cache[path] = entry
    return entry


def _load(path: Path) -> _Cached:
    """The file's bytes (and gzipped bytes), read and compressed once per version of the file."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    hit = _cache.get(path)
    if hit is not None and hit.key == key:
        return hit
    return _read(path, key)


def _resolve(web_dir: Path, path: str) -> Path | None:
    """The file under web_dir that path names, or None (never anything outside web_dir)."""
    if not path or "\x00" in path or "\\" in path:
        return None
    root = web_dir.resolve()
    candidate = (root / path).resolve()
    if candidate != root and root not in candidate.parents:
        return None
    return candidate if candidate.is_file() else None


def _send(request: Request, file: Path, cache_control: str) -> Response:
    entry = _load(file)
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
        media_type += "; charset=utf-8"
    headers: dict[str, Any] = {"Cache-Control": cache_control, "ETag": entry.etag}
    if entry.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if entry.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = entry.body
    if entry.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = entry.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=media_type, headers=headers)


@router.api_route(
    "/{path:chatstream_web}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
def web(request: Request, path: str) -> Response:
    """A file of the build, or index.html for the app's own routes.

    A plain `def`: FastAPI runs it in its thread pool, so reading and gzipping a file (once per
    version of it) never blocks the event loop that streams answers.
    """
    if request.method not in ("GET", "HEAD"):
        raise HTTPException(404)  # what the path answered before the UI existed
    web_dir = WEB_DIR
    index = web_dir / "index.html"
    file = _resolve(web_dir, path)
    if file is not None:
        return _send(request, file, IMMUTABLE if path.startswith("assets/") else "no-cache")
    last = path.rsplit("/", 1)[-1]
    if path.startswith("assets/") or "." in last:
        raise HTTPException(404)  # a missing file, not a page of the app
    if not index.is_file():
        return HTMLResponse(MISSING_BUILD, status_code=503, headers={"Cache-Control": "no-store"})
    return _send(request, index, "no-cache")
