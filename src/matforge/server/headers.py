"""Security headers on every answer of the server: API, OPTIMADE, web UI, docs and errors.

The web UI loads its script, plotly.js and its style sheet from the server itself, so scripts
are limited to ``'self'``: an injected ``<script>`` or ``onclick=`` never runs. Styles also
allow inline ones (plotly.js, Swagger UI and ReDoc set them), which cannot run code. The
Swagger UI page (``/docs``) starts itself with one inline script that FastAPI writes; the
SHA-256 of each inline script of that server-made page is added to its policy, so it needs
no ``'unsafe-inline'`` either.
"""

from __future__ import annotations

import base64
import hashlib
import re

#: The Content-Security-Policy of every answer (directives joined with "; ").
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

#: Pages the server writes itself from fixed templates (no user input) whose inline scripts
#: are allowed by hash: the Swagger UI page and its OAuth2 redirect.
HASHED_PAGES = frozenset({"/docs", "/docs/oauth2-redirect"})
#: a hashed page is read whole to hash it; the Swagger UI page is ~1 kB
_MAX_HASHED_BYTES = 256 * 1024
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def content_security_policy(inline_scripts: list[bytes] = ()) -> str:
    """The policy, with ``inline_scripts`` (their exact text) allowed by SHA-256."""
    directives = dict(POLICY)
    if inline_scripts:
        hashes = " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'"
            for s in inline_scripts
        )
        directives["script-src"] = f"{directives['script-src']} {hashes}"
    return "; ".join(f"{k} {v}" for k, v in directives.items())


DEFAULT_CSP = content_security_policy()


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` and a Content-Security-Policy to every HTTP
    answer that does not set them itself. Registered last, so that it wraps every other
    middleware and the answers of error handlers too."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("path") in HASHED_PAGES:
            return await self._hashed(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = _added(message.get("headers") or [], DEFAULT_CSP)
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _hashed(self, scope, receive, send):
        """Hold a server-made page until its body is complete, then allow its inline scripts."""
        start: dict | None = None
        body = bytearray()
        passing = False  # too large or not HTML: sent on as it comes, with the default policy

        async def buffered(message):
            nonlocal start, passing
            if passing:
                return await send(message)
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                return await send(message)
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if more and len(body) <= _MAX_HASHED_BYTES:
                return
            headers = start.get("headers") or []
            if more:  # too large to hash: the default policy, the rest streams on
                passing = True
                csp = DEFAULT_CSP
            else:
                csp = content_security_policy(_INLINE_SCRIPT.findall(bytes(body)))
            await send({**start, "headers": _added(headers, csp)})
            await send({"type": "http.response.body", "body": bytes(body), "more_body": more})

        await self.app(scope, receive, buffered)


def _added(headers: list, csp: str) -> list:
    """``headers`` (ASGI pairs of bytes) with the security headers it lacks."""
    present = {name.lower() for name, _ in headers}
    out = list(headers)
    for name, value in (("Content-Security-Policy", csp), *HEADERS.items()):
        if name.lower().encode() not in present:
            out.append((name.lower().encode(), value.encode()))
    return out
