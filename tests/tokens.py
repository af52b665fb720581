"""The tests' callers carry tokens from the development issuer (gateway/demo/tokens.py), as
real callers carry HelseID's. Tests that act as an operator may say who and in which role with
``X-Operator`` / ``X-Operator-Role`` on the request: the gateway ignores those headers, this
turns them into the operator's token (``sub`` and scopes) and drops them."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from gateway.demo.tokens import ROLE_SCOPES, PartyTokens


class TestTokens(PartyTokens):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        who = request.headers.pop("x-operator", None)
        role = request.headers.pop("x-operator-role", None)
        if "authorization" not in request.headers and (who or role):
            scopes = ROLE_SCOPES[role or self.role]
            token = self.mint("tests-console", scopes, None, subject=who or self.operator)
            request.headers["Authorization"] = f"Bearer {token}"
        yield from super().auth_flow(request)
