"""A counting proxy on 127.0.0.1 in front of a real server: the server's own request count.

Every POST to ``/v1/chat/completions`` is forwarded as it came and logged with the phase of the
test it arrived in, the status the server answered, a digest of its body and, for refusals,
the server's error text.  It runs its own event loop in a thread, so a pipeline in a
subprocess (killed with SIGKILL, resumed) talks to it like to any server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass(frozen=True)
class Seen:
    phase: str
    status: int
    digest: str
    error: str = ""
    preflight: bool = False  # the one-token probe run/resume send before they start


@dataclass
class CountingProxy:
    upstream: str  # e.g. http://127.0.0.1:8080
    phase: str = "start"
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, threading.Event]] = []
        self._in_flight = 0
        self._idle = threading.Event()
        self._idle.set()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="counting-proxy", daemon=True)

    # ------------------------------------------------------------------ control (test thread)

    def start(self) -> CountingProxy:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the counting proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answered(self, phase: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.status == 200 and not s.preflight and (phase is None or s.phase == phase)]

    def probes(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.preflight]

    def refused(self, phase: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.status != 200 and not s.preflight and (phase is None or s.phase == phase)]

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight: a killed client's requests still run to the end on the server."""
        return self._idle.wait(timeout_s)

    def event_after(self, answered: int) -> threading.Event:
        """An event set once the server has answered ``answered`` requests (200) in all."""
        event = threading.Event()
        with self._lock:
            if len([s for s in self.seen if s.status == 200 and not s.preflight]) >= answered:
                event.set()
            else:
                self._waiters.append((answered, event))
        return event

    # ------------------------------------------------------------------ the proxy (its own loop)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._forward)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        phase = self.phase
        with self._lock:
            self._in_flight += 1
            self._idle.clear()
        try:
            return await self._relay(request, body, phase)
        finally:
            with self._lock:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

    async def _relay(self, request: web.Request, body: bytes, phase: str) -> web.StreamResponse:
        async with self._session.request(request.method, f"{self.upstream}{request.path_qs}", data=body,
                                         headers={"Content-Type": request.headers.get("Content-Type",
                                                                                      "application/json")}) as up:
            payload, status = await up.read(), up.status
            content_type = up.headers.get("Content-Type", "application/json")
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            try:
                probe = json.loads(body).get("max_tokens") == 1
            except ValueError:
                probe = False
            seen = Seen(phase, status, hashlib.sha256(body).hexdigest(),
                        "" if status == 200 else payload.decode("utf-8", "replace")[:500], probe)
            with self._lock:
                self.seen.append(seen)
                count = len([s for s in self.seen if s.status == 200 and not s.preflight])
                for wanted, event in [w for w in self._waiters if w[0] <= count]:
                    event.set()
                    self._waiters.remove((wanted, event))
        return web.Response(body=payload, status=status, content_type=content_type.split(";")[0])
