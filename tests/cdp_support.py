"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client; no Playwright).

``open_page`` starts Debian's ``chromium`` with an empty profile and every background fetch off, its
host resolver mapping every name but 127.0.0.1 to nothing (a page that tries the network fails to,
and the request is still logged), opens one tab, and yields a ``Page`` that records every request the tab makes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--remote-debugging-port=0", "--remote-allow-origins=*",
         "--window-size=1200,900")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.requests: list[str] = []

    async def pump(self) -> None:
        async for msg in self._ws:
            data = json.loads(msg.data)
            if "id" in data:
                self._replies.pop(data["id"]).set_result(data)
                continue
            if data["method"] == "Network.requestWillBeSent":
                self.requests.append(data["params"]["request"]["url"])
            self._events.setdefault(data["method"], asyncio.Queue()).put_nowait(data["params"])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        i = next(self._ids)
        self._replies[i] = asyncio.get_running_loop().create_future()
        await self._ws.send_json({"id": i, "method": method, "params": params})
        reply = await asyncio.wait_for(self._replies[i], 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def event(self, method: str) -> dict[str, Any]:
        return await asyncio.wait_for(self._events.setdefault(method, asyncio.Queue()).get(), 30)

    async def goto(self, url: str) -> None:
        self._events.pop("Page.loadEventFired", None)  # a load of the page before is not this one
        await self.send("Page.navigate", url=url)
        await self.event("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        import base64

        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def open_page(profile: Path) -> AsyncIterator[Page]:
    exe = chromium()
    assert exe, "chromium is not installed (make test-report installs it)"
    profile.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(exe, *FLAGS, f"--user-data-dir={profile}", "about:blank",
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        browser_url = None
        async with asyncio.timeout(60):
            while browser_url is None:
                line = await proc.stderr.readline()
                if not line:
                    raise RuntimeError("chromium exited before its DevTools endpoint was up")
                if m := _LISTENING.search(line):
                    browser_url = m.group(1).decode()
        drain = asyncio.create_task(proc.stderr.read())  # keep its pipe from filling
        port = browser_url.split("/")[2]
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(browser_url, max_msg_size=0) as browser:
                await browser.send_json({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}})
                target = (await browser.receive_json())["result"]["targetId"]
                async with http.ws_connect(f"ws://{port}/devtools/page/{target}", max_msg_size=0) as ws:
                    page = Page(ws)
                    async with asyncio.TaskGroup() as tg:
                        pump = tg.create_task(page.pump())
                        await page.send("Page.enable")
                        await page.send("Network.enable")
                        await page.send("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                                        deviceScaleFactor=1, mobile=False)
                        yield page
                        pump.cancel()
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
