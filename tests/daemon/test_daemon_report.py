"""The daemon serves the run report live behind a login form that sets an HttpOnly, SameSite cookie."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from daemon_support import TOKEN, daemon

pytestmark = pytest.mark.slow


async def test_report_route_needs_the_login_cookie(tmp_path: Path) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of an IP address (127.0.0.1), as a browser does
    async with daemon(tmp_path) as url, aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{url}/report", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        async with http.get(f"{url}/login") as r:
            assert r.status == 200 and 'name="token"' in await r.text()
        async with http.post(f"{url}/login", data={"token": "wrong"}, allow_redirects=False) as r:
            assert r.status == 401 and "Set-Cookie" not in r.headers
        async with http.post(f"{url}/login", data={"token": TOKEN}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/report"
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        async with http.get(f"{url}/report") as r:  # the session's cookie jar sends it
            assert r.status == 200
            page = await r.text()
            assert "img-src data:" in r.headers["Content-Security-Policy"]
        assert "ReasonMed run report" in page and len(re.findall(r'data-figure="', page)) >= 5
        async with http.get(f"{url}/v1/status") as r:  # the cookie opens the page, not the API
            assert r.status == 401
        async with aiohttp.ClientSession() as fresh:  # scripts: the bearer header opens it too
            async with fresh.get(f"{url}/report", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 200
