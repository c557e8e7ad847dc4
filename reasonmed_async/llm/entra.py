"""Microsoft Entra ID tokens for Azure OpenAI (``[backends.NAME] auth = "entra"``): the optional ``[azure]`` extra.

``azure.identity.aio.DefaultAzureCredential`` finds the identity the way Azure's own tools do
(environment service principal, workload identity, managed identity, Azure CLI, ...);
``get_bearer_token_provider`` turns it into the async callable that ``AsyncAzureOpenAI`` takes as
``azure_ad_token_provider`` and awaits before every request.  The credential caches its token and
fetches a new one once it is near (or past) its expiry, so a long run never sends an expired
token and never rebuilds its client.  Every token handed out is registered with the log redactor
first; none is ever logged.  A 401 under Entra counts toward the circuit as any 401 does (the
credential, not this layer, decides when a token is renewed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reasonmed_async.config import ConfigError
from reasonmed_async.logs.setup import register_secret

ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
_KEEP = 8  # the tokens remembered for masking error texts (a run renews about hourly)


class EntraTokens:
    """The token provider one Azure backend's client asks before every request."""

    def __init__(self, credential: Any, fetch: Callable[[], Awaitable[str]]) -> None:
        self._credential = credential
        self._fetch = fetch
        self.known: tuple[str, ...] = ()
        self.issued = 0  # distinct tokens handed out so far

    async def provider(self) -> str:
        token = await self._fetch()
        if token not in self.known:
            register_secret(token)  # before any request can carry it, or an error echo it
            self.known = (*self.known, token)[-_KEEP:]
            self.issued += 1
        return token

    async def aclose(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()


def open_entra_tokens(backend: str, scope: str = ENTRA_SCOPE, credential: Any = None) -> EntraTokens:
    """Tokens from ``credential`` (an async ``TokenCredential``; ``DefaultAzureCredential`` when None).
    ``ConfigError`` (exit 2) naming the extra when azure-identity is not installed."""
    try:
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
    except ImportError:
        raise ConfigError(f"[backends.{backend}] auth = \"entra\" needs the azure extra:"
                          " pip install 'reasonmed-async[azure]' (azure-identity)") from None
    credential = DefaultAzureCredential() if credential is None else credential
    return EntraTokens(credential, get_bearer_token_provider(credential, scope))
