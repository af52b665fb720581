"""A simulated PKI: a test CA and a key pair per HER-id, kept in a folder.

The demo and the tests need what Buypass/Commfides (the CAs) and Adresseregisteret (where a
party's certificates are published) give a real deployment, so that the NHN path runs with
CMS on. Files, laid out as the gateway's settings expect them:

- ``ca.pem``: the CA certificate (``IPGW_NHN_TRUSTED_CA``);
- ``certs/<her_id>.pem``: each party's certificate (``IPGW_NHN_CERT_DIR``, the directory of
  receivers' encryption certificates);
- ``keys/<her_id>.key`` (PEM, unencrypted: test keys only): each party's private key.

One certificate per party, for signing and for encryption both (key usage says both), which
real enterprise certificates split in two; the gateway takes either form. A folder that
already holds a CA and certificates still valid for a week is reused, so a demo restart keeps
its keys; an expiring one is made anew.

Test keys only: never point a real deployment at these files.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.cms import Identity, Trust

#: a certificate closer than this to its end is made anew at start
_FRESH_FOR = dt.timedelta(days=7)
_KEY_BITS = 2048


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


def key_usage(*, sign: bool = True, encrypt: bool = True, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=sign,
        key_encipherment=encrypt,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class Authority:
    """A CA: its key and self-signed certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(
        cls,
        name: str = "IPGW Test CA",
        *,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> Authority:
        now = dt.datetime.now(dt.UTC)
        key = new_key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ip-gateway test PKI"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(sign=False, encrypt=False, ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def issue(
        self,
        name: str,
        *,
        orgnr: str | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        sign: bool = True,
        encrypt: bool = True,
        key: rsa.RSAPrivateKey | None = None,
    ) -> Identity:
        """An enterprise certificate: the organisation number as SEID puts it (subject
        ``serialNumber``), key usage for signing and/or encryption."""
        now = dt.datetime.now(dt.UTC)
        key = key or new_key()
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
        if orgnr is not None:
            attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, orgnr))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - dt.timedelta(days=1))
            .not_valid_after(not_after or now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(sign=sign, encrypt=encrypt), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(self.key, hashes.SHA256())
        )
        return Identity(key, certificate)

    def revocation_list(
        self,
        revoked: list[x509.Certificate],
        *,
        next_update: dt.datetime | None = None,
    ) -> x509.CertificateRevocationList:
        now = dt.datetime.now(dt.UTC)
        next_update = next_update or now + dt.timedelta(days=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(min(now, next_update) - dt.timedelta(days=1))
            .next_update(next_update)
        )
        for certificate in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now - dt.timedelta(minutes=1))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())


class SimulatedPki:
    """The CA and the parties' key pairs in ``folder`` (see the module); thread-safe."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        (folder / "certs").mkdir(parents=True, exist_ok=True)
        (folder / "keys").mkdir(parents=True, exist_ok=True)
        self.authority = self._load_or_create_authority()
        self._identities: dict[int, Identity] = {}

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def cert_dir(self) -> Path:
        return self.folder / "certs"

    def key_file(self, her_id: int) -> Path:
        return self.folder / "keys" / f"{her_id}.key"

    def cert_file(self, her_id: int) -> Path:
        return self.cert_dir / f"{her_id}.pem"

    def trust(self) -> Trust:
        return Trust((self.authority.certificate,))

    def identity(self, her_id: int, *, orgnr: str | None = None) -> Identity:
        """The party's key pair: the one in the folder, or a new one (written there)."""
        with self._lock:
            if her_id in self._identities:
                return self._identities[her_id]
            identity = self._load(her_id) or self._create(her_id, orgnr)
            self._identities[her_id] = identity
            return identity

    def known(self, her_id: int) -> Identity | None:
        """The party's key pair if it has one (never made on the spot)."""
        with self._lock:
            if her_id not in self._identities:
                found = self._load(her_id)
                if found is None:
                    return None
                self._identities[her_id] = found
            return self._identities[her_id]

    def ensure(self, *her_ids: int) -> None:
        for her_id in her_ids:
            self.identity(her_id)

    def replace(self, her_id: int, identity: Identity) -> None:
        """Give a party another key pair (a test's expired or foreign certificate)."""
        with self._lock:
            self._write(her_id, identity)
            self._identities[her_id] = identity

    def gateway_settings(self, her_id: int) -> dict[str, Any]:
        """Settings (``Settings.model_copy(update=...)``) that make the gateway with this HER-id
        sign with its key pair here, trust this CA and find receivers' certificates here."""
        self.identity(her_id)
        return {
            "nhn_signing_key": self.key_file(her_id),
            "nhn_signing_cert": self.cert_file(her_id),
            "nhn_trusted_ca": self.ca_file,
            "nhn_cert_dir": self.cert_dir,
        }

    # ------------------------------------------------------------------ files

    def _load_or_create_authority(self) -> Authority:
        key_file, cert_file = self.folder / "ca.key", self.ca_file
        if key_file.exists() and cert_file.exists():
            certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            if isinstance(key, rsa.RSAPrivateKey) and _fresh(certificate):
                return Authority(key, certificate)
        authority = Authority.create()
        _write_key(key_file, authority.key)
        cert_file.write_bytes(authority.certificate.public_bytes(serialization.Encoding.PEM))
        # certificates of a former CA would not chain any more
        for old in self.cert_dir.glob("*.pem"):
            old.unlink()
        return authority

    def _load(self, her_id: int) -> Identity | None:
        key_file, cert_file = self.key_file(her_id), self.cert_file(her_id)
        if not (key_file.exists() and cert_file.exists()):
            return None
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        if not isinstance(key, rsa.RSAPrivateKey) or not _fresh(certificate):
            return None
        if certificate.issuer != self.authority.certificate.subject:
            return None
        return Identity(key, certificate)

    def _create(self, her_id: int, orgnr: str | None) -> Identity:
        identity = self.authority.issue(f"Test party HER-id {her_id}", orgnr=orgnr)
        self._write(her_id, identity)
        return identity

    def _write(self, her_id: int, identity: Identity) -> None:
        _write_key(self.key_file(her_id), identity.key)
        self.cert_file(her_id).write_bytes(
            identity.certificate.public_bytes(serialization.Encoding.PEM)
        )


def _fresh(certificate: x509.Certificate) -> bool:
    now = dt.datetime.now(dt.UTC)
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc - _FRESH_FOR


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
