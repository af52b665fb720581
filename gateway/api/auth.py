"""Who calls, and what each kind of caller may do (issue 8).

Every endpoint but the probes, ``/metrics`` and the console's static files needs a bearer
token from the configured issuer (HelseID in production, the development issuer otherwise:
the same verification, no bypass). What a caller may do follows from its token:

- a hospital or platform system (``ipgw/messages.send``) sends as its own organisation only:
  the sender in the MessageHeader or MsgHead must be one of the token's organisations (else
  refused as spoofing, see ``gateway/auth/spoofing.py``), and it reads only its own receipts;
- a KE's system (``ipgw/inbox``) reads and acknowledges the inbox of the kommune whose KE
  has the token's organisation number in the directory, and no other;
- operators: ``ipgw/ops.read`` sees metadata, ``ipgw/ops.act`` acts, ``ipgw/ops.content``
  (privileged) may also see content; the token's ``sub`` names who acts.

Every refusal is answered with a problem naming its code and written to the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Connection

from gateway.api.deps import runtime
from gateway.api.problems import Problem
from gateway.auth.client_certs import ClientCertRejected, PresentedCertificate, thumbprint
from gateway.auth.tokens import (
    SCOPE_INBOX,
    SCOPE_OPS_ACT,
    SCOPE_OPS_READ,
    SCOPE_SEND,
    Caller,
    TokenRejected,
)
from gateway.runtime import Runtime
from gateway.store import repository as repo

#: the audit log's actor for a request whose token did not verify
ANONYMOUS = "anonymous"


async def refuse(
    rt: Runtime,
    request: Request,
    status: int,
    code: str,
    title: str,
    *,
    who: str = ANONYMOUS,
    detail: str | None = None,
) -> Problem:
    """The problem to raise, once the refusal is on record (who, what, where, why).

    Refusals of a request without a valid token count against a rate limit per address (a
    verified client's request was counted once already): a flood of bad tokens is answered
    429 and no longer written to the audit log one by one.
    """
    address = request.client.host if request.client else "unknown"
    if who == ANONYMOUS and not rt.rate_limits.take(f"refused:{address}"):
        raise _too_many(rt)
    target = f"{request.method} {request.url.path}"[:64]
    await rt.db.write_grouped(_record, who, code, target)
    error = "invalid_token" if status == 401 else "insufficient_scope"
    headers = {"WWW-Authenticate": f'Bearer error="{error}", error_description="{code}"'}
    return Problem(status, code, title, detail, headers=headers)


def _too_many(rt: Runtime) -> Problem:
    return Problem(
        429,
        "rate-limited",
        "Too many requests from this client",
        f"at most {rt.settings.rate_limit_per_second} per second",
        headers={"Retry-After": "1"},
    )


def _record(conn: Connection, who: str, code: str, target: str) -> None:
    repo.audit(conn, who, "refused", target, code)


async def authenticated(request: Request) -> Caller:
    """The caller, from its bearer token, or from the client certificate the TLS proxy passed
    on (a system client listed for certificate sign-in, gateway/auth/client_certs.py). A token
    bound to a certificate counts only with that certificate."""
    rt = runtime(request)
    presented = await _client_certificate(rt, request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        bound = thumbprint(presented.certificate) if presented is not None else None
        try:
            caller = await rt.verifier.verify(token.strip(), certificate_thumbprint=bound)
        except TokenRejected as e:
            problem = await refuse(
                rt, request, 401, e.code, "The token was refused", detail=e.detail
            )
            raise problem from None
    elif presented is not None and rt.client_certs is not None:
        try:
            caller = rt.client_certs.caller(presented)
        except ClientCertRejected as e:
            problem = await refuse(
                rt, request, 401, e.code, "The certificate was refused", detail=e.detail
            )
            raise problem from None
    else:
        raise await refuse(rt, request, 401, "token-missing", "A bearer token is needed")
    if not rt.rate_limits.take(caller.client_id):
        raise _too_many(rt)
    request.state.client_id = caller.client_id
    return caller


async def _client_certificate(rt: Runtime, request: Request) -> PresentedCertificate | None:
    """The checked certificate in ``Client-Cert``, None without that header. The header from
    anyone but the configured TLS proxy is refused: it can only be an attempt to pose as a
    client."""
    lines = request.headers.getlist("client-cert")
    if not lines:
        return None
    # several lines are one comma-joined value (RFC 9110 § 5.3): for Client-Cert, an Item,
    # that is malformed; for the chain, a List, it is the whole list
    header = ", ".join(lines)
    chain = ", ".join(request.headers.getlist("client-cert-chain")) or None
    address = request.client.host if request.client else None
    try:
        if rt.client_certs is None:
            raise ClientCertRejected(
                "client-cert-not-from-proxy", "no TLS proxy is configured to pass certificates"
            )
        return rt.client_certs.present(address, header, chain)
    except ClientCertRejected as e:
        problem = await refuse(
            rt, request, 401, e.code, "The certificate was refused", detail=e.detail
        )
        raise problem from None


Authenticated = Annotated[Caller, Depends(authenticated)]


def needs(scope: str) -> Callable[[Request, Caller], Awaitable[Caller]]:
    """A dependency: the caller, if its token grants ``scope``."""

    async def check(request: Request, caller: Authenticated) -> Caller:
        if not caller.has(scope):
            raise await refuse(
                runtime(request),
                request,
                403,
                "scope-missing",
                "The token does not allow this",
                who=actor_of(caller),
                detail=f"needs scope {scope}",
            )
        return caller

    return check


def actor_of(caller: Caller) -> str:
    """How the timeline and the audit log name a caller: the client, and who acts through it
    when that is someone else (an operator in the console)."""
    if caller.subject and caller.subject != caller.client_id:
        return f"{caller.client_id}:{caller.subject}"[:128]
    return caller.client_id[:128]


def operator_name(caller: Caller) -> str:
    """An operator as the timeline and the audit log name them: the person (``sub``)."""
    return f"operator:{caller.subject}"[:128]


def is_client(actor: str, caller: Caller) -> bool:
    """Whether a timeline actor (``client:<client id>``, gateway/api/deps.py) is this caller's
    client."""
    return actor == f"client:{caller.client_id}"


Sender = Annotated[Caller, Depends(needs(SCOPE_SEND))]
InboxReader = Annotated[Caller, Depends(needs(SCOPE_INBOX))]
OperatorReading = Annotated[Caller, Depends(needs(SCOPE_OPS_READ))]
OperatorActing = Annotated[Caller, Depends(needs(SCOPE_OPS_ACT))]


async def spoofed(request: Request, caller: Caller) -> None:
    """Put a spoofed message on the audit log (the message itself is kept as REJECTED)."""
    await refuse(runtime(request), request, 403, "sender-spoofed", "", who=actor_of(caller))


async def own_inbox(
    request: Request,
    kommunenr: Annotated[str, Path(pattern=r"^[0-9]{4}$", description="kommunenummer")],
    caller: InboxReader,
) -> Caller:
    """Only the KE whose organisation the directory lists for ``kommunenr`` reads its inbox."""
    rt = runtime(request)
    if kommunenr not in rt.directory.kommuner_of(caller.organisations):
        raise await refuse(
            rt,
            request,
            403,
            "not-your-inbox",
            "This token may not read this kommune's inbox",
            who=actor_of(caller),
        )
    return caller
