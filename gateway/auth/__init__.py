"""Authentication: verified callers from HelseID-shaped access tokens (issue 8)."""

from gateway.auth.dev_issuer import DEV_ISSUER, DevIssuer
from gateway.auth.tokens import (
    ORGNR_CHILD,
    ORGNR_PARENT,
    SCOPE_CONSENT_READ,
    SCOPE_INBOX,
    SCOPE_OPS_ACT,
    SCOPE_OPS_CONTENT,
    SCOPE_OPS_READ,
    SCOPE_SEND,
    Caller,
    HttpJwks,
    KeySource,
    StaticJwks,
    TokenRejected,
    TokenVerifier,
    bearer_token,
)

__all__ = [
    "DEV_ISSUER",
    "ORGNR_CHILD",
    "ORGNR_PARENT",
    "SCOPE_CONSENT_READ",
    "SCOPE_INBOX",
    "SCOPE_OPS_ACT",
    "SCOPE_OPS_CONTENT",
    "SCOPE_OPS_READ",
    "SCOPE_SEND",
    "Caller",
    "DevIssuer",
    "HttpJwks",
    "KeySource",
    "StaticJwks",
    "TokenRejected",
    "TokenVerifier",
    "bearer_token",
]
