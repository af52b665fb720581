"""CMS sign-then-encrypt and decrypt-then-verify (gateway/cms.py), with certificates made here.

Expected codes come from the standards README (8221: S01 signature error, S02 invalid
certificate, S03 revoked, S99 other signature/certificate error) and the profile from the
sector's description (signed, then encrypted with AES-256-CBC to the receiver's certificate),
not from the module. Where it matters the structure is read with ``asn1crypto`` or checked with
the ``openssl`` command line, independently of the code under test.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cms import (
    CONTENT_TYPE,
    CmsConfigError,
    CmsRefused,
    GatewayCms,
    Identity,
    Opened,
    Trust,
    decrypt,
    is_cms,
    open_sealed,
    organisation_number,
    seal,
    verify,
)
from gateway.config import Settings
from gateway.demo.pki import Authority, SimulatedPki

NOW = dt.datetime.now(dt.UTC)
DOCUMENT = b'<?xml version="1.0" encoding="UTF-8"?>\n<MsgHead>\r\n  <Id>\xc3\xa6</Id>\n</MsgHead>\n'


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority.create("Test CA")


@pytest.fixture(scope="module")
def other_ca() -> Authority:
    return Authority.create("Another CA")


@pytest.fixture(scope="module")
def sender(ca: Authority) -> Identity:
    return ca.issue("Helse Test HF", orgnr="983974899")


@pytest.fixture(scope="module")
def receiver(ca: Authority) -> Identity:
    return ca.issue("KE Test kommune", orgnr="964338531")


@pytest.fixture(scope="module")
def trust(ca: Authority) -> Trust:
    return Trust((ca.certificate,))


def signed_data(content: bytes, signer: Identity, *, options: list[pkcs7.PKCS7Options]) -> bytes:
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(signer.certificate, signer.key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())
        .sign(serialization.Encoding.DER, options)
    )


def envelope(inner: bytes, recipient: x509.Certificate) -> bytes:
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(inner)
        .add_recipient(recipient)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def refused(data: bytes, receiver: Identity, trust: Trust) -> CmsRefused:
    with pytest.raises(CmsRefused) as info:
        open_sealed(data, [receiver], trust)
    return info.value


# --------------------------------------------------------------------------- the round trip


def test_round_trip_gives_the_exact_bytes_and_names_the_signer(
    sender: Identity, receiver: Identity, trust: Trust
) -> None:
    opened = open_sealed(seal(DOCUMENT, sender, receiver.certificate), [receiver], trust)
    assert opened.content == DOCUMENT  # CRLF and non-ASCII untouched
    assert opened.signer == sender.certificate
    assert opened.orgnr == "983974899"
    assert opened.signed_at is not None
    # the signing time is when seal() ran (now), not when the module was collected (NOW)
    assert abs(opened.signed_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_the_profile_signed_then_enveloped_with_aes_256(
    sender: Identity, receiver: Identity
) -> None:
    sealed = seal(DOCUMENT, sender, receiver.certificate)
    assert DOCUMENT not in sealed
    assert b"MsgHead" not in sealed
    outer = asn1_cms.ContentInfo.load(sealed)
    assert outer["content_type"].native == "enveloped_data"
    env = outer["content"]
    algorithm = env["encrypted_content_info"]["content_encryption_algorithm"]
    assert algorithm["algorithm"].dotted == "2.16.840.1.101.3.4.1.42"  # id-aes256-CBC
    [recipient] = env["recipient_infos"]
    assert recipient.name == "ktri"
    rid = recipient.chosen["rid"].chosen
    assert rid["serial_number"].native == receiver.certificate.serial_number
    # inside: SignedData with the content embedded and the signer's certificate
    inner = asn1_cms.ContentInfo.load(decrypt(sealed, [receiver]))
    assert inner["content_type"].native == "signed_data"
    sd = inner["content"]
    assert sd["encap_content_info"]["content"].native == DOCUMENT
    assert [c.chosen.dump() for c in sd["certificates"]] == [
        sender.certificate.public_bytes(serialization.Encoding.DER)
    ]
    [signer_info] = sd["signer_infos"]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha256"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=5000))
def test_any_payload_round_trips(
    payload: bytes, sender: Identity, receiver: Identity, trust: Trust
) -> None:
    sealed = seal(payload, sender, receiver.certificate)
    assert open_sealed(sealed, [receiver], trust).content == payload


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_altered_messages_are_refused_or_give_the_original_never_other_content(
    data: st.DataObject, sender: Identity, receiver: Identity, trust: Trust
) -> None:
    """Whatever bytes change (outside, or inside the encryption, as a sender with our public
    certificate could make them), opening refuses with a code or yields the signed document:
    it never yields other content and never fails in another way (which would stop a poll)."""
    sealed = seal(DOCUMENT, sender, receiver.certificate)
    inside = data.draw(st.booleans(), label="inside")
    blob = bytearray(decrypt(sealed, [receiver]) if inside else sealed)
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        at = data.draw(st.integers(0, len(blob) - 1), label="at")
        blob[at] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="truncate"):
        del blob[data.draw(st.integers(0, len(blob) - 1), label="cut") :]
    opened: Opened | CmsRefused
    try:
        if inside:
            opened = verify(bytes(blob), trust)
        else:
            opened = open_sealed(bytes(blob), [receiver], trust)
    except CmsRefused as e:
        opened = e
    if isinstance(opened, CmsRefused):
        assert opened.code in {"S01", "S02", "S03", "S99"}
    else:
        assert opened.content == DOCUMENT
        assert opened.signer == sender.certificate


def test_content_type() -> None:
    assert is_cms(CONTENT_TYPE)
    assert is_cms("application/pkcs7-mime")
    assert not is_cms("application/xml")
    assert not is_cms(None)


# --------------------------------------------------------------------------- S01


def test_tampered_ciphertext_is_refused_s01(
    sender: Identity, receiver: Identity, trust: Trust
) -> None:
    sealed = seal(DOCUMENT * 20, sender, receiver.certificate)
    outer = asn1_cms.ContentInfo.load(sealed)
    ciphertext = outer["content"]["encrypted_content_info"]["encrypted_content"].native
    at = sealed.index(ciphertext)
    for offset in (16, len(ciphertext) // 2, len(ciphertext) - 1):
        tampered = bytearray(sealed)
        tampered[at + offset] ^= 0x01
        assert refused(bytes(tampered), receiver, trust).code == "S01"


def _resign(sender: Identity, receiver: Identity, change: str) -> bytes:
    """A SignedData altered after signing, then encrypted properly: what a receiver gets when
    someone changed the document or its signature on the way."""
    info = asn1_cms.ContentInfo.load(
        signed_data(DOCUMENT, sender, options=[pkcs7.PKCS7Options.Binary])
    )
    sd = info["content"]
    signer_info = sd["signer_infos"][0]
    if change == "signature":
        signature = bytearray(signer_info["signature"].native)
        signature[10] ^= 0x01
        signer_info["signature"] = bytes(signature)
    else:
        sd["encap_content_info"]["content"] = DOCUMENT.replace(b"MsgHead", b"MsgHeaD")
    return envelope(info.dump(force=True), receiver.certificate)


@pytest.mark.parametrize("change", ["signature", "content"])
def test_tampered_signature_or_content_is_refused_s01(
    sender: Identity, receiver: Identity, trust: Trust, change: str
) -> None:
    e = refused(_resign(sender, receiver, change), receiver, trust)
    assert e.code == "S01"
    assert e.unverified is not None  # the receiver may name the message it refuses


def test_encrypted_but_not_signed_is_refused_s01(receiver: Identity, trust: Trust) -> None:
    assert refused(envelope(DOCUMENT, receiver.certificate), receiver, trust).code == "S01"


def test_detached_signature_is_refused_s01(
    sender: Identity, receiver: Identity, trust: Trust
) -> None:
    detached = signed_data(
        DOCUMENT,
        sender,
        options=[pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.DetachedSignature],
    )
    assert refused(envelope(detached, receiver.certificate), receiver, trust).code == "S01"


def test_signature_without_the_signers_certificate_is_refused_s01(
    sender: Identity, receiver: Identity, trust: Trust
) -> None:
    bare = signed_data(
        DOCUMENT, sender, options=[pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCerts]
    )
    assert refused(envelope(bare, receiver.certificate), receiver, trust).code == "S01"


def test_two_signers_are_refused_s01(
    sender: Identity, receiver: Identity, trust: Trust, ca: Authority
) -> None:
    second = ca.issue("Second signer", orgnr="974760673")
    both = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(DOCUMENT)
        .add_signer(sender.certificate, sender.key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())
        .add_signer(second.certificate, second.key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    assert refused(envelope(both, receiver.certificate), receiver, trust).code == "S01"


@pytest.mark.parametrize("data", [b"", b"<MsgHead/>", b"\x30\x03\x02\x01\x00"])
def test_not_cms_at_all_is_refused_s01(data: bytes, receiver: Identity, trust: Trust) -> None:
    assert refused(data, receiver, trust).code == "S01"


# --------------------------------------------------------------------------- S02


def test_expired_signing_certificate_is_refused_s02(
    ca: Authority, receiver: Identity, trust: Trust
) -> None:
    expired = ca.issue(
        "Kari Nordmann",  # a personal certificate: its subject must not reach any text
        not_before=NOW - dt.timedelta(days=400),
        not_after=NOW - dt.timedelta(days=1),
    )
    e = refused(seal(DOCUMENT, expired, receiver.certificate), receiver, trust)
    assert e.code == "S02"
    assert "expired" in e.detail
    assert "Kari" not in e.detail
    assert "Nordmann" not in str(e)


def test_not_yet_valid_signing_certificate_is_refused_s02(
    ca: Authority, receiver: Identity, trust: Trust
) -> None:
    future = ca.issue("Too early", not_before=NOW + dt.timedelta(days=1))
    assert refused(seal(DOCUMENT, future, receiver.certificate), receiver, trust).code == "S02"


def test_certificate_from_an_untrusted_ca_is_refused_s02(
    other_ca: Authority, receiver: Identity, trust: Trust
) -> None:
    foreign = other_ca.issue("Helse Test HF", orgnr="983974899")  # same name, other CA
    e = refused(seal(DOCUMENT, foreign, receiver.certificate), receiver, trust)
    assert e.code == "S02"
    assert "trusted CA" in e.detail


def test_self_signed_look_alike_is_refused_s02(
    ca: Authority, receiver: Identity, trust: Trust
) -> None:
    """A certificate that copies the CA's name but was signed by another key."""
    impostor = Authority.create("Test CA")
    assert impostor.certificate.subject == ca.certificate.subject
    forged = impostor.issue("Helse Test HF", orgnr="983974899")
    assert refused(seal(DOCUMENT, forged, receiver.certificate), receiver, trust).code == "S02"


def test_certificate_not_for_signing_is_refused_s02(
    ca: Authority, receiver: Identity, trust: Trust
) -> None:
    encryption_only = ca.issue("Encryption only", sign=False)
    e = refused(seal(DOCUMENT, encryption_only, receiver.certificate), receiver, trust)
    assert (e.code, "signing" in e.detail) == ("S02", True)


def test_no_trust_anchor_refuses_s02(sender: Identity, receiver: Identity) -> None:
    sealed = seal(DOCUMENT, sender, receiver.certificate)
    assert refused(sealed, receiver, Trust(())).code == "S02"


def test_encryption_usage_is_checked(ca: Authority, trust: Trust) -> None:
    signing_only = ca.issue("Signing only", encrypt=False)
    with pytest.raises(CmsRefused) as info:
        trust.check(signing_only.certificate, usage="encrypt")
    assert info.value.code == "S02"
    trust.check(signing_only.certificate, usage="sign")


# --------------------------------------------------------------------------- S03, S99


def test_revoked_certificate_is_refused_s03(
    ca: Authority, other_ca: Authority, receiver: Identity
) -> None:
    revoked = ca.issue("Revoked HF", orgnr="983974899")
    sealed = seal(DOCUMENT, revoked, receiver.certificate)
    # a list from another CA naming the same serial does not count, not even when that CA
    # has taken our CA's name: only a list the issuer signed does
    for foreign in (other_ca, Authority.create("Test CA")):
        foreign_list = foreign.revocation_list([revoked.certificate])
        open_sealed(sealed, [receiver], Trust((ca.certificate,), (foreign_list,)))
    crl = ca.revocation_list([revoked.certificate])
    assert refused(sealed, receiver, Trust((ca.certificate,), (crl,))).code == "S03"
    # others from the same CA are not affected
    fine = seal(DOCUMENT, ca.issue("Fine HF"), receiver.certificate)
    open_sealed(fine, [receiver], Trust((ca.certificate,), (crl,)))


def test_out_of_date_revocation_list_refuses_s99(
    ca: Authority, sender: Identity, receiver: Identity
) -> None:
    stale = ca.revocation_list([], next_update=NOW - dt.timedelta(hours=1))
    sealed = seal(DOCUMENT, sender, receiver.certificate)
    assert refused(sealed, receiver, Trust((ca.certificate,), (stale,))).code == "S99"


def test_wrong_recipient_key_cannot_decrypt(
    ca: Authority, sender: Identity, receiver: Identity, trust: Trust
) -> None:
    someone_else = ca.issue("Another KE")
    sealed = seal(DOCUMENT, sender, receiver.certificate)
    e = refused(sealed, someone_else, trust)
    assert e.code == "S99"
    # and not by a trick either: the other key with the right certificate does not open it
    mismatched = Identity(someone_else.key, receiver.certificate)
    assert refused(sealed, mismatched, trust).code == "S01"
    with pytest.raises(ValueError):  # noqa: PT011 -- the library's own refusal
        pkcs7.pkcs7_decrypt_der(sealed, someone_else.certificate, someone_else.key, [])


def test_the_right_one_of_several_keys_opens_it(
    ca: Authority, sender: Identity, receiver: Identity, trust: Trust
) -> None:
    """A key rollover: documents to the old and to the new certificate both open."""
    new = ca.issue("KE Test kommune, new key")
    for target in (receiver, new):
        sealed = seal(DOCUMENT, sender, target.certificate)
        assert open_sealed(sealed, [new, receiver], trust).content == DOCUMENT


def test_other_accepted_signature_forms(
    ca: Authority, sender: Identity, receiver: Identity, trust: Trust
) -> None:
    """RSA-PSS with SHA-512, and ECDSA (an EC signing certificate), open as well."""
    pss = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(DOCUMENT)
        .add_signer(
            sender.certificate,
            sender.key,
            hashes.SHA512(),
            rsa_padding=padding.PSS(padding.MGF1(hashes.SHA512()), padding.PSS.DIGEST_LENGTH),
        )
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    opened = open_sealed(envelope(pss, receiver.certificate), [receiver], trust)
    assert (opened.content, opened.signer) == (DOCUMENT, sender.certificate)

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EC signer")]))
        .issuer_name(ca.certificate.subject)
        .public_key(ec_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )
    ecdsa = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(DOCUMENT)
        .add_signer(ec_cert, ec_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    opened = open_sealed(envelope(ecdsa, receiver.certificate), [receiver], trust)
    assert (opened.content, opened.signer) == (DOCUMENT, ec_cert)


# --------------------------------------------------------------------------- interoperability

OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="no openssl command line")
def test_openssl_opens_ours_and_we_open_openssls(
    tmp_path: Path, sender: Identity, receiver: Identity, ca: Authority, trust: Trust
) -> None:
    """Another CMS implementation reads what we write, and writes what we read."""
    assert OPENSSL is not None

    def pem(name: str, data: bytes) -> str:
        (tmp_path / name).write_bytes(data)
        return str(tmp_path / name)

    def key_pem(identity: Identity) -> bytes:
        return identity.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_file = pem("ca.pem", ca.certificate.public_bytes(serialization.Encoding.PEM))
    r_cert = pem("r.pem", receiver.certificate.public_bytes(serialization.Encoding.PEM))
    r_key = pem("r.key", key_pem(receiver))
    s_cert = pem("s.pem", sender.certificate.public_bytes(serialization.Encoding.PEM))
    s_key = pem("s.key", key_pem(sender))

    def run(*args: str, data: bytes) -> bytes:
        return subprocess.run(
            [OPENSSL, "cms", *args], input=data, capture_output=True, check=True
        ).stdout

    ours = seal(DOCUMENT, sender, receiver.certificate)
    inner = run("-decrypt", "-inform", "DER", "-recip", r_cert, "-inkey", r_key, data=ours)
    verified = run(
        "-verify", "-inform", "DER", "-CAfile", ca_file, "-purpose", "any", "-binary", data=inner
    )
    assert verified == DOCUMENT

    signed = run(
        "-sign", "-binary", "-nodetach", "-outform", "DER", "-md", "sha256",
        "-signer", s_cert, "-inkey", s_key, data=DOCUMENT,
    )  # fmt: skip
    theirs = run("-encrypt", "-binary", "-aes256", "-outform", "DER", r_cert, data=signed)
    opened = open_sealed(theirs, [receiver], trust)
    assert opened.content == DOCUMENT
    assert opened.signer == sender.certificate

    # SHA-1 is refused, whoever wrote it
    weak = run(
        "-sign", "-binary", "-nodetach", "-outform", "DER", "-md", "sha1",
        "-signer", s_cert, "-inkey", s_key, data=DOCUMENT,
    )  # fmt: skip
    sealed_weak = run("-encrypt", "-binary", "-aes256", "-outform", "DER", r_cert, data=weak)
    assert refused(sealed_weak, receiver, trust).code == "S01"


# --------------------------------------------------------------------------- certificates, settings


def test_organisation_number_from_either_seid_form(ca: Authority) -> None:
    assert organisation_number(ca.issue("A", orgnr="983974899").certificate) == "983974899"
    assert organisation_number(ca.issue("B").certificate) is None
    key = ca.issue("C").key
    seid2 = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "NTRNO-974760673")])
        )
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(ca.key, hashes.SHA256())
    )
    assert organisation_number(seid2) == "974760673"


def test_gateway_settings_load_and_say_what_is_missing(tmp_path: Path) -> None:
    pki = SimulatedPki(tmp_path / "pki")
    bare = GatewayCms(Settings(data_dir=tmp_path))
    for part in (bare.signer, bare.recipients, bare.trust):
        with pytest.raises(CmsConfigError, match="IPGW_NHN_"):
            part()
    configured = GatewayCms(Settings(data_dir=tmp_path, **pki.gateway_settings(99999999)))
    assert configured.signer().certificate == pki.identity(99999999).certificate
    assert configured.recipients() == (configured.signer(),)
    assert configured.trust().anchors == (pki.authority.certificate,)
    # a key that does not belong to its certificate is a configuration error, said so
    pki.identity(1)
    wrong = GatewayCms(
        Settings(
            data_dir=tmp_path,
            nhn_signing_key=pki.key_file(1),
            nhn_signing_cert=pki.cert_file(99999999),
        )
    )
    with pytest.raises(CmsConfigError, match="does not belong"):
        wrong.signer()


def test_a_renewed_certificate_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    pki = SimulatedPki(tmp_path / "pki")
    cms = GatewayCms(Settings(data_dir=tmp_path, **pki.gateway_settings(99999999)))
    first = cms.signer()
    assert cms.signer() is first  # not read again while unchanged
    renewed = pki.authority.issue("Renewed")
    pki.replace(99999999, renewed)
    assert cms.signer().certificate == renewed.certificate


def test_the_simulated_pki_is_kept_across_restarts(tmp_path: Path) -> None:
    first = SimulatedPki(tmp_path)
    identity = first.identity(42)
    again = SimulatedPki(tmp_path)
    assert again.authority.certificate == first.authority.certificate
    assert again.identity(42).certificate == identity.certificate
    assert again.known(43) is None
