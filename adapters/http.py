"""What the HTTP adapters share: one client per adapter, OAuth2 client-credentials tokens per
token endpoint, and turning transport errors and HTTP statuses into :class:`DeliveryFailed`
through the policy table (``gateway/delivery_policy.py``).

Secrets never sit in the directory: a KE entry names the environment variable or file that
holds its client secret (``client_secret_env`` / ``client_secret_file``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.delivery import DeliveryFailed
from gateway.delivery_policy import Cause, http_cause

#: how long before its expiry a token is fetched again
_TOKEN_MARGIN_SECONDS = 60.0


def setting(settings: Mapping[str, Any], key: str) -> str:
    """A required adapter setting, or MISCONFIGURED (not retried: an operator must fix it)."""
    value = settings.get(key)
    if not isinstance(value, str) or not value:
        raise DeliveryFailed(Cause.MISCONFIGURED, f"adapter setting {key!r} is missing")
    return value


def timeout_of(settings: Mapping[str, Any], default: float = 10.0) -> float:
    value = settings.get("timeout_seconds", default)
    return float(value) if isinstance(value, int | float) and value > 0 else default


def transport_failure(e: httpx.HTTPError, what: str) -> DeliveryFailed:
    """A failure below HTTP: no answer, so nobody knows whether it arrived; worth another try."""
    cause = Cause.TIMEOUT if isinstance(e, httpx.TimeoutException) else Cause.CONNECTION
    return DeliveryFailed(cause, f"{what}: {type(e).__name__}")


def status_failure(response: httpx.Response, what: str, *, code: str = "X99") -> DeliveryFailed:
    cause = http_cause(response.status_code) or Cause.UNREADABLE_ANSWER
    return DeliveryFailed(cause, f"{what}: HTTP {response.status_code}", code=code)


@dataclass
class _Token:
    value: str
    expires_at: float


class ClientCredentials:
    """OAuth2 client-credentials tokens (RFC 6749 § 4.4), cached per token endpoint, client and
    scope until shortly before they expire. ``client_secret_post``, as HelseID's test issuers
    and most FHIR servers accept; HelseID's ``private_key_jwt`` comes with the security work."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._lock = asyncio.Lock()

    async def token(self, settings: Mapping[str, Any], *, fresh: bool = False) -> str:
        token_url = setting(settings, "token_url")
        client_id = setting(settings, "client_id")
        scope = str(settings.get("scope", ""))
        key = (token_url, client_id, scope)
        async with self._lock:
            cached = self._tokens.get(key)
            if cached and not fresh and cached.expires_at > time.monotonic():
                return cached.value
            data = {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": _secret(settings),
            }
            if scope:
                data["scope"] = scope
            try:
                response = await self.client.post(
                    token_url, data=data, timeout=timeout_of(settings)
                )
            except httpx.HTTPError as e:
                raise transport_failure(e, "token endpoint") from None
            if response.status_code != 200:
                raise status_failure(response, "token endpoint")
            try:
                body = response.json()
                value = str(body["access_token"])
                lifetime = float(body.get("expires_in", 300))
            except (ValueError, KeyError, TypeError):
                raise DeliveryFailed(
                    Cause.UNREADABLE_ANSWER, "token endpoint: no access_token in its answer"
                ) from None
            expires = time.monotonic() + max(lifetime - _TOKEN_MARGIN_SECONDS, 1.0)
            self._tokens[key] = _Token(value, expires)
            return value

    def forget(self, settings: Mapping[str, Any]) -> None:
        """Drop a token the server no longer takes (a 401), so the next call fetches one."""
        key = (
            str(settings.get("token_url")),
            str(settings.get("client_id")),
            str(settings.get("scope", "")),
        )
        self._tokens.pop(key, None)


def _secret(settings: Mapping[str, Any]) -> str:
    env = settings.get("client_secret_env")
    if isinstance(env, str) and env:
        value = os.environ.get(env)
        if value:
            return value
        raise DeliveryFailed(Cause.MISCONFIGURED, f"environment variable {env} is not set")
    path = settings.get("client_secret_file")
    if isinstance(path, str) and path:
        try:
            return Path(path).read_text().strip()
        except OSError:
            raise DeliveryFailed(Cause.MISCONFIGURED, "client_secret_file cannot be read") from None
    raise DeliveryFailed(
        Cause.MISCONFIGURED, "token_url needs client_secret_env or client_secret_file"
    )


class HttpAdapterBase:
    """One pooled client per adapter (connections reused across KEs), closed at stop."""

    def __init__(self) -> None:
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            timeout=10.0,
        )
        self.tokens = ClientCredentials(self.client)

    async def send(
        self,
        settings: Mapping[str, Any],
        method: str,
        url: str,
        what: str,
        **kwargs: Any,
    ) -> httpx.Response:
        """One authorised request; a 401 fetches a fresh token and tries once more."""
        for fresh in (False, True):
            headers = {**kwargs.pop("headers", {}), **(await self._auth(settings, fresh))}
            try:
                response = await self.client.request(
                    method, url, headers=headers, timeout=timeout_of(settings), **kwargs
                )
            except httpx.HTTPError as e:
                raise transport_failure(e, what) from None
            if response.status_code != 401 or fresh or not settings.get("token_url"):
                return response
            self.tokens.forget(settings)
            kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
        raise AssertionError("unreachable")

    async def _auth(self, settings: Mapping[str, Any], fresh: bool) -> dict[str, str]:
        if not settings.get("token_url"):
            return {}
        return {"Authorization": f"Bearer {await self.tokens.token(settings, fresh=fresh)}"}

    async def aclose(self) -> None:
        await self.client.aclose()
