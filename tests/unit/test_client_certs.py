"""Mutual TLS for system clients (issue 8, gateway/auth/client_certs.py) and certificate-bound
tokens (RFC 8705), with certificates made here by the test PKI.

What is expected comes from the standards, not from the module: the headers are RFC 9440's
``Client-Cert`` and ``Client-Cert-Chain`` (RFC 8941 byte sequences, ``:base64(DER):`` in the
standard alphabet), the thumbprint is RFC 8705 § 3.1's ``x5t#S256`` (computed here with
hashlib), and a certificate lets its bearer in only when the trusted proxy passed it on, it is
valid now, issued for signing, chains to a trusted CA, is on no revocation list, and belongs to
a client listed for certificate sign-in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth import (
    DEV_ISSUER,
    SCOPE_CONSENT_READ,
    SCOPE_INBOX,
    SCOPE_OPS_ACT,
    SCOPE_OPS_READ,
    SCOPE_SEND,
    Caller,
    DevIssuer,
    TokenRejected,
    TokenVerifier,
)
from gateway.auth.client_certs import (
    MAX_CHAIN,
    MAX_HEADER_CHARS,
    ClientCertGate,
    ClientCertRejected,
    ClientCertsConfigError,
    MtlsClient,
    PresentedCertificate,
    gate_for,
    load_clients,
    parse_client_cert,
    parse_client_cert_chain,
    thumbprint,
)
from gateway.cms import Identity, Trust, organisation_number
from gateway.config import Settings
from gateway.demo.pki import Authority, key_usage, new_key

NOW = dt.datetime.now(dt.UTC)
DAY = dt.timedelta(days=1)
AUD = "ip-gateway"

HMR = "983974899"  # Helse Møre og Romsdal HF
STOLAV = "883974832"  # St. Olavs hospital HF
UNIT = "974749025"  # a unit HMR also speaks for (and, as a certificate's orgnr, of no client)
#: a subject name that must never appear in a rejection (certificates are named by fingerprint)
SECRET = "Ǿ Secret Hospital ʬ"

PROXY = "10.0.0.5"
PROXIES = [ipaddress.ip_network("10.0.0.0/24")]


# ------------------------------------------------------------------------------ helpers


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def header(certificate: x509.Certificate) -> str:
    """``Client-Cert`` as RFC 9440 § 2.2 writes it."""
    return ":" + base64.b64encode(der(certificate)).decode() + ":"


def chain_header(*certificates: x509.Certificate) -> str:
    """``Client-Cert-Chain`` as RFC 9440 § 2.3 writes it (an RFC 8941 list)."""
    return ", ".join(header(c) for c in certificates)


def sha256_hex(certificate: x509.Certificate) -> str:
    return hashlib.sha256(der(certificate)).hexdigest()


def make_ca(
    name: str, *, parent: Authority | None = None, path_length: int | None = None
) -> Authority:
    """A CA that may sign CAs below it (the demo PKI's root is ``path_length=0``), or, with
    ``parent``, an intermediate CA signed by that one."""
    key = new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ip-gateway test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    signer: rsa.RSAPrivateKey = parent.key if parent else key
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.certificate.subject if parent else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 3000 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(key_usage(sign=False, encrypt=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
        .sign(signer, hashes.SHA256())
    )
    return Authority(key, certificate)


def rejected(call: Callable[[], object]) -> ClientCertRejected:
    with pytest.raises(ClientCertRejected) as info:
        call()
    return info.value


def texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


# ------------------------------------------------------------------------------ the PKI


@pytest.fixture(scope="module")
def leaf_key() -> rsa.RSAPrivateKey:
    """One key for all the client certificates here: a key takes long to make, and what is
    checked is the certificate (a renewed certificate keeps its key, too)."""
    return new_key()


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority.create("mTLS Test CA")


@pytest.fixture(scope="module")
def other_ca() -> Authority:
    """Another key under the same name: what someone making their own "CA" would do."""
    return Authority.create("mTLS Test CA")


@pytest.fixture(scope="module")
def hmr(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("Helse Møre og Romsdal HF", orgnr=HMR, key=leaf_key)


@pytest.fixture(scope="module")
def hmr_second(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    """Another certificate of the same organisation (another system of it)."""
    return ca.issue("Helse Møre og Romsdal HF", orgnr=HMR, key=leaf_key)


@pytest.fixture(scope="module")
def stolav(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("St. Olavs hospital HF", orgnr=STOLAV, key=leaf_key)


@pytest.fixture(scope="module")
def stolav_other(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("St. Olavs hospital HF", orgnr=STOLAV, key=leaf_key)


@pytest.fixture(scope="module")
def unit(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("A unit", orgnr=UNIT, key=leaf_key)


@pytest.fixture(scope="module")
def no_orgnr(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("No organisation", key=leaf_key)


@pytest.fixture(scope="module")
def expired(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue(
        "Expired", orgnr=HMR, not_before=NOW - 30 * DAY, not_after=NOW - DAY, key=leaf_key
    )


@pytest.fixture(scope="module")
def not_yet_valid(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue(
        "Early", orgnr=HMR, not_before=NOW + DAY, not_after=NOW + 30 * DAY, key=leaf_key
    )


@pytest.fixture(scope="module")
def encrypt_only(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("Encryption only", orgnr=HMR, sign=False, key=leaf_key)


@pytest.fixture(scope="module")
def foreign(other_ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return other_ca.issue("Helse Møre og Romsdal HF", orgnr=HMR, key=leaf_key)


@pytest.fixture(scope="module")
def revoked(ca: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return ca.issue("Revoked", orgnr=HMR, key=leaf_key)


@pytest.fixture(scope="module")
def trust(ca: Authority, revoked: Identity) -> Trust:
    return Trust((ca.certificate,), (ca.revocation_list([revoked.certificate]),))


@pytest.fixture(scope="module")
def clients(stolav: Identity) -> tuple[MtlsClient, ...]:
    return (
        MtlsClient(id="hmr-epj", orgnr=HMR, orgnr_child=UNIT, scopes=(SCOPE_SEND,)),
        MtlsClient(
            id="stolav-pinned",
            orgnr=STOLAV,
            fingerprints=(sha256_hex(stolav.certificate),),
            scopes=(SCOPE_SEND, SCOPE_CONSENT_READ),
        ),
    )


@pytest.fixture(scope="module")
def gate(trust: Trust, clients: tuple[MtlsClient, ...]) -> ClientCertGate:
    return ClientCertGate(PROXIES, lambda: trust, clients)


# ------------------------------------------------------------------------------ headers


def test_client_cert_round_trips(hmr: Identity) -> None:
    assert parse_client_cert(header(hmr.certificate)) == hmr.certificate
    # optional whitespace around a field value is not part of it (RFC 9110 § 5.5)
    assert parse_client_cert(" \t" + header(hmr.certificate) + " ") == hmr.certificate


def test_a_header_of_the_standard_alphabet_is_read(hmr: Identity) -> None:
    """The test below needs a certificate whose base64 has ``+`` or ``/``: this one has."""
    encoded = base64.b64encode(der(hmr.certificate)).decode()
    assert "+" in encoded or "/" in encoded
    assert parse_client_cert(f":{encoded}:") == hmr.certificate


def _malformed_headers(certificate: x509.Certificate) -> dict[str, str]:
    data = der(certificate)
    encoded = base64.b64encode(data).decode()
    crl_like = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()  # DER, not a certificate
    unpadded = base64.b64encode(data[:-1] if len(data) % 3 == 0 else data).decode()
    assert unpadded.endswith("=")
    return {
        "empty": "",
        "empty byte sequence": "::",
        "no colons": encoded,
        "only a leading colon": ":" + encoded,
        "only a trailing colon": encoded + ":",
        "a lone colon": ":",
        "not base64": ":" + encoded[:40] + "$%&" + encoded[43:] + ":",
        "urlsafe alphabet": ":" + base64.urlsafe_b64encode(data).decode() + ":",
        "non-ASCII": ":" + encoded[:20] + "ø" + encoded[21:] + ":",
        "not DER": ":" + base64.b64encode(b"certainly not a certificate").decode() + ":",
        "DER of something else": f":{crl_like}:",
        "PEM inside": ":" + base64.b64encode(pem(certificate)).decode() + ":",
        "truncated DER": ":" + base64.b64encode(data[:-10]).decode() + ":",
        "two certificates": ":" + encoded + "::" + encoded + ":",
        # a lenient decoder would skip these and find the certificate
        "a stray character": ":" + encoded[:40] + "$" + encoded[40:] + ":",
        "a line break inside": ":" + encoded[:64] + "\n" + encoded[64:] + ":",
        "a space inside": ":" + encoded[:64] + " " + encoded[64:] + ":",
    }


MALFORMED = [
    "empty",
    "empty byte sequence",
    "no colons",
    "only a leading colon",
    "only a trailing colon",
    "a lone colon",
    "not base64",
    "urlsafe alphabet",
    "non-ASCII",
    "not DER",
    "DER of something else",
    "PEM inside",
    "truncated DER",
    "two certificates",
    "a stray character",
    "a line break inside",
    "a space inside",
]


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_client_cert_is_refused(case: str, hmr: Identity) -> None:
    value = _malformed_headers(hmr.certificate)[case]
    assert rejected(lambda: parse_client_cert(value)).code == "client-cert-malformed"


def test_the_malformed_cases_are_all_tried(hmr: Identity) -> None:
    assert sorted(_malformed_headers(hmr.certificate)) == sorted(MALFORMED)


def test_an_oversized_header_is_refused_even_when_it_holds_a_certificate(hmr: Identity) -> None:
    # whitespace around a byte sequence is allowed: without the size limit this would parse
    padded = " " * MAX_HEADER_CHARS + header(hmr.certificate)
    assert rejected(lambda: parse_client_cert(padded)).code == "client-cert-malformed"
    fits = " " * (MAX_HEADER_CHARS - len(header(hmr.certificate))) + header(hmr.certificate)
    assert parse_client_cert(fits) == hmr.certificate


@pytest.mark.parametrize("value", [None, "", " "])
def test_an_absent_or_empty_chain_is_no_chain(value: str | None) -> None:
    assert parse_client_cert_chain(value) == []


@pytest.mark.parametrize("value", [", ,", "{a},,{a}", "{a},", ",{a}"])
def test_an_empty_member_spoils_the_chain(value: str, ca: Authority) -> None:
    text = value.replace("{a}", header(ca.certificate))
    assert rejected(lambda: parse_client_cert_chain(text)).code == "client-cert-malformed"


def test_padding_may_be_left_off_and_parameters_are_ignored(hmr: Identity) -> None:
    """RFC 8941 § 4.2.7: a parser should not fail on missing padding; RFC 9440 defines no
    parameters, and unknown ones are ignored."""
    encoded = base64.b64encode(der(hmr.certificate)).decode()
    unpadded = encoded.rstrip("=")
    assert unpadded != encoded  # this certificate's DER needs padding, so the case is real
    assert parse_client_cert(f":{unpadded}:") == hmr.certificate
    assert parse_client_cert(f":{encoded}:;by=proxy") == hmr.certificate
    # but not a second item after it
    assert rejected(lambda: parse_client_cert(f":{encoded}:, :{encoded}:")).code == (
        "client-cert-malformed"
    )


def test_a_chain_of_one_and_of_two(hmr: Identity, ca: Authority) -> None:
    assert parse_client_cert_chain(chain_header(ca.certificate)) == [ca.certificate]
    two = parse_client_cert_chain(chain_header(hmr.certificate, ca.certificate))
    assert two == [hmr.certificate, ca.certificate]
    # RFC 8941 lists: members separated by a comma, optional whitespace around it
    assert parse_client_cert_chain(header(hmr.certificate) + "," + header(ca.certificate)) == two


def test_a_chain_of_at_most_max_chain(ca: Authority) -> None:
    most = [ca.certificate] * MAX_CHAIN
    assert parse_client_cert_chain(chain_header(*most)) == most
    too_many = chain_header(*most, ca.certificate)
    assert rejected(lambda: parse_client_cert_chain(too_many)).code == "client-cert-malformed"


def test_an_oversized_chain_header_is_refused(ca: Authority) -> None:
    padded = " " * (MAX_HEADER_CHARS * MAX_CHAIN) + chain_header(ca.certificate)
    assert rejected(lambda: parse_client_cert_chain(padded)).code == "client-cert-malformed"


@pytest.mark.parametrize("bad", ["junk", ":bm90IGEgY2VydA==:", "::"])
def test_one_bad_member_spoils_the_chain(bad: str, ca: Authority) -> None:
    value = chain_header(ca.certificate) + ", " + bad
    assert rejected(lambda: parse_client_cert_chain(value)).code == "client-cert-malformed"


def _header_text() -> st.SearchStrategy[str]:
    byte_sequence = st.binary(max_size=300).map(lambda b: ":" + base64.b64encode(b).decode() + ":")
    return st.one_of(st.text(max_size=300), byte_sequence, st.from_regex(r":[A-Za-z0-9+/=]*:"))


@settings(max_examples=300, deadline=None)
@given(value=_header_text())
def test_any_text_is_a_certificate_or_refused_as_malformed(value: str) -> None:
    outcome: x509.Certificate | ClientCertRejected
    try:
        outcome = parse_client_cert(value)
    except ClientCertRejected as e:
        outcome = e
    if isinstance(outcome, ClientCertRejected):
        assert outcome.code == "client-cert-malformed"
    else:
        assert isinstance(outcome, x509.Certificate)


@settings(max_examples=200, deadline=None)
@given(members=st.lists(_header_text(), max_size=10))
def test_any_chain_text_is_certificates_or_refused_as_malformed(members: list[str]) -> None:
    outcome: list[x509.Certificate] | ClientCertRejected
    try:
        outcome = parse_client_cert_chain(",".join(members))
    except ClientCertRejected as e:
        outcome = e
    if isinstance(outcome, ClientCertRejected):
        assert outcome.code == "client-cert-malformed"
    else:
        assert all(isinstance(c, x509.Certificate) for c in outcome)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_an_altered_certificate_is_refused_with_a_code_never_another_error(
    data: st.DataObject, hmr: Identity, gate: ClientCertGate
) -> None:
    """Whatever bytes a client changes in its certificate, the gate refuses with one of its
    codes (or, for a change that leaves the signed part alone, lets the same client in)."""
    blob = bytearray(der(hmr.certificate))
    assert blob[VERSION_FIELD] == b"\xa0\x03\x02\x01\x02"
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        blob[at] = data.draw(st.integers(0, 255), label="byte")
    value = ":" + base64.b64encode(bytes(blob)).decode() + ":"
    outcome: PresentedCertificate | ClientCertRejected
    try:
        outcome = gate.present(PROXY, value)
    except ClientCertRejected as e:
        outcome = e
    if isinstance(outcome, ClientCertRejected):
        assert outcome.code in {"client-cert-malformed", "client-cert-untrusted"}
    else:
        assert outcome.orgnr == HMR
        assert gate.caller(outcome).client_id == "mtls:hmr-epj"


#: where an X.509 certificate made here holds its version: ``[0] { INTEGER 2 }`` (v3) after
#: the two SEQUENCE headers of four bytes each
VERSION_FIELD = slice(8, 13)


def other_version(certificate: x509.Certificate, version: int) -> bytes:
    """The certificate's DER with another version number (1 is X.509 v2, 3 is no version)."""
    blob = bytearray(der(certificate))
    assert blob[VERSION_FIELD] == b"\xa0\x03\x02\x01\x02"
    blob[12] = version
    return bytes(blob)


@pytest.mark.parametrize("version", [1, 3])
def test_a_certificate_of_another_version_is_malformed(version: int, hmr: Identity) -> None:
    value = ":" + base64.b64encode(other_version(hmr.certificate, version)).decode() + ":"
    assert rejected(lambda: parse_client_cert(value)).code == "client-cert-malformed"


def test_a_chain_member_of_another_version_is_malformed(ca: Authority, hmr: Identity) -> None:
    member = ":" + base64.b64encode(other_version(hmr.certificate, 1)).decode() + ":"
    value = chain_header(ca.certificate) + ", " + member
    assert rejected(lambda: parse_client_cert_chain(value)).code == "client-cert-malformed"


def test_the_gate_refuses_a_certificate_of_another_version(
    gate: ClientCertGate, hmr: Identity
) -> None:
    value = ":" + base64.b64encode(other_version(hmr.certificate, 1)).decode() + ":"
    assert rejected(lambda: gate.present(PROXY, value)).code == "client-cert-malformed"


# ------------------------------------------------------------------------------ thumbprint


def test_thumbprint_is_x5t_s256(hmr: Identity, hmr_second: Identity) -> None:
    expected = base64.urlsafe_b64encode(hashlib.sha256(der(hmr.certificate)).digest())
    value = thumbprint(hmr.certificate)
    assert value == expected.decode().rstrip("=")
    assert len(value) == 43  # 32 bytes, base64url without padding
    assert not set(value) & set("=+/")
    # of the certificate, not of its key: two certificates with one key differ
    assert hmr.certificate.public_key() == hmr_second.certificate.public_key()
    assert thumbprint(hmr_second.certificate) != value


# ------------------------------------------------------------------------------ present()


def test_a_valid_certificate_from_the_proxy_is_presented(
    gate: ClientCertGate, hmr: Identity
) -> None:
    presented = gate.present(PROXY, header(hmr.certificate))
    assert presented == PresentedCertificate(
        certificate=hmr.certificate, orgnr=HMR, sha256=sha256_hex(hmr.certificate)
    )


def test_the_presented_certificate_without_an_orgnr_has_none(
    gate: ClientCertGate, no_orgnr: Identity
) -> None:
    assert gate.present(PROXY, header(no_orgnr.certificate)).orgnr is None


@pytest.mark.parametrize(
    "address",
    [None, "", "not-an-ip", "10.0.1.5", "10.0.0.5 ", "192.168.0.5", "127.0.0.1", "::1", "fd00::5"],
)
def test_the_header_is_refused_from_anywhere_but_the_proxy(
    address: str | None, gate: ClientCertGate, hmr: Identity
) -> None:
    error = rejected(lambda: gate.present(address, header(hmr.certificate)))
    assert error.code == "client-cert-not-from-proxy"


def test_from_elsewhere_the_header_is_refused_before_it_is_read(gate: ClientCertGate) -> None:
    assert rejected(lambda: gate.present("10.9.9.9", "junk")).code == "client-cert-not-from-proxy"
    assert rejected(lambda: gate.present(PROXY, "junk")).code == "client-cert-malformed"


def test_proxies_may_be_single_addresses_and_ipv6_networks(trust: Trust, hmr: Identity) -> None:
    proxies = [ipaddress.ip_network("192.0.2.7/32"), ipaddress.ip_network("fd00:1::/64")]
    gate = ClientCertGate(proxies, lambda: trust, ())
    for good in ["192.0.2.7", "fd00:1::7"]:
        assert gate.present(good, header(hmr.certificate)).orgnr == HMR
    for bad in ["192.0.2.8", "fd00:2::7", "10.0.0.5"]:
        error = rejected(lambda a=bad: gate.present(a, header(hmr.certificate)))
        assert error.code == "client-cert-not-from-proxy"


def test_no_proxy_no_certificate(trust: Trust, hmr: Identity) -> None:
    gate = ClientCertGate([], lambda: trust, ())
    error = rejected(lambda: gate.present(PROXY, header(hmr.certificate)))
    assert error.code == "client-cert-not-from-proxy"


@pytest.mark.parametrize("name", ["expired", "not_yet_valid", "encrypt_only", "foreign"])
def test_an_unfit_certificate_is_untrusted(
    name: str, request: pytest.FixtureRequest, gate: ClientCertGate
) -> None:
    identity: Identity = request.getfixturevalue(name)
    error = rejected(lambda: gate.present(PROXY, header(identity.certificate)))
    assert error.code == "client-cert-untrusted"


def test_the_time_checked_is_the_one_given(ca: Authority, hmr: Identity) -> None:
    # no revocation list: one would be out of date at the later times
    gate = ClientCertGate(PROXIES, lambda: Trust((ca.certificate,)), ())
    assert gate.present(PROXY, header(hmr.certificate), at=NOW + 300 * DAY).orgnr == HMR
    for at in [NOW + 400 * DAY, NOW - 2 * DAY]:
        error = rejected(lambda t=at: gate.present(PROXY, header(hmr.certificate), at=t))
        assert error.code == "client-cert-untrusted"


def test_the_ca_itself_is_not_a_client_certificate(gate: ClientCertGate, ca: Authority) -> None:
    error = rejected(lambda: gate.present(PROXY, header(ca.certificate)))
    assert error.code == "client-cert-untrusted"


def test_a_revoked_certificate_is_refused(gate: ClientCertGate, revoked: Identity) -> None:
    error = rejected(lambda: gate.present(PROXY, header(revoked.certificate)))
    assert error.code == "client-cert-revoked"


def test_an_out_of_date_revocation_list_refuses_what_it_covers(
    ca: Authority, hmr: Identity
) -> None:
    fresh = Trust((ca.certificate,), (ca.revocation_list([]),))
    stale = Trust((ca.certificate,), (ca.revocation_list([], next_update=NOW - DAY / 24),))
    assert ClientCertGate(PROXIES, lambda: fresh, ()).present(PROXY, header(hmr.certificate))
    gate = ClientCertGate(PROXIES, lambda: stale, ())
    error = rejected(lambda: gate.present(PROXY, header(hmr.certificate)))
    assert error.code == "client-cert-revoked"


def test_a_revocation_list_not_signed_by_the_ca_is_not_believed(
    ca: Authority, other_ca: Authority, hmr: Identity
) -> None:
    """``other_ca`` has the CA's name but not its key: its list cannot revoke the CA's
    certificates (nor, were it stale, refuse them)."""
    forged = other_ca.revocation_list([hmr.certificate], next_update=NOW - DAY / 24)
    gate = ClientCertGate(PROXIES, lambda: Trust((ca.certificate,), (forged,)), ())
    assert gate.present(PROXY, header(hmr.certificate)).orgnr == HMR


def test_when_the_trusted_cas_cannot_be_read_a_certificate_is_untrusted(hmr: Identity) -> None:
    def unreadable() -> Trust:
        raise ClientCertsConfigError("IPGW_MTLS_TRUSTED_CA: cannot read ca.pem")

    gate = ClientCertGate(PROXIES, unreadable, ())
    error = rejected(lambda: gate.present(PROXY, header(hmr.certificate)))
    assert error.code == "client-cert-untrusted"


# -- an intermediate CA, passed on in Client-Cert-Chain


@pytest.fixture(scope="module")
def root() -> Authority:
    return make_ca("mTLS Test Root", path_length=1)


@pytest.fixture(scope="module")
def intermediate(root: Authority) -> Authority:
    return make_ca("mTLS Test Issuing CA", parent=root, path_length=0)


@pytest.fixture(scope="module")
def via_intermediate(intermediate: Authority, leaf_key: rsa.RSAPrivateKey) -> Identity:
    return intermediate.issue("Helse Møre og Romsdal HF", orgnr=HMR, key=leaf_key)


def test_an_intermediate_in_the_chain_header_completes_the_path(
    root: Authority, intermediate: Authority, via_intermediate: Identity
) -> None:
    gate = ClientCertGate(PROXIES, lambda: Trust((root.certificate,)), ())
    leaf = header(via_intermediate.certificate)
    assert rejected(lambda: gate.present(PROXY, leaf)).code == "client-cert-untrusted"
    for chain in [
        chain_header(intermediate.certificate),
        chain_header(intermediate.certificate, root.certificate),
    ]:
        presented = gate.present(PROXY, leaf, chain)
        assert presented.certificate == via_intermediate.certificate
        assert presented.orgnr == HMR


def test_a_chain_header_does_not_make_an_untrusted_ca_trusted(
    ca: Authority, root: Authority, intermediate: Authority, via_intermediate: Identity
) -> None:
    """The chain only fills in the path: its top must still be one of the gateway's CAs."""
    gate = ClientCertGate(PROXIES, lambda: Trust((ca.certificate,)), ())
    chain = chain_header(intermediate.certificate, root.certificate)
    error = rejected(lambda: gate.present(PROXY, header(via_intermediate.certificate), chain))
    assert error.code == "client-cert-untrusted"


def test_revocation_is_checked_along_the_chain(
    root: Authority, intermediate: Authority, via_intermediate: Identity
) -> None:
    leaf, chain = header(via_intermediate.certificate), chain_header(intermediate.certificate)
    for crl in [
        intermediate.revocation_list([via_intermediate.certificate]),  # the leaf revoked
        root.revocation_list([intermediate.certificate]),  # the issuing CA revoked
    ]:
        gate = ClientCertGate(PROXIES, lambda c=crl: Trust((root.certificate,), (c,)), ())
        assert rejected(lambda g=gate: g.present(PROXY, leaf, chain)).code == "client-cert-revoked"


# ------------------------------------------------------------------------------ caller()


def test_a_listed_organisation_gets_its_client(gate: ClientCertGate, hmr: Identity) -> None:
    caller = gate.caller(gate.present(PROXY, header(hmr.certificate)))
    assert caller == Caller(
        client_id="mtls:hmr-epj",
        subject="mtls:hmr-epj",
        orgnr_parent=HMR,
        orgnr_child=UNIT,
        scopes=frozenset({SCOPE_SEND}),
    )
    assert caller.organisations == {HMR, UNIT}


def test_any_certificate_of_an_unpinned_organisation_is_its_client(
    gate: ClientCertGate, hmr_second: Identity
) -> None:
    assert gate.caller(gate.present(PROXY, header(hmr_second.certificate))).client_id == (
        "mtls:hmr-epj"
    )


def test_a_pinned_client_is_only_its_pinned_certificate(
    gate: ClientCertGate, stolav: Identity, stolav_other: Identity
) -> None:
    caller = gate.caller(gate.present(PROXY, header(stolav.certificate)))
    assert caller.client_id == "mtls:stolav-pinned"
    assert caller.scopes == {SCOPE_SEND, SCOPE_CONSENT_READ}
    assert caller.orgnr_parent == STOLAV
    presented = gate.present(PROXY, header(stolav_other.certificate))
    assert presented.orgnr == STOLAV
    assert rejected(lambda: gate.caller(presented)).code == "client-cert-unknown"


@pytest.mark.parametrize("name", ["no_orgnr", "unit"])
def test_a_valid_certificate_of_no_listed_organisation_is_unknown(
    name: str, request: pytest.FixtureRequest, gate: ClientCertGate
) -> None:
    """``unit`` is the orgnr_child of a client: that lets a client speak for it, not a
    certificate of it sign in as that client."""
    identity: Identity = request.getfixturevalue(name)
    presented = gate.present(PROXY, header(identity.certificate))
    assert rejected(lambda: gate.caller(presented)).code == "client-cert-unknown"


def test_one_organisation_with_two_pinned_clients(
    trust: Trust, hmr: Identity, hmr_second: Identity, leaf_key: rsa.RSAPrivateKey, ca: Authority
) -> None:
    gate = ClientCertGate(
        PROXIES,
        lambda: trust,
        [
            MtlsClient(
                id="hmr-epj",
                orgnr=HMR,
                fingerprints=(sha256_hex(hmr.certificate),),
                scopes=(SCOPE_SEND,),
            ),
            MtlsClient(
                id="hmr-kurve",
                orgnr=HMR,
                fingerprints=(sha256_hex(hmr_second.certificate),),
                scopes=(SCOPE_INBOX,),
            ),
        ],
    )
    first = gate.caller(gate.present(PROXY, header(hmr.certificate)))
    second = gate.caller(gate.present(PROXY, header(hmr_second.certificate)))
    assert (first.client_id, first.scopes) == ("mtls:hmr-epj", {SCOPE_SEND})
    assert (second.client_id, second.scopes) == ("mtls:hmr-kurve", {SCOPE_INBOX})
    third = ca.issue("Helse Møre og Romsdal HF", orgnr=HMR, key=leaf_key)
    presented = gate.present(PROXY, header(third.certificate))
    assert rejected(lambda: gate.caller(presented)).code == "client-cert-unknown"


def test_a_pin_does_not_let_in_a_certificate_of_another_organisation(
    trust: Trust, stolav: Identity
) -> None:
    gate = ClientCertGate(
        PROXIES,
        lambda: trust,
        [
            MtlsClient(
                id="hmr-epj",
                orgnr=HMR,
                fingerprints=(sha256_hex(stolav.certificate),),
                scopes=(SCOPE_SEND,),
            )
        ],
    )
    presented = gate.present(PROXY, header(stolav.certificate))
    assert rejected(lambda: gate.caller(presented)).code == "client-cert-unknown"


# -- rejections are discreet


@pytest.fixture(scope="module")
def secret_gate(
    ca: Authority, other_ca: Authority, leaf_key: rsa.RSAPrivateKey
) -> tuple[ClientCertGate, dict[str, Identity]]:
    named = {
        "expired": ca.issue(
            SECRET, orgnr=HMR, not_before=NOW - 9 * DAY, not_after=NOW - DAY, key=leaf_key
        ),
        "encrypt_only": ca.issue(SECRET, orgnr=HMR, sign=False, key=leaf_key),
        "foreign": other_ca.issue(SECRET, orgnr=HMR, key=leaf_key),
        "revoked": ca.issue(SECRET, orgnr=HMR, key=leaf_key),
        "unknown": ca.issue(SECRET, orgnr=UNIT, key=leaf_key),
    }
    trust = Trust((ca.certificate,), (ca.revocation_list([named["revoked"].certificate]),))
    return ClientCertGate(PROXIES, lambda: trust, ()), named


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("expired", "client-cert-untrusted"),
        ("encrypt_only", "client-cert-untrusted"),
        ("foreign", "client-cert-untrusted"),
        ("revoked", "client-cert-revoked"),
        ("unknown", "client-cert-unknown"),
    ],
)
def test_a_rejection_never_names_the_certificate_subject(
    name: str, code: str, secret_gate: tuple[ClientCertGate, dict[str, Identity]]
) -> None:
    gate, named = secret_gate
    certificate = named[name].certificate
    assert certificate.subject.rfc4514_string().count("Secret Hospital") == 2  # O and CN
    if code == "client-cert-unknown":
        presented = gate.present(PROXY, header(certificate))
        error = rejected(lambda: gate.caller(presented))
    else:
        error = rejected(lambda: gate.present(PROXY, header(certificate)))
    assert error.code == code
    for text in [*texts(error), error.detail]:
        assert "Secret Hospital" not in text
        assert "Ǿ" not in text
        assert "ʬ" not in text


# ------------------------------------------------------------------------------ the clients file


def fp(n: int) -> str:
    return f"{n:064x}"


def good_clients() -> list[dict[str, Any]]:
    return [
        {
            "id": "hmr-epj",
            "orgnr": HMR,
            "orgnr_child": UNIT,
            "scopes": [SCOPE_SEND, SCOPE_CONSENT_READ],
        },
        {"id": "stolav.a", "orgnr": STOLAV, "fingerprints": [fp(0xA1)], "scopes": [SCOPE_INBOX]},
        {
            "id": "stolav_B",
            "orgnr": STOLAV,
            # as ``openssl x509 -fingerprint -sha256`` prints it
            "fingerprints": [":".join(f"{0xB2:064X}"[i : i + 2] for i in range(0, 64, 2))],
            "scopes": [SCOPE_INBOX, SCOPE_SEND],
        },
    ]


def toml_of(clients: list[dict[str, Any]]) -> str:
    """A clients file; JSON strings and arrays of strings are TOML values as they are."""
    tables = []
    for client in clients:
        lines = ["[[client]]", *(f"{k} = {json.dumps(v)}" for k, v in client.items())]
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_clients_file(tmp_path: Path) -> None:
    clients = load_clients(write(tmp_path / "clients.toml", toml_of(good_clients())))
    assert [c.id for c in clients] == ["hmr-epj", "stolav.a", "stolav_B"]
    hmr, a, b = clients
    assert (hmr.orgnr, hmr.orgnr_child, hmr.fingerprints) == (HMR, UNIT, ())
    assert hmr.scopes == (SCOPE_SEND, SCOPE_CONSENT_READ)
    assert a.fingerprints == (fp(0xA1),)
    assert b.fingerprints == (fp(0xB2),)  # colons and capitals as openssl prints them, read
    assert b.caller().scopes == {SCOPE_INBOX, SCOPE_SEND}


def test_an_empty_clients_file_lists_no_client(tmp_path: Path) -> None:
    assert load_clients(write(tmp_path / "clients.toml", "")) == ()


def _bad(change: Callable[[list[dict[str, Any]]], object]) -> str:
    clients = good_clients()
    change(clients)
    return toml_of(clients)


BAD_FILES: dict[str, Callable[[], str]] = {
    "an operator scope": lambda: _bad(lambda c: c[0].update(scopes=[SCOPE_SEND, SCOPE_OPS_READ])),
    "an operator act scope": lambda: _bad(lambda c: c[1].update(scopes=[SCOPE_OPS_ACT])),
    "an unknown scope": lambda: _bad(lambda c: c[0].update(scopes=["ipgw/everything"])),
    "no scopes": lambda: _bad(lambda c: c[0].update(scopes=[])),
    "no scopes key": lambda: _bad(lambda c: c[0].pop("scopes")),
    "a wrong check digit": lambda: _bad(lambda c: c[0].update(orgnr="983974898")),
    "a wrong child check digit": lambda: _bad(lambda c: c[0].update(orgnr_child="974749026")),
    "an orgnr of 8 digits": lambda: _bad(lambda c: c[0].update(orgnr="98397489")),
    "no orgnr": lambda: _bad(lambda c: c[0].pop("orgnr")),
    "a duplicate id": lambda: _bad(lambda c: c[2].update(id="stolav.a")),
    "no id": lambda: _bad(lambda c: c[0].pop("id")),
    "an id with a space": lambda: _bad(lambda c: c[0].update(id="hmr epj")),
    "shared orgnr, one unpinned": lambda: _bad(lambda c: c[2].pop("fingerprints")),
    "shared orgnr, both unpinned": lambda: _bad(
        lambda c: (c[1].pop("fingerprints"), c[2].pop("fingerprints"))
    ),
    "shared orgnr, a pin in common": lambda: _bad(
        # the same fingerprint written another way still names the same certificate
        lambda c: c[2].update(fingerprints=[fp(0xB2), fp(0xA1).upper()])
    ),
    "unpinned orgnr of a pinned pair": lambda: _bad(
        lambda c: c.append({"id": "x", "orgnr": STOLAV, "scopes": [SCOPE_SEND]})
    ),
    "a short fingerprint": lambda: _bad(lambda c: c[1].update(fingerprints=[fp(1)[:63]])),
    "a fingerprint not hex": lambda: _bad(lambda c: c[1].update(fingerprints=["g" * 64])),
    "a SHA-1 fingerprint": lambda: _bad(lambda c: c[1].update(fingerprints=["ab" * 20])),
    "an unknown key": lambda: _bad(lambda c: c[0].update(scope=[SCOPE_SEND])),
    "an unknown table": lambda: toml_of(good_clients()).replace("[[client]]", "[[clients]]", 1),
    "a top-level key": lambda: "version = 1\n" + toml_of(good_clients()),
    "not TOML": lambda: "[[client]\nid = hmr\n",
    "scopes as a string": lambda: _bad(lambda c: c[0].update(scopes=SCOPE_SEND)),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_clients_file_is_refused(case: str, tmp_path: Path) -> None:
    path = write(tmp_path / "clients.toml", BAD_FILES[case]())
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_CLIENTS_FILE"):
        load_clients(path)


def test_a_clients_file_not_in_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    path.write_bytes(toml_of(good_clients()).replace("hmr-epj", "hmr-epj-\xe6").encode("latin-1"))
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_CLIENTS_FILE"):
        load_clients(path)


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_an_unreadable_clients_file_is_refused(make: str, tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    if make == "directory":
        path.mkdir()
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_CLIENTS_FILE"):
        load_clients(path)


# ------------------------------------------------------------------------------ gate_for()


def mtls_settings(tmp_path: Path, **kw: Any) -> Settings:
    fields: dict[str, Any] = {
        "mtls_trusted_proxies": [],
        "mtls_trusted_ca": None,
        "mtls_crl_files": [],
        "mtls_clients_file": None,
    }
    return Settings(data_dir=tmp_path, **(fields | kw))


@pytest.fixture
def ca_file(tmp_path: Path, ca: Authority) -> Path:
    path = tmp_path / "client-ca.pem"
    path.write_bytes(pem(ca.certificate))
    return path


@pytest.fixture
def clients_file(tmp_path: Path) -> Path:
    return write(
        tmp_path / "clients.toml",
        toml_of([{"id": "hmr-epj", "orgnr": HMR, "scopes": [SCOPE_SEND]}]),
    )


def test_without_proxies_there_is_no_gate(tmp_path: Path) -> None:
    assert gate_for(mtls_settings(tmp_path)) is None


def test_a_ca_or_crl_without_proxies_is_a_half_configuration(tmp_path: Path, ca_file: Path) -> None:
    for extra in ({"mtls_trusted_ca": ca_file}, {"mtls_crl_files": [ca_file]}):
        with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_TRUSTED_PROXIES"):
            gate_for(mtls_settings(tmp_path, **extra))


@pytest.mark.parametrize(
    "proxy", ["10.0.0.5/8", "0.0.0.0/0", "10.0.0.0/15", "::/0", "2001:db8::/32", "::ffff:0:0/96"]
)
def test_a_proxy_network_too_wide_or_with_host_bits_is_refused(
    proxy: str, tmp_path: Path, ca_file: Path
) -> None:
    settings = mtls_settings(tmp_path, mtls_trusted_proxies=[proxy], mtls_trusted_ca=ca_file)
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_TRUSTED_PROXIES"):
        gate_for(settings)


def test_a_proxy_written_ipv4_mapped_is_that_ipv4_proxy(tmp_path: Path, ca_file: Path) -> None:
    settings = mtls_settings(
        tmp_path, mtls_trusted_proxies=["::ffff:10.0.0.5"], mtls_trusted_ca=ca_file
    )
    gate = gate_for(settings)
    assert gate is not None
    assert gate.from_proxy("10.0.0.5")
    assert gate.from_proxy("::ffff:10.0.0.5")
    assert not gate.from_proxy("10.0.0.6")


def test_a_clients_file_without_proxies_is_refused(tmp_path: Path, clients_file: Path) -> None:
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_TRUSTED_PROXIES"):
        gate_for(mtls_settings(tmp_path, mtls_clients_file=clients_file))


def test_proxies_without_a_ca_are_refused(tmp_path: Path, clients_file: Path) -> None:
    for extra in [{}, {"mtls_clients_file": clients_file}]:
        settings = mtls_settings(tmp_path, mtls_trusted_proxies=[PROXY], **extra)
        with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_TRUSTED_CA"):
            gate_for(settings)


@pytest.mark.parametrize(
    "proxies",
    [["10.0.0.0/33"], ["not-a-network"], [""], [PROXY, "300.1.1.1"], ["10.0.0.0/24/8"]],
)
def test_a_bad_proxy_network_is_refused(proxies: list[str], tmp_path: Path, ca_file: Path) -> None:
    settings = mtls_settings(tmp_path, mtls_trusted_proxies=proxies, mtls_trusted_ca=ca_file)
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_TRUSTED_PROXIES"):
        gate_for(settings)


@pytest.mark.parametrize(
    "content", ["missing", "directory", "empty", "text", "private key", "pem garbage"]
)
def test_a_ca_file_that_holds_no_certificate_is_refused(content: str, tmp_path: Path) -> None:
    path = tmp_path / "client-ca.pem"
    if content == "directory":
        path.mkdir()
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "text":
        path.write_text("the CA is the one the proxy trusts\n")
    elif content == "private key":
        path.write_bytes(
            new_key().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    elif content == "pem garbage":
        path.write_text(
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
        )
    settings = mtls_settings(tmp_path, mtls_trusted_proxies=[PROXY], mtls_trusted_ca=path)
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_TRUSTED_CA"):
        gate_for(settings)


@pytest.mark.parametrize("content", ["missing", "not a list"])
def test_a_bad_revocation_list_file_is_refused(content: str, tmp_path: Path, ca_file: Path) -> None:
    crl = tmp_path / "client.crl"
    if content == "not a list":
        crl.write_bytes(ca_file.read_bytes())  # a certificate, not a revocation list
    settings = mtls_settings(
        tmp_path, mtls_trusted_proxies=[PROXY], mtls_trusted_ca=ca_file, mtls_crl_files=[crl]
    )
    with pytest.raises(ClientCertsConfigError, match="CRL"):
        gate_for(settings)


def test_a_bad_clients_file_stops_the_gate(tmp_path: Path, ca_file: Path) -> None:
    bad = write(tmp_path / "clients.toml", BAD_FILES["an operator scope"]())
    settings = mtls_settings(
        tmp_path, mtls_trusted_proxies=[PROXY], mtls_trusted_ca=ca_file, mtls_clients_file=bad
    )
    with pytest.raises(ClientCertsConfigError, match="IPGW_MTLS_CLIENTS_FILE"):
        gate_for(settings)


def test_a_full_configuration_lets_a_listed_client_in(
    tmp_path: Path,
    ca_file: Path,
    clients_file: Path,
    ca: Authority,
    hmr: Identity,
    stolav: Identity,
    revoked: Identity,
    foreign: Identity,
) -> None:
    crl = tmp_path / "client.crl"
    crl.write_bytes(
        ca.revocation_list([revoked.certificate]).public_bytes(serialization.Encoding.DER)
    )
    settings = mtls_settings(
        tmp_path,
        mtls_trusted_proxies=["10.0.0.5", " fd00::/64 "],
        mtls_trusted_ca=ca_file,
        mtls_crl_files=[crl],
        mtls_clients_file=clients_file,
    )
    gate = gate_for(settings)
    assert gate is not None
    for proxy in ["10.0.0.5", "fd00::9"]:
        caller = gate.caller(gate.present(proxy, header(hmr.certificate)))
        assert caller == Caller(
            client_id="mtls:hmr-epj",
            subject="mtls:hmr-epj",
            orgnr_parent=HMR,
            orgnr_child=None,
            scopes=frozenset({SCOPE_SEND}),
        )
    cases = [
        ("10.0.0.6", hmr, "client-cert-not-from-proxy"),
        (PROXY, revoked, "client-cert-revoked"),
        (PROXY, foreign, "client-cert-untrusted"),
    ]
    for address, identity, code in cases:
        error = rejected(lambda a=address, i=identity: gate.present(a, header(i.certificate)))
        assert error.code == code
    presented = gate.present(PROXY, header(stolav.certificate))
    assert rejected(lambda: gate.caller(presented)).code == "client-cert-unknown"


def _touch(path: Path, later_by_seconds: int) -> None:
    """Give a rewritten file a modification time surely other than before (a file system's
    clock may be coarse, and a renewed certificate may be of the very same size)."""
    st_ = path.stat()
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + later_by_seconds * 1_000_000_000))


def test_a_renewed_ca_file_is_read_again_by_the_same_gate(
    tmp_path: Path,
    ca_file: Path,
    ca: Authority,
    other_ca: Authority,
    hmr: Identity,
    foreign: Identity,
) -> None:
    settings = mtls_settings(tmp_path, mtls_trusted_proxies=[PROXY], mtls_trusted_ca=ca_file)
    gate = gate_for(settings)
    assert gate is not None
    assert gate.present(PROXY, header(hmr.certificate)).orgnr == HMR
    assert rejected(lambda: gate.present(PROXY, header(foreign.certificate))).code == (
        "client-cert-untrusted"
    )

    ca_file.write_bytes(pem(other_ca.certificate))
    _touch(ca_file, 5)
    assert gate.present(PROXY, header(foreign.certificate)).orgnr == HMR
    assert rejected(lambda: gate.present(PROXY, header(hmr.certificate))).code == (
        "client-cert-untrusted"
    )

    # a bundle of both, as during a CA change
    ca_file.write_bytes(pem(other_ca.certificate, ca.certificate))
    _touch(ca_file, 10)
    assert gate.present(PROXY, header(hmr.certificate)).orgnr == HMR
    assert gate.present(PROXY, header(foreign.certificate)).orgnr == HMR


def test_a_renewed_revocation_list_is_read_again(
    tmp_path: Path, ca_file: Path, ca: Authority, hmr: Identity
) -> None:
    crl = tmp_path / "client.crl"
    crl.write_bytes(ca.revocation_list([]).public_bytes(serialization.Encoding.PEM))
    settings = mtls_settings(
        tmp_path, mtls_trusted_proxies=[PROXY], mtls_trusted_ca=ca_file, mtls_crl_files=[crl]
    )
    gate = gate_for(settings)
    assert gate is not None
    assert gate.present(PROXY, header(hmr.certificate)).orgnr == HMR
    crl.write_bytes(ca.revocation_list([hmr.certificate]).public_bytes(serialization.Encoding.PEM))
    _touch(crl, 5)
    assert rejected(lambda: gate.present(PROXY, header(hmr.certificate))).code == (
        "client-cert-revoked"
    )


def test_a_ca_file_gone_after_start_refuses_rather_than_fails(
    tmp_path: Path, ca_file: Path, hmr: Identity, caplog: pytest.LogCaptureFixture
) -> None:
    gate = gate_for(mtls_settings(tmp_path, mtls_trusted_proxies=[PROXY], mtls_trusted_ca=ca_file))
    assert gate is not None
    assert gate.present(PROXY, header(hmr.certificate)).orgnr == HMR
    ca_file.unlink()
    with caplog.at_level("ERROR", logger="gateway.auth.client_certs"):
        error = rejected(lambda: gate.present(PROXY, header(hmr.certificate)))
    assert error.code == "client-cert-untrusted"
    assert "cannot be checked" in caplog.text


# ------------------------------------------------------------------------------ bound tokens


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("dev"))


@pytest.fixture
def verifier(dev: DevIssuer) -> TokenVerifier:
    return TokenVerifier(issuer=DEV_ISSUER, audience=AUD, keys=dev.key_source())


def bound_token(dev: DevIssuer, cnf: Any) -> str:
    return dev.mint(
        client_id="hmr-epj", audience=AUD, scopes=[SCOPE_SEND], orgnr_parent=HMR, extra={"cnf": cnf}
    )


async def token_rejected(
    verifier: TokenVerifier, token: str, certificate_thumbprint: str | None
) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        await verifier.verify(token, certificate_thumbprint=certificate_thumbprint)
    return info.value


async def test_a_bound_token_with_its_certificate_is_accepted(
    dev: DevIssuer, verifier: TokenVerifier, hmr: Identity
) -> None:
    token = bound_token(dev, {"x5t#S256": thumbprint(hmr.certificate)})
    caller = await verifier.verify(token, certificate_thumbprint=thumbprint(hmr.certificate))
    assert caller == Caller(
        client_id="hmr-epj",
        subject="hmr-epj",
        orgnr_parent=HMR,
        orgnr_child=None,
        scopes=frozenset({SCOPE_SEND}),
    )


async def test_a_bound_token_without_its_certificate_is_unbound(
    dev: DevIssuer, verifier: TokenVerifier, hmr: Identity, hmr_second: Identity
) -> None:
    bound_to = thumbprint(hmr.certificate)
    token = bound_token(dev, {"x5t#S256": bound_to})
    for presented in [
        None,
        thumbprint(hmr_second.certificate),  # another certificate, even with the same key
        sha256_hex(hmr.certificate),  # the right digest in another form is not x5t#S256
        bound_to + "=",
        bound_to.lower(),
        "",
    ]:
        error = await token_rejected(verifier, token, presented)
        assert error.code == "token-unbound"
        assert bound_to not in str(error)  # no claim's value in a rejection


@pytest.mark.parametrize(
    "cnf",
    [
        {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
        {"x5t#S256": ""},
        {"x5t#S256": 42},
        {"x5t#S256": ["a"]},
        {},
        "x5t#S256",
        None,
        [],
    ],
)
async def test_a_token_bound_to_another_kind_of_proof_is_malformed(
    cnf: Any, dev: DevIssuer, verifier: TokenVerifier, hmr: Identity
) -> None:
    """DPoP (``jkt``) proofs are not taken here; a ``cnf`` without the thumbprint is no
    certificate binding, and is not taken as a bearer token either."""
    token = bound_token(dev, cnf)
    for presented in [thumbprint(hmr.certificate), None]:
        error = await token_rejected(verifier, token, presented)
        assert error.code == "token-malformed"


async def test_a_plain_token_may_come_with_a_certificate(
    dev: DevIssuer, verifier: TokenVerifier, hmr: Identity
) -> None:
    token = dev.mint(client_id="hmr-epj", audience=AUD, scopes=[SCOPE_SEND])
    caller = await verifier.verify(token, certificate_thumbprint=thumbprint(hmr.certificate))
    assert caller.client_id == "hmr-epj"
    assert caller.scopes == {SCOPE_SEND}


def test_an_ipv4_proxy_seen_through_a_dual_stack_listener_is_the_proxy() -> None:
    gate = ClientCertGate([ipaddress.ip_network("10.0.0.0/24")], lambda: Trust(()), ())
    assert gate.from_proxy("::ffff:10.0.0.5")
    assert not gate.from_proxy("::ffff:10.0.1.5")


# ------------------------------------------------------------------ a TLS client's certificate


def _leaf(
    ca: Authority, *, is_ca: bool = False, purposes: list[x509.ObjectIdentifier] | None = None
) -> x509.Certificate:
    key = new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, HMR)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(key_usage(sign=True, encrypt=False, ca=is_ca), critical=True)
    )
    if purposes is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def test_a_ca_certificate_is_no_client_certificate(ca: Authority, gate: ClientCertGate) -> None:
    """Signed by a trusted CA, with the client's orgnr and key usage for signing, but a CA."""
    certificate = _leaf(ca, is_ca=True)
    assert rejected(lambda: gate.present(PROXY, header(certificate))).code == (
        "client-cert-untrusted"
    )


def test_a_certificate_for_other_purposes_only_is_refused(
    ca: Authority, gate: ClientCertGate
) -> None:
    email_only = _leaf(ca, purposes=[ExtendedKeyUsageOID.EMAIL_PROTECTION])
    assert rejected(lambda: gate.present(PROXY, header(email_only))).code == (
        "client-cert-untrusted"
    )
    for_clients = _leaf(ca, purposes=[ExtendedKeyUsageOID.CLIENT_AUTH])
    presented = gate.present(PROXY, header(for_clients))
    assert gate.caller(presented).client_id == "mtls:hmr-epj"


def test_with_lists_configured_a_certificate_no_list_covers_is_refused(
    ca: Authority, other_ca: Authority, foreign: Identity
) -> None:
    """A list from one CA says nothing of another CA's certificates: status unknown."""
    lists = (ca.revocation_list([]),)
    gate = ClientCertGate(
        PROXIES,
        lambda: Trust((ca.certificate, other_ca.certificate), lists, require_revocation=True),
        (),
    )
    assert rejected(lambda: gate.present(PROXY, header(foreign.certificate))).code == (
        "client-cert-revoked"
    )
    covered = ca.issue("Dekket", orgnr=HMR)
    assert gate.present(PROXY, header(covered.certificate)).orgnr == HMR


def test_gate_for_requires_a_list_per_issuer_once_lists_are_configured(
    tmp_path: Path, ca: Authority, other_ca: Authority, foreign: Identity, hmr: Identity
) -> None:
    both = tmp_path / "cas.pem"
    both.write_bytes(pem(ca.certificate, other_ca.certificate))
    crl = tmp_path / "ca.crl"
    crl.write_bytes(ca.revocation_list([]).public_bytes(serialization.Encoding.PEM))
    gate = gate_for(
        mtls_settings(
            tmp_path,
            mtls_trusted_proxies=["10.0.0.0/24"],
            mtls_trusted_ca=both,
            mtls_crl_files=[crl],
        )
    )
    assert gate is not None
    assert gate.present(PROXY, header(hmr.certificate)).orgnr == HMR
    assert rejected(lambda: gate.present(PROXY, header(foreign.certificate))).code == (
        "client-cert-revoked"
    )


def test_a_fingerprint_as_openssl_prints_it_is_taken(hmr: Identity) -> None:
    hexed = sha256_hex(hmr.certificate)
    printed = "sha256 Fingerprint=" + ":".join(hexed[i : i + 2].upper() for i in range(0, 64, 2))
    client = MtlsClient(id="x", orgnr=HMR, fingerprints=(printed,), scopes=(SCOPE_SEND,))
    assert client.fingerprints == (hexed,)


async def test_a_token_with_a_proof_not_checked_here_is_refused(
    dev: DevIssuer, verifier: TokenVerifier, hmr: Identity
) -> None:
    """x5t#S256 beside DPoP's jkt: taking the certificate alone would skip the DPoP proof."""
    cnf = {
        "x5t#S256": thumbprint(hmr.certificate),
        "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    }
    error = await token_rejected(verifier, bound_token(dev, cnf), thumbprint(hmr.certificate))
    assert error.code == "token-malformed"


async def test_no_token_client_may_take_a_certificate_clients_name(
    dev: DevIssuer, verifier: TokenVerifier
) -> None:
    token = dev.mint(client_id="mtls:hmr-epj", audience=AUD, scopes=[SCOPE_SEND], orgnr_parent=HMR)
    error = await token_rejected(verifier, token, None)
    assert error.code == "token-malformed"


def test_a_subject_that_cannot_be_read_names_no_organisation(ca: Authority) -> None:
    """Invalid UTF-8 in the subject: cryptography fails when the subject is first read; the
    certificate then speaks for no one (no 500 on the gate or the NHN path)."""
    marker = "ÆÆÆÆ".encode()
    blob = der(ca.issue("ÆÆÆÆ", orgnr=HMR).certificate)
    assert marker in blob
    broken = x509.load_der_x509_certificate(blob.replace(marker, b"\xff" * len(marker), 1))
    with pytest.raises(ValueError, match="asn1"):
        _ = broken.subject
    assert organisation_number(broken) is None
