"""Mutual TLS for system clients (issue 8): a hospital or platform system let in by its
enterprise certificate instead of a token, and certificate-bound tokens (RFC 8705).

TLS ends at the reverse proxy in front of the gateway (deploy/README.md). The proxy asks for
the client's certificate, verifies it, and passes it on in the ``Client-Cert`` header
(RFC 9440), with any intermediates in ``Client-Cert-Chain``. That header is only as good as
the proxy that wrote it, so:

- it is believed only from the proxy's own addresses (IPGW_MTLS_TRUSTED_PROXIES); from any
  other address it is refused, never ignored, since it can only be an attempt to pose as a
  client;
- the certificate is checked again here, against the gateway's own trusted CAs and revocation
  lists (the rules of ``gateway.cms.Trust``: validity, key usage, chain, CRL), so a proxy
  configured to trust more than it should does not widen who gets in;
- a certificate alone lets in only a client listed in IPGW_MTLS_CLIENTS_FILE, matched by the
  organisation number in the certificate (and its fingerprint, when pinned). The client gets
  the scopes listed for it there: system scopes only, since operators are people and sign in
  with tokens that name them.

A bearer token that is bound to a certificate (``cnf`` ``x5t#S256``) is accepted when it comes
with that certificate, checked the same way (gateway/auth/tokens.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import itertools
import logging
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.auth.tokens import (
    CERTIFICATE_CLIENT_PREFIX,
    SCOPE_CONSENT_READ,
    SCOPE_INBOX,
    SCOPE_SEND,
    Caller,
)
from gateway.cms import CmsConfigError, CmsRefused, FileCache, Trust, fingerprint, load_trust
from gateway.cms import organisation_number as certificate_orgnr
from gateway.config import Settings
from gateway.domain.identifiers import InvalidIdentifier, parse_orgnr

__all__ = [
    "CLIENT_CERT_CODES",
    "SYSTEM_SCOPES",
    "ClientCertGate",
    "ClientCertRejected",
    "ClientCertsConfigError",
    "MtlsClient",
    "PresentedCertificate",
    "gate_for",
    "load_clients",
    "parse_client_cert",
    "parse_client_cert_chain",
    "thumbprint",
]

log = logging.getLogger(__name__)

#: the scopes a certificate may stand for: a system's, never an operator's
SYSTEM_SCOPES = frozenset({SCOPE_SEND, SCOPE_INBOX, SCOPE_CONSENT_READ})
#: a certificate is 1-3 kB of DER; a chain of a few; anything far larger is refused unread
MAX_HEADER_CHARS = 32 * 1024
MAX_CHAIN = 8

CLIENT_CERT_CODES = frozenset(
    {
        # the header came from an address that is not a trusted proxy
        "client-cert-not-from-proxy",
        # the header is not an RFC 9440 byte sequence holding a DER certificate
        "client-cert-malformed",
        # expired, not yet valid, wrong key usage, or not chaining to a trusted CA
        "client-cert-untrusted",
        # on a revocation list, or the list is out of date
        "client-cert-revoked",
        # a valid certificate, but of no client listed for certificate sign-in
        "client-cert-unknown",
    }
)


class ClientCertRejected(Exception):
    """A client certificate that does not let its bearer in. Like ``TokenRejected``, neither
    ``code`` nor ``detail`` ever holds a subject name: certificates are named by fingerprint."""

    def __init__(self, code: str, detail: str) -> None:
        if code not in CLIENT_CERT_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ClientCertsConfigError(ValueError):
    """The IPGW_MTLS_* settings or the clients file do not make a usable configuration."""


# ------------------------------------------------------------------------------ headers


def _sf_binary(item: str) -> bytes:
    """An RFC 8941 byte sequence (``:base64:``): standard alphabet, ``=`` padding may be left
    off (§ 4.2.7 says not to fail on it), parameters after it (``;name=value``) ignored as
    RFC 9440 defines none. Anything else after it (a second item) is refused."""
    item = item.strip(" \t")
    end = item.find(":", 1)
    if not item.startswith(":") or end < 0:
        raise ClientCertRejected("client-cert-malformed", "not a byte sequence (:base64:)")
    rest = item[end + 1 :]
    if rest and not rest.startswith(";"):
        raise ClientCertRejected("client-cert-malformed", "more than one byte sequence")
    content = item[1:end]
    try:
        return base64.b64decode(content + "=" * (-len(content) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ClientCertRejected("client-cert-malformed", "not valid base64") from None


def _der_certificate(data: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion: a v2 (or other) version field
        raise ClientCertRejected("client-cert-malformed", "not a DER certificate") from None


def parse_client_cert(value: str) -> x509.Certificate:
    """The ``Client-Cert`` header (RFC 9440 § 2.2): one byte sequence, a DER certificate."""
    if len(value) > MAX_HEADER_CHARS:
        raise ClientCertRejected("client-cert-malformed", "header too large")
    return _der_certificate(_sf_binary(value))


def parse_client_cert_chain(value: str | None) -> list[x509.Certificate]:
    """The ``Client-Cert-Chain`` header (RFC 9440 § 2.3): a list of byte sequences."""
    if not value or not value.strip(" \t"):
        return []  # an empty list is an absent one (RFC 8941 § 3.1)
    if len(value) > MAX_HEADER_CHARS * MAX_CHAIN:
        raise ClientCertRejected("client-cert-malformed", "chain header too large")
    members = value.split(",")
    if any(not m.strip(" \t") for m in members):
        raise ClientCertRejected("client-cert-malformed", "an empty member in the chain")
    if len(members) > MAX_CHAIN:
        raise ClientCertRejected("client-cert-malformed", f"more than {MAX_CHAIN} in the chain")
    return [_der_certificate(_sf_binary(m)) for m in members]


def thumbprint(certificate: x509.Certificate) -> str:
    """The certificate's ``x5t#S256`` (RFC 8705 § 3.1): base64url of the DER's SHA-256."""
    digest = certificate.fingerprint(hashes.SHA256())
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# ------------------------------------------------------------------------------ clients


def _orgnr(value: str) -> str:
    try:
        return parse_orgnr(value)
    except InvalidIdentifier as e:
        raise ValueError(str(e)) from None


def _sha256_hex(value: str) -> str:
    # as ``openssl x509 -fingerprint -sha256`` prints it, "sha256 Fingerprint=AB:CD:...", or
    # only the hex, with or without colons
    value = value.rpartition("=")[2].replace(":", "").strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError("a fingerprint is the certificate's SHA-256, 64 hex digits")
    return value


Orgnr = Annotated[str, AfterValidator(_orgnr)]
Fingerprint = Annotated[str, AfterValidator(_sha256_hex)]


class MtlsClient(BaseModel):
    """One system client let in by certificate (a ``[[client]]`` in the clients file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: names the client in the timeline and audit log (as ``mtls:<id>``) and its rate limit
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    #: the organisation number its certificate must carry; the organisation it speaks for
    orgnr: Orgnr
    #: a unit (underenhet) it also speaks for, as HelseID's ``orgnr_child``
    orgnr_child: Orgnr | None = None
    #: pinned certificates (SHA-256, hex): when given, only these of the organisation's
    #: certificates are this client (needed when one organisation has several clients)
    fingerprints: tuple[Fingerprint, ...] = ()
    scopes: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _system_scopes_only(self) -> Self:
        other = set(self.scopes) - SYSTEM_SCOPES
        if other:
            raise ValueError(
                f"scopes {sorted(other)} are not for certificates: allowed are "
                f"{sorted(SYSTEM_SCOPES)} (operators sign in with tokens)"
            )
        return self

    def matches(self, orgnr: str | None, sha256: str) -> bool:
        return orgnr == self.orgnr and (not self.fingerprints or sha256 in self.fingerprints)

    def caller(self) -> Caller:
        return Caller(
            client_id=f"{CERTIFICATE_CLIENT_PREFIX}{self.id}",
            subject=f"{CERTIFICATE_CLIENT_PREFIX}{self.id}",
            orgnr_parent=self.orgnr,
            orgnr_child=self.orgnr_child,
            scopes=frozenset(self.scopes),
        )


class _ClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client: tuple[MtlsClient, ...] = ()

    @model_validator(mode="after")
    def _unambiguous(self) -> Self:
        ids = [c.id for c in self.client]
        if len(set(ids)) != len(ids):
            raise ValueError("client ids must be unique")
        for a, b in itertools.combinations(self.client, 2):
            if a.orgnr != b.orgnr:
                continue
            unpinned = not a.fingerprints or not b.fingerprints
            if unpinned or set(a.fingerprints) & set(b.fingerprints):
                raise ValueError(
                    f"clients {a.id!r} and {b.id!r} have the same organisation: pin each "
                    "one's certificates (fingerprints) so a certificate is one client"
                )
        return self


def load_clients(path: Path) -> tuple[MtlsClient, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ClientCertsConfigError(f"IPGW_MTLS_CLIENTS_FILE: cannot read {e.filename}") from None
    except UnicodeDecodeError:
        raise ClientCertsConfigError("IPGW_MTLS_CLIENTS_FILE is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ClientCertsConfigError(f"IPGW_MTLS_CLIENTS_FILE is not TOML: {e}") from None
    try:
        return _ClientsFile.model_validate(data).client
    except ValidationError as e:
        raise ClientCertsConfigError(f"IPGW_MTLS_CLIENTS_FILE: {e}") from None


# ------------------------------------------------------------------------------ the gate


@dataclass(frozen=True)
class PresentedCertificate:
    """A client certificate the trusted proxy passed on, checked against the gateway's CAs."""

    certificate: x509.Certificate
    orgnr: str | None
    sha256: str


class ClientCertGate:
    """Reads and checks the certificate a trusted proxy passes on, and finds its client."""

    def __init__(
        self,
        proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
        trust: Callable[[], Trust],
        clients: Sequence[MtlsClient],
    ) -> None:
        self.proxies = tuple(proxies)
        #: the trusted CAs and CRLs now (re-read when their files change)
        self.trust = trust
        self.clients = tuple(clients)

    def from_proxy(self, address: str | None) -> bool:
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener shows an IPv4 proxy as ::ffff:a.b.c.d
        return any(ip in network for network in self.proxies)

    def present(
        self,
        address: str | None,
        header: str,
        chain_header: str | None = None,
        *,
        at: dt.datetime | None = None,
    ) -> PresentedCertificate:
        """The certificate in ``Client-Cert``, if a trusted proxy sent it and it is valid."""
        if not self.from_proxy(address):
            raise ClientCertRejected(
                "client-cert-not-from-proxy",
                "a Client-Cert header is only taken from the gateway's TLS proxy",
            )
        certificate = parse_client_cert(header)
        chain = parse_client_cert_chain(chain_header)
        try:
            trust = self.trust()
        except (ClientCertsConfigError, CmsConfigError) as e:
            log.error("client certificates cannot be checked: %s", e)
            raise ClientCertRejected(
                "client-cert-untrusted", "the gateway cannot read its trusted CAs now"
            ) from None
        try:
            trust.check(certificate, chain, usage="sign", at=at)
        except CmsRefused as e:
            code = "client-cert-untrusted" if e.code == "S02" else "client-cert-revoked"
            raise ClientCertRejected(code, e.detail) from None
        _check_client_certificate(certificate)
        return PresentedCertificate(
            certificate=certificate,
            orgnr=certificate_orgnr(certificate),
            sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        )

    def caller(self, presented: PresentedCertificate) -> Caller:
        """The listed client this certificate is, as a caller with that client's scopes."""
        for client in self.clients:
            if client.matches(presented.orgnr, presented.sha256):
                return client.caller()
        raise ClientCertRejected(
            "client-cert-unknown",
            f"certificate {fingerprint(presented.certificate)} is of no client allowed to "
            "sign in by certificate",
        )


def _check_client_certificate(certificate: x509.Certificate) -> None:
    """What makes a certificate a TLS client's, beyond the chain: not a CA's own, and issued
    for client authentication when it states its purposes (extended key usage)."""
    name = f"certificate {fingerprint(certificate)}"
    try:
        extensions = certificate.extensions
    except ValueError:
        raise ClientCertRejected(
            "client-cert-malformed", f"{name}: unreadable extensions"
        ) from None
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise ClientCertRejected("client-cert-untrusted", f"{name} is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        purposes = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH not in purposes:
        raise ClientCertRejected(
            "client-cert-untrusted", f"{name} is not issued for client authentication"
        )


def gate_for(settings: Settings) -> ClientCertGate | None:
    """The gate for IPGW_MTLS_*; None when no proxy is trusted (the header is then refused
    from everyone, gateway/api/auth.py). A half configuration stops the gateway at start."""
    if not settings.mtls_trusted_proxies:
        stray = [
            name
            for name, value in (
                ("IPGW_MTLS_CLIENTS_FILE", settings.mtls_clients_file),
                ("IPGW_MTLS_TRUSTED_CA", settings.mtls_trusted_ca),
                ("IPGW_MTLS_CRL_FILES", settings.mtls_crl_files),
            )
            if value
        ]
        if stray:
            raise ClientCertsConfigError(
                f"{', '.join(stray)} set but IPGW_MTLS_TRUSTED_PROXIES is not: name the TLS "
                "proxy that passes client certificates on"
            )
        return None
    anchors = settings.mtls_trusted_ca
    if anchors is None:
        raise ClientCertsConfigError(
            "IPGW_MTLS_TRUSTED_PROXIES is set but IPGW_MTLS_TRUSTED_CA is not: client "
            "certificates must be checked against the CAs the gateway trusts"
        )
    proxies = [_proxy_network(p) for p in settings.mtls_trusted_proxies]
    crls = list(settings.mtls_crl_files)
    cache = FileCache()

    def trust() -> Trust:
        return cache.get(
            ("trust",),
            [anchors, *crls],
            lambda: load_trust(
                anchors,
                crls,
                "IPGW_MTLS_TRUSTED_CA/IPGW_MTLS_CRL_FILES",
                # with lists configured, a certificate no list covers is refused
                require_revocation=bool(crls),
            ),
        )

    try:
        anchors_now = trust().anchors
    except CmsConfigError as e:
        raise ClientCertsConfigError(str(e)) from None
    if not anchors_now:
        raise ClientCertsConfigError(f"IPGW_MTLS_TRUSTED_CA: {anchors} holds no certificate")
    if not crls:
        log.warning(
            "IPGW_MTLS_CRL_FILES is not set: revoked client certificates are not recognised"
        )
    clients = load_clients(settings.mtls_clients_file) if settings.mtls_clients_file else ()
    for client in clients:
        if not client.fingerprints:
            log.warning(
                "mTLS client %s is not pinned: every certificate of its organisation that "
                "chains to a trusted CA is this client (set its fingerprints)",
                client.id,
            )
    return ClientCertGate(proxies, trust, clients)


#: the widest network a proxy may be given as: anything in it can pose as any listed client,
#: since a client certificate is public (it is sent in every handshake, and listed)
_WIDEST_PROXY_PREFIX = {4: 16, 6: 48}


def _proxy_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        raise ClientCertsConfigError(f"IPGW_MTLS_TRUSTED_PROXIES: {e}") from None
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.network_address.ipv4_mapped is not None
    ):
        mapped = network.network_address.ipv4_mapped
        network = ipaddress.ip_network(f"{mapped}/{max(network.prefixlen - 96, 0)}")
    if network.prefixlen < _WIDEST_PROXY_PREFIX[network.version]:
        raise ClientCertsConfigError(
            f"IPGW_MTLS_TRUSTED_PROXIES: {network} is too wide for a proxy (at most "
            f"/{_WIDEST_PROXY_PREFIX[network.version]}): every address in it could pose as "
            "any client"
        )
    return network
