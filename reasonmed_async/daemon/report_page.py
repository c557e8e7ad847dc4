"""The run report, live from the daemon: ``GET /report`` behind a login form.

A browser cannot send the API's bearer header, so ``POST /login`` takes the token from a form
and sets a session cookie (HttpOnly: scripts cannot read it; SameSite=Strict: other sites cannot
send it). The cookie holds an HMAC of the token, never the token itself. ``/report`` also takes
the bearer header, for scripts. Without a configured token (loopback only) it is open like the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from html import escape

from aiohttp import web

from reasonmed_async.reports.report.command import build
from reasonmed_async.reports.report.figures import MissingPlotting
from reasonmed_async.store.checkpoint import CheckpointStore

COOKIE = "reasonmed_report"
PATHS = frozenset({"/report", "/login"})  # authenticated here, not by the API's bearer check

_FORM = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>reasonmed: sign in</title></head>
<body><h1>ReasonMed run report</h1>{message}<form method="post" action="/login">
<label>API token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Show the report</button></form></body></html>"""


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"reasonmed report session", hashlib.sha256).hexdigest()


class ReportPage:
    def __init__(self, store: CheckpointStore, token: str | None) -> None:
        self._store = store
        self._token = token
        self._drawing = asyncio.Lock()  # pyplot is not thread-safe: one report drawn at a time

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/report", self._report)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)

    def _signed_in(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        cookie = request.cookies.get(COOKIE, "")
        bearer = request.headers.get("Authorization", "")
        return (hmac.compare_digest(cookie.encode(), session_value(self._token).encode())
                or hmac.compare_digest(bearer.encode(), f"Bearer {self._token}".encode()))

    async def _login_form(self, _: web.Request, message: str = "", status: int = 200) -> web.Response:
        return web.Response(text=_FORM.format(message=message), content_type="text/html", status=status,
                            headers={"Cache-Control": "no-store"})

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = str(form.get("token", ""))
        if self._token is None or hmac.compare_digest(given.encode(), self._token.encode()):
            response = web.HTTPSeeOther("/report")
            if self._token is not None:
                response.set_cookie(COOKIE, session_value(self._token), httponly=True, samesite="Strict",
                                    path="/")
            return response
        return await self._login_form(request, "<p role=alert>Wrong token.</p>", status=401)

    async def _report(self, request: web.Request) -> web.StreamResponse:
        if not self._signed_in(request):
            raise web.HTTPSeeOther("/login")
        async with self._drawing:
            try:
                _, page, _ = await build(self._store)
            except MissingPlotting as exc:
                return web.Response(text=f"<p>{escape(str(exc))}</p>", content_type="text/html", status=503)
        return web.Response(text=page, content_type="text/html",
                            headers={"Cache-Control": "no-store", "Content-Security-Policy":
                                     "default-src 'none'; img-src data:; style-src 'unsafe-inline'"})
