"""CMS (RFC 5652) for the NHN message path: sign, then encrypt; open: decrypt, then verify.

Why: on Norsk Helsenett a business document travels signed by its sender and encrypted to its
receiver's certificate (the standards README, "Transport and identity"), so only the receiver
reads it and the receiver knows who wrote it. The profile is the one NHN's own library
(Helsenorge.Messaging, ``SignThenEncryptMessageProtection``) produces and expects:

- **SignedData** over the document's bytes, content embedded (not detached), one signer,
  SHA-256, RSA PKCS#1 v1.5, signed attributes (content type, message digest, signing time), the
  signer's certificate (and any intermediate CA certificates configured with it) included;
- inside **EnvelopedData**: AES-256-CBC content encryption, the content key transported with
  RSA (PKCS#1 v1.5) to the receiver's certificate, named by issuer and serial number;
- DER; on the REST API base64, content type :data:`CONTENT_TYPE`.

Opening does the reverse and checks, in this order, what a receiver must: that it is for one
of our keys (else ``S99``), that it decrypts and is a well-formed SignedData whose signature
and message digest hold (else ``S01``), that the signer's certificate is valid now, issued for
signing and chains to a CA we trust (else ``S02``), and that no configured revocation list
names it (``S03``; a list past its next update is ``S99``: the status cannot be known).

Building and decrypting use ``cryptography``'s PKCS#7 builders. ``cryptography`` cannot verify
a CMS signature, so that part parses with ``asn1crypto`` (a well-kept ASN.1 library) and
checks with ``cryptography``'s primitives: the digest of the content against the signed
``messageDigest`` attribute, and the signature over the DER of the signed attributes, read
from the message's own bytes (re-encoding them could change them and break a good signature).
Chains are checked with ``cryptography.x509.verification`` (trust anchors, validity at the
time, basic constraints, signatures along the chain).

Error texts name codes, dates and certificate fingerprints, never a certificate's subject: a
personal certificate's subject is a person's name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from asn1crypto import cms as asn1_cms
from asn1crypto import core as asn1_core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from gateway.config import Settings

#: the content type of a signed-then-encrypted business document on the REST API
CONTENT_TYPE = "application/pkcs7-mime; smime-type=signed-and-enveloped-data"

Code = Literal["S01", "S02", "S03", "S99"]
Usage = Literal["sign", "encrypt"]

#: digests a signature may use (SHA-1 and MD5 are not accepted: collisions are practical)
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def is_cms(content_type: str | None) -> bool:
    """Whether a transport content type says the document is CMS (any smime-type)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in {"application/pkcs7-mime", "application/x-pkcs7-mime"}


class CmsRefused(Exception):
    """The document is not opened: ``code`` is the AppRec error (8221) that says why.

    ``unverified`` is the content when it could be decrypted but not trusted: for a receiver
    that must name the message it refuses (its ``MsgId``), never to be acted on.
    """

    def __init__(self, code: Code, detail: str, *, unverified: bytes | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: Code = code
        self.detail = detail
        self.unverified = unverified


class CmsConfigError(ValueError):
    """The gateway's own keys, certificates or trust anchors are missing or unusable: an
    operator's fault, never the sender's (the text names settings and files, no secrets)."""


@dataclass(frozen=True)
class Identity:
    """A party's RSA key and its certificate (RSA: what the sector's certificates are, and the
    only key type CMS key transport here takes)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    #: intermediate CA certificates sent along in a signature, so a receiver can build the chain
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class Opened:
    """A document that was for us, decrypted, with a valid signature by a trusted certificate."""

    content: bytes
    signer: x509.Certificate
    #: the organisation number the signer's certificate names (SEID: ``serialNumber``, or
    #: ``organizationIdentifier`` ``NTRNO-<orgnr>``), for checking it against the sender
    orgnr: str | None
    #: the signer's own claim of when it signed (signed attribute), for the record only
    signed_at: dt.datetime | None


def fingerprint(certificate: x509.Certificate) -> str:
    """A short SHA-256 fingerprint that names a certificate in texts without its subject."""
    return certificate.fingerprint(hashes.SHA256()).hex()[:16]


def organisation_number(certificate: x509.Certificate) -> str | None:
    """The organisation number in an enterprise certificate's subject, if it names one (None
    too for a subject that cannot be read: such a certificate speaks for no one)."""
    try:
        subject = certificate.subject
    except ValueError:  # the subject is parsed when first read; invalid UTF-8 fails here
        return None
    for attribute in subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER):
        value = str(attribute.value).strip()
        if value.upper().startswith("NTRNO-") and value[6:].isdigit():
            return value[6:]
    for attribute in subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        value = str(attribute.value).strip()
        if len(value) == 9 and value.isdigit():
            return value
    return None


# ---------------------------------------------------------------------------------- trust


@dataclass(frozen=True)
class Trust:
    """The CAs whose certificates the gateway accepts, and the revocation lists it checks."""

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    #: refuse (S99) a certificate whose issuer no configured list covers, instead of taking
    #: it as not revoked: once lists are configured, a missing one is a gap, not an answer
    require_revocation: bool = False

    def check(
        self,
        certificate: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        usage: Usage,
        at: dt.datetime | None = None,
    ) -> None:
        """A certificate fit for ``usage`` now: S02 (expired, not yet valid, another usage,
        untrusted), S03 (revoked), S99 (revocation status unknown)."""
        at = at or dt.datetime.now(dt.UTC)
        name = f"certificate {fingerprint(certificate)}"
        if at < certificate.not_valid_before_utc:
            raise CmsRefused(
                "S02", f"{name} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
            )
        if at > certificate.not_valid_after_utc:
            raise CmsRefused("S02", f"{name} expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
        _check_key_usage(certificate, usage, name)
        if not self.anchors:
            raise CmsRefused("S02", f"{name}: no trusted CA is configured to check it against")
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(self.anchors)))
            .time(at)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                # the usage was checked above; no web-PKI rule (names, client EKU) applies to
                # an enterprise certificate used for messages
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(certificate, list(intermediates)).chain
        except (verification.VerificationError, ValueError):
            # the library's text names subjects; ours does not
            raise CmsRefused(
                "S02",
                f"{name} does not chain to a trusted CA (or a CA in its chain is not valid now)",
            ) from None
        self._check_revocation(chain, at)

    def _check_revocation(self, chain: Sequence[x509.Certificate], at: dt.datetime) -> None:
        """Each certificate below the anchor against the configured CRLs of its issuer (only
        CRLs that issuer signed count)."""
        for certificate, issuer in itertools.pairwise(chain):
            covered = False
            for crl in self.crls:
                if crl.issuer != certificate.issuer:
                    continue
                try:
                    signed_by_issuer = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
                except (TypeError, UnsupportedAlgorithm):
                    signed_by_issuer = False
                if not signed_by_issuer:
                    continue
                covered = True
                if crl.next_update_utc is not None and crl.next_update_utc < at:
                    raise CmsRefused(
                        "S99",
                        f"the revocation list for certificate {fingerprint(certificate)} is out "
                        f"of date (next update was due {crl.next_update_utc:%Y-%m-%d %H:%M}Z)",
                    )
                if crl.get_revoked_certificate_by_serial_number(certificate.serial_number):
                    raise CmsRefused(
                        "S03", f"certificate {fingerprint(certificate)} has been revoked"
                    )
            if self.require_revocation and not covered:
                raise CmsRefused(
                    "S99",
                    f"no configured revocation list covers certificate {fingerprint(certificate)}",
                )


def _check_key_usage(certificate: x509.Certificate, usage: Usage, name: str) -> None:
    """Key usage, when the certificate states it (RFC 5280: absent means unrestricted)."""
    try:
        ku = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    except ValueError:  # extensions are parsed when first read: a damaged one fails here
        raise CmsRefused("S02", f"{name} is malformed (its extensions cannot be read)") from None
    if usage == "sign" and not (ku.digital_signature or ku.content_commitment):
        raise CmsRefused("S02", f"{name} is not issued for signing (key usage)")
    if usage == "encrypt" and not ku.key_encipherment:
        raise CmsRefused("S02", f"{name} is not issued for encryption (key usage)")


# ---------------------------------------------------------------------------------- sealing


def seal(content: bytes, signer: Identity, recipient: x509.Certificate) -> bytes:
    """``content`` signed by ``signer``, then encrypted to ``recipient`` (DER EnvelopedData).

    ``Binary``: the bytes are signed as they are (without it, line ends would be rewritten to
    CRLF, S/MIME text style, and the receiver would get another document than we signed).
    """
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(signer.certificate, signer.key, hashes.SHA256(), rsa_padding=padding.PKCS1v15())
    )
    for certificate in signer.chain:
        builder = builder.add_certificate(certificate)
    signed = builder.sign(
        serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCapabilities]
    )
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(signed)
        .add_recipient(recipient)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def open_sealed(
    data: bytes,
    recipients: Sequence[Identity],
    trust: Trust,
    *,
    at: dt.datetime | None = None,
) -> Opened:
    """Decrypt with whichever of ``recipients`` it is for, then verify (see the module)."""
    return verify(decrypt(data, recipients), trust, at=at)


def decrypt(data: bytes, recipients: Sequence[Identity]) -> bytes:
    """The SignedData inside an EnvelopedData for one of ``recipients``."""
    info = _parse(data, "the document is not CMS")
    if info["content_type"].native != "enveloped_data":
        raise CmsRefused("S01", "the document is not CMS EnvelopedData (signed and encrypted)")
    try:
        recipient_infos = list(info["content"]["recipient_infos"])
        mine = next((r for r in recipients if _addressed_to(recipient_infos, r.certificate)), None)
    except Exception:  # untrusted input, parsed lazily: any fault is malformed
        raise CmsRefused("S01", "the CMS EnvelopedData is malformed") from None
    if mine is None:
        raise CmsRefused(
            "S99", "the document is encrypted to a certificate that is not the gateway's"
        )
    try:
        return pkcs7.pkcs7_decrypt_der(data, mine.certificate, mine.key, [])
    except UnsupportedAlgorithm:
        raise CmsRefused("S99", "the document's content encryption is not supported") from None
    except Exception:  # ValueError, or anything else the library finds wrong
        # a wrong content key and altered ciphertext look the same here: damaged in transit
        # or changed on the way, the receiver cannot tell which
        raise CmsRefused(
            "S01", "the encrypted document cannot be opened (damaged or altered)"
        ) from None


def verify(signed: bytes, trust: Trust, *, at: dt.datetime | None = None) -> Opened:
    """The content of a SignedData whose one signature holds and whose signer ``trust``
    accepts for signing; CmsRefused (with the content as ``unverified``) otherwise."""
    info = _parse(signed, "the decrypted content is not CMS SignedData")
    if info["content_type"].native != "signed_data":
        raise CmsRefused("S01", "the decrypted content is not CMS SignedData: it is not signed")
    try:
        content, signer, intermediates, signed_at = _check_signature(info["content"])
    except CmsRefused:
        raise
    except Exception:
        # untrusted input that asn1crypto parses lazily: a malformed part surfaces wherever it
        # is read, as whatever error; it is refused, never let out to stop the poll
        raise CmsRefused("S01", "the CMS SignedData is malformed") from None
    try:
        trust.check(signer, intermediates, usage="sign", at=at)
    except CmsRefused as e:
        raise CmsRefused(e.code, f"the signing {e.detail}", unverified=content) from None
    return Opened(content, signer, organisation_number(signer), signed_at)


def _check_signature(
    signed_data: Any,
) -> tuple[bytes, x509.Certificate, list[x509.Certificate], dt.datetime | None]:
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "data":
        raise CmsRefused("S01", "the signed content is not plain data")
    content = encap["content"].native
    if not isinstance(content, bytes):
        raise CmsRefused("S01", "the signature is detached: the document is not in it")
    signer_infos = list(signed_data["signer_infos"])
    if len(signer_infos) != 1:
        raise CmsRefused(
            "S01", f"the document has {len(signer_infos)} signatures (exactly one is expected)"
        )
    signer_info = signer_infos[0]
    certificates = [c.chosen for c in signed_data["certificates"] or [] if c.name == "certificate"]
    found = _signer_certificate(signer_info["sid"], certificates)
    if found is None:
        raise CmsRefused(
            "S01", "the signer's certificate is not in the document", unverified=content
        )
    signer = x509.load_der_x509_certificate(found.dump())
    intermediates = [
        x509.load_der_x509_certificate(c.dump()) for c in certificates if c is not found
    ]
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise CmsRefused(
            "S01", "the signature's digest algorithm is not accepted", unverified=content
        )
    hash_algorithm = _HASHES[digest_name]()
    attributes = signer_info["signed_attrs"]
    signed_at = None
    if isinstance(attributes, asn1_core.Void):
        to_verify = content  # no signed attributes: the signature is over the content itself
    else:
        values = _attributes(attributes)
        content_types = values.get("content_type", [])
        digests = values.get("message_digest", [])
        if len(content_types) != 1 or content_types[0] != "data":
            raise CmsRefused(
                "S01", "the signed content-type attribute is missing or wrong", unverified=content
            )
        computed = hashlib.new(digest_name, content).digest()
        if len(digests) != 1 or not hmac.compare_digest(digests[0], computed):
            raise CmsRefused(
                "S01", "the document does not match its signed digest", unverified=content
            )
        times = values.get("signing_time", [])
        signed_at = times[0] if len(times) == 1 and isinstance(times[0], dt.datetime) else None
        # the signature covers the attributes DER-encoded as a SET OF (RFC 5652, 5.4): their
        # bytes as received, with the [0] IMPLICIT tag turned back into SET
        raw = attributes.dump()
        to_verify = b"\x31" + raw[1:]
    _verify_signature(
        signer,
        signer_info["signature_algorithm"],
        signer_info["signature"].native,
        to_verify,
        hash_algorithm,
        content,
    )
    return content, signer, intermediates, signed_at


def _attributes(attributes: Any) -> dict[str, list[Any]]:
    values: dict[str, list[Any]] = {}
    for attribute in attributes:
        name = attribute["type"].native
        values.setdefault(name, []).extend(v.native for v in attribute["values"])
    return values


def _verify_signature(
    signer: x509.Certificate,
    algorithm: Any,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm,
    content: bytes,
) -> None:
    kind = algorithm.signature_algo
    key = signer.public_key()
    try:
        stated = algorithm.hash_algo
    except ValueError:
        stated = None  # rsaEncryption/rsassa_pss name no hash here: the digest algorithm rules
    if stated is not None and stated != hash_algorithm.name:
        raise CmsRefused("S01", "the signature and digest algorithms disagree", unverified=content)
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = algorithm["parameters"]
            pss_hash = _HASHES.get(params["hash_algorithm"]["algorithm"].native)
            if pss_hash is None:
                raise CmsRefused(
                    "S01", "the signature's hash algorithm is not accepted", unverified=content
                )
            key.verify(
                signature,
                data,
                padding.PSS(mgf=padding.MGF1(pss_hash()), salt_length=params["salt_length"].native),
                pss_hash(),
            )
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        else:
            raise CmsRefused("S01", "the signature algorithm is not supported", unverified=content)
    except InvalidSignature:
        raise CmsRefused(
            "S01", "the signature does not match the document", unverified=content
        ) from None


def _signer_certificate(sid: Any, certificates: list[Any]) -> Any | None:
    if sid.name == "issuer_and_serial_number":
        wanted = sid.chosen
        for certificate in certificates:
            tbs = certificate["tbs_certificate"]
            if (
                tbs["serial_number"].native == wanted["serial_number"].native
                and tbs["issuer"] == wanted["issuer"]
            ):
                return certificate
    elif sid.name == "subject_key_identifier":
        for certificate in certificates:
            if certificate.key_identifier == sid.chosen.native:
                return certificate
    return None


def _addressed_to(recipient_infos: list[Any], certificate: x509.Certificate) -> bool:
    """Whether one of the key-transport recipients names ``certificate``."""
    mine = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    for info in recipient_infos:
        if info.name != "ktri":
            continue
        rid = info.chosen["rid"]
        if rid.name == "issuer_and_serial_number":
            if (
                rid.chosen["serial_number"].native == mine.serial_number
                and rid.chosen["issuer"] == mine.issuer
            ):
                return True
        elif rid.name == "subject_key_identifier" and mine.key_identifier == rid.chosen.native:
            return True
    return False


def _parse(data: bytes, what: str) -> Any:
    try:
        info = asn1_cms.ContentInfo.load(data, strict=True)
        info["content_type"].native  # noqa: B018 -- parsed lazily: fail here, not later
    except Exception:  # untrusted input: whatever fails, it is not CMS
        raise CmsRefused("S01", what) from None
    return info


# ---------------------------------------------------------------------------------- files

_T = TypeVar("_T")


def load_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates in a PEM file (a bundle, leaf first) or a DER file (one)."""
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def load_crl(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def load_trust(
    anchors: Path, crls: Sequence[Path], settings: str, *, require_revocation: bool = False
) -> Trust:
    """The CAs in ``anchors`` and the lists in ``crls``; ``settings`` names where they were
    configured, for the error."""
    try:
        return Trust(
            tuple(load_certificates(anchors)),
            tuple(load_crl(p) for p in crls),
            require_revocation=require_revocation,
        )
    except OSError as e:
        raise CmsConfigError(f"{settings}: cannot read {e.filename}") from None
    except ValueError:
        raise CmsConfigError(f"{settings}: not certificates / revocation lists") from None


def load_identity(key_path: Path, cert_path: Path | None, password: bytes | None) -> Identity:
    """A key with its certificate: a PKCS#12 file (``.p12``/``.pfx``, how the CAs deliver
    enterprise certificates) on its own, or a PEM key and a PEM certificate file (leaf first,
    then any intermediates)."""
    data = key_path.read_bytes()
    if key_path.suffix.lower() in {".p12", ".pfx"}:
        key, certificate, extra = pkcs12.load_key_and_certificates(data, password)
        chain = list(extra)
        if cert_path is not None:
            certificate, *chain = load_certificates(cert_path)
    else:
        key = serialization.load_pem_private_key(data, password)
        if cert_path is None:
            raise ValueError("a PEM key needs its certificate file")
        certificate, *chain = load_certificates(cert_path)
    if not isinstance(key, rsa.RSAPrivateKey) or certificate is None:
        raise ValueError("the key must be an RSA key with its certificate")
    if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("the key does not belong to the certificate")
    return Identity(key, certificate, tuple(chain))


class FileCache:
    """What was loaded from files, loaded again only when one of them changes (a renewed
    certificate is picked up without a restart; an unchanged one is not re-read per message)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = {}

    def get(self, key: tuple[Any, ...], paths: Iterable[Path], load: Callable[[], _T]) -> _T:
        stamp = tuple(_stamp(p) for p in paths)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None and cached[0] == stamp:
                value: _T = cached[1]
                return value
        value = load()
        with self._lock:
            self._entries[key] = (stamp, value)
        return value


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_mtime_ns, st.st_size)


# ---------------------------------------------------------------------------------- settings


class GatewayCms:
    """The gateway's CMS material from its settings (``IPGW_NHN_*``), loaded when first
    needed and again when a file changes; each part raises CmsConfigError naming the setting
    that is missing or wrong."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache = FileCache()

    def _password(self) -> bytes | None:
        secret = self.settings.nhn_key_password
        return secret.get_secret_value().encode() if secret is not None else None

    def _identity(self, key: Path, cert: Path | None, what: str) -> Identity:
        paths = [key] if cert is None else [key, cert]

        def load() -> Identity:
            try:
                return load_identity(key, cert, self._password())
            except OSError as e:
                raise CmsConfigError(f"{what}: cannot read {e.filename}") from None
            except (ValueError, TypeError, UnsupportedAlgorithm) as e:
                # the library's texts say what is wrong with a key, never the key itself
                raise CmsConfigError(f"{what}: {e}") from None

        return self._cache.get(("identity", what), paths, load)

    def signer(self) -> Identity:
        """The gateway's signing key and certificate (IPGW_NHN_SIGNING_KEY / _CERT)."""
        s = self.settings
        if s.nhn_signing_key is None:
            raise CmsConfigError(
                "the gateway's signing key (IPGW_NHN_SIGNING_KEY, IPGW_NHN_SIGNING_CERT) is not "
                "set: nothing can be signed for the NHN message service"
            )
        return self._identity(s.nhn_signing_key, s.nhn_signing_cert, "IPGW_NHN_SIGNING_KEY")

    def recipients(self) -> tuple[Identity, ...]:
        """The keys documents for the gateway are encrypted to (the encryption pair, else the
        signing pair)."""
        s = self.settings
        if s.nhn_encryption_key is not None:
            return (
                self._identity(
                    s.nhn_encryption_key, s.nhn_encryption_cert, "IPGW_NHN_ENCRYPTION_KEY"
                ),
            )
        if s.nhn_signing_key is None:
            raise CmsConfigError(
                "the gateway has no decryption key (IPGW_NHN_ENCRYPTION_KEY, or "
                "IPGW_NHN_SIGNING_KEY): documents for it cannot be opened"
            )
        return (self.signer(),)

    def trust(self) -> Trust:
        """The trusted CAs (IPGW_NHN_TRUSTED_CA) and revocation lists (IPGW_NHN_CRL_FILES)."""
        s = self.settings
        if s.nhn_trusted_ca is None:
            raise CmsConfigError(
                "no trusted CA is configured (IPGW_NHN_TRUSTED_CA): no certificate can be checked"
            )
        anchors_file = s.nhn_trusted_ca
        crl_files = list(s.nhn_crl_files)
        return self._cache.get(
            ("trust",),
            [anchors_file, *crl_files],
            lambda: load_trust(anchors_file, crl_files, "IPGW_NHN_TRUSTED_CA/IPGW_NHN_CRL_FILES"),
        )

    def certificate(self, path: Path) -> x509.Certificate:
        """A receiver's encryption certificate (the first in the file)."""

        def load() -> x509.Certificate:
            try:
                return load_certificates(path)[0]
            except OSError:
                raise CmsConfigError(f"cannot read the certificate file {path}") from None
            except (ValueError, IndexError):
                raise CmsConfigError(f"{path} holds no certificate") from None

        return self._cache.get(("certificate", str(path)), [path], load)
