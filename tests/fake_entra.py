"""A fake Microsoft Entra ID token source on 127.0.0.1: the App Service managed-identity endpoint.

azure-identity's own ``ManagedIdentityCredential`` (the one ``DefaultAzureCredential`` reaches when
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set) asks ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01
&resource=...`` with ``X-IDENTITY-HEADER``; this answers with a fresh opaque token each time, valid for
``lifetime_s``.  ``check(token)`` is what the fake Azure endpoint asks (``FakeLLMServer.bearer_check``):
None for a token it issued that has not expired (``grace_s`` of clock skew allowed, as Azure does),
else why it is refused.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from aiohttp import web

HEADER = "fake-identity-header-value"


@dataclass(frozen=True)
class Issued:
    token: str
    expires_on: int
    resource: str


class FakeEntra:
    def __init__(self, *, lifetime_s: int = 3600, grace_s: float = 30.0) -> None:
        self.lifetime_s = lifetime_s
        self.grace_s = grace_s
        self.issued: list[Issued] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeEntra:
        app = web.Application()
        app.router.add_get("/msi/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/msi/token"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def env(self) -> dict[str, str]:
        """What a process needs to find this endpoint as its managed identity."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": HEADER}

    async def _token(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("X-IDENTITY-HEADER") != HEADER:
            return web.json_response({"error": "unauthorized"}, status=401)
        resource = request.query.get("resource", "")
        issued = Issued(f"entra-{secrets.token_urlsafe(24)}", int(time.time()) + self.lifetime_s, resource)
        self.issued.append(issued)
        return web.json_response({"access_token": issued.token, "expires_on": str(issued.expires_on),
                                  "resource": resource, "token_type": "Bearer"})

    def check(self, token: str | None) -> str | None:
        found = next((i for i in self.issued if i.token == token), None)
        if found is None:
            return "Access token is missing or invalid."
        if found.resource != "https://cognitiveservices.azure.com":
            return f"Token audience {found.resource} is not Cognitive Services."
        if time.time() > found.expires_on + self.grace_s:
            return "Access token has expired."
        return None
