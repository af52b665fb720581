"""Settings from ``IPGW_*`` environment variables (and a ``.env`` file, if present)."""

from __future__ import annotations

from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.delivery_policy import Policy

DEFAULT_DIRECTORY = Path(str(files("gateway") / "data" / "directory.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IPGW_", env_file=".env", extra="ignore")

    #: where the embedded default keeps its SQLite file and generated keys
    data_dir: Path = Path("var")
    #: SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``); default: SQLite in
    #: ``data_dir``
    database_url: str | None = None
    #: an external Kafka cluster; unset means "start the bundled broker on 127.0.0.1"
    kafka_bootstrap: str | None = None
    #: ``assign`` takes every partition itself (one instance, no group rebalances);
    #: ``subscribe`` shares partitions in a consumer group (several instances).
    #: Default: assign with the bundled broker, subscribe with an external cluster.
    kafka_group_mode: Literal["assign", "subscribe"] | None = None
    kafka_session_timeout_ms: int = 10_000
    #: how long a fetch may wait for records; the bundled broker always waits this long when
    #: a topic is idle, so it bounds each stage's latency. Raise it on a real cluster.
    kafka_fetch_max_wait_ms: int = Field(default=25, ge=1)
    kafka_partitions: int = Field(default=4, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    topic_prefix: str = Field(default="ipgw", pattern=r"^[A-Za-z0-9._-]+$")
    #: the kommune -> KE directory (TOML); default is the one shipped in the package
    directory_file: Path = DEFAULT_DIRECTORY
    #: a file-backed population register (see gateway/population.py) for notices that do
    #: not name the person's kommune; unset: such notices are refused with E36
    population_register_file: Path | None = None
    #: how often the directory file is checked for changes (reloaded without a restart)
    directory_reload_seconds: float = Field(default=5.0, gt=0)
    host: str = "127.0.0.1"
    port: int = 8080
    #: request bodies above this are refused before parsing
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: bodies of the other endpoints (operator actions, searches, consents as JSON)
    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    #: requests per second per client (token client_id), over a moving one-second window
    rate_limit_per_second: int = Field(default=200, ge=1)
    #: synthetic test person ids (month + 40 / + 80); never on in production
    accept_synthetic_ids: bool = False
    #: HMAC key for person pseudonyms; generated into ``data_dir`` when unset
    pseudonym_key: SecretStr | None = None
    #: keys that seal person data at rest: ``id:base64key`` entries, comma-separated, the
    #: current (sealing) key first; the others still open what they sealed (gateway/sealing.py)
    data_keys: SecretStr | None = None
    #: the same in a file (``id:key`` lines, or TOML when it ends in ``.toml``), mode 600.
    #: Neither set: a key generated into ``data_dir`` (demo and development only)
    data_keys_file: Path | None = None
    #: how often the recovery sweep looks for messages that stopped moving, and after how long
    recovery_interval_seconds: float = Field(default=60.0, gt=0)
    stale_after_seconds: float = Field(default=300.0, gt=0)
    #: the official KITH XSDs (MsgHead, Dialogmelding, AppRec, ...), as published; unset: the
    #: ``shared/standards/xsd`` folder beside the project, if there is one. Without them the
    #: XML endpoint answers that it is not available.
    xsd_dir: Path | None = None
    #: how long a message waits for consent before it is rejected (the sender is told why)
    consent_hold_days: float = Field(default=14.0, gt=0)
    #: how often held messages are checked against the hold period
    consent_check_interval_seconds: float = Field(default=300.0, gt=0)
    #: how the gateway names itself in receipts it issues
    gateway_name: str = "ip-gateway"
    #: the gateway's own HER-id on Norsk Helsenett (sender of what ``nhn_msh`` posts, and
    #: where recipients' AppRecs arrive); unset: the nhn_msh adapter refuses to deliver
    gateway_her_id: int | None = Field(default=None, ge=1)

    # -- NHN message security: CMS, signed then encrypted (gateway/cms.py, adapters/README.md)
    #: the gateway's signing key and certificate: a PEM key and a PEM certificate file (leaf
    #: first, then any intermediate CA certificates, which go along in each signature), or a
    #: PKCS#12 file (``.p12``) as the key alone. Unset: nothing is posted with CMS.
    nhn_signing_key: Path | None = None
    nhn_signing_cert: Path | None = None
    #: the key and certificate senders encrypt to (an enterprise certificate comes as a signing
    #: and an encryption pair); unset: the signing pair. Unset both: CMS documents are left
    #: unread at NHN, warned about, until it is configured.
    nhn_encryption_key: Path | None = None
    nhn_encryption_cert: Path | None = None
    #: the password of the key files, when they are protected
    nhn_key_password: SecretStr | None = None
    #: the CA certificates (PEM bundle) trusted for senders' signing and receivers'
    #: encryption certificates (Buypass, Commfides)
    nhn_trusted_ca: Path | None = None
    #: receivers' encryption certificates from Adresseregisteret, one ``<her_id>.pem`` each;
    #: a directory entry's ``encryption_cert`` setting comes first
    nhn_cert_dir: Path | None = None
    #: certificate revocation lists (PEM or DER), refreshed by the operator: a certificate on
    #: one is refused (S03), a list past its next update refuses what it covers (S99). None:
    #: revocation is not checked.
    nhn_crl_files: list[Path] = Field(default_factory=list)

    # -- authentication (gateway/auth/): every caller presents an access token
    #: the token issuer (``iss``), e.g. ``https://helseid-sts.nhn.no``; unset: the gateway
    #: trusts only its development issuer, whose key is kept in ``data_dir``
    auth_issuer: str | None = None
    #: where the issuer publishes its signing keys (JWKS, https); required with auth_issuer
    auth_jwks_url: str | None = None
    #: the audience (``aud``) tokens must name to be accepted here
    auth_audience: str = "ip-gateway"

    # -- mutual TLS for system clients (gateway/auth/client_certs.py): TLS ends at the reverse
    # proxy, which passes the verified client certificate on in ``Client-Cert`` (RFC 9440)
    #: the system clients let in by certificate, with their scopes (TOML); unset: none is
    mtls_clients_file: Path | None = None
    #: the proxies (addresses or CIDR networks) whose ``Client-Cert`` header is believed; the
    #: header from anywhere else is refused
    mtls_trusted_proxies: list[str] = Field(default_factory=list)
    #: the CA certificates (PEM bundle) client certificates must chain to, checked again here
    mtls_trusted_ca: Path | None = None
    #: revocation lists for client certificates (PEM or DER), as for NHN above
    mtls_crl_files: list[Path] = Field(default_factory=list)

    # -- delivery (gateway/delivery_policy.py has the rules these tune)
    #: quick tries in process before a failing delivery goes to the first retry tier
    delivery_quick_tries: int = Field(default=3, ge=1)
    #: the longest pause between quick tries, seconds
    delivery_quick_max_wait: float = Field(default=2.0, ge=0)
    #: the delay of each retry tier (one Kafka topic each), seconds; after the last, DEAD
    retry_tiers_seconds: list[PositiveFloat] = Field(default=[60.0, 600.0, 3600.0], min_length=1)
    #: delivered but not acknowledged after this long: resent with the same message id
    ack_timeout_seconds: float = Field(default=3600.0, gt=0)
    #: resends of an unacknowledged message before it is DEAD
    ack_resends: int = Field(default=3, ge=0)
    #: how often delivered messages are checked for a missing acknowledgement, and adapters
    #: that receive answers later (AppRecs) are polled
    ack_check_interval_seconds: float = Field(default=5.0, gt=0)
    #: concurrent deliveries to one endpoint (one KE's platform)
    endpoint_concurrency: int = Field(default=4, ge=1)
    #: consecutive failures that open an endpoint's circuit, and how long it stays open
    circuit_failures: int = Field(default=5, ge=1)
    circuit_open_seconds: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    #: ``json``: one JSON object per line with message and correlation ids; ``text`` to read
    log_format: Literal["json", "text"] = "json"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'ipgw.db'}"

    @cached_property
    def resolved_xsd_dir(self) -> Path | None:
        if self.xsd_dir:
            return self.xsd_dir
        beside = Path(__file__).resolve().parents[2] / "shared" / "standards" / "xsd"
        return beside if beside.is_dir() else None

    @property
    def delivery_policy(self) -> Policy:
        return Policy(
            quick_tries=self.delivery_quick_tries,
            quick_max_wait=self.delivery_quick_max_wait,
            tiers=tuple(self.retry_tiers_seconds),
            ack_timeout=self.ack_timeout_seconds,
            ack_resends=self.ack_resends,
        )

    @property
    def embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def group_mode(self) -> Literal["assign", "subscribe"]:
        if self.kafka_group_mode:
            return self.kafka_group_mode
        return "assign" if self.embedded_broker else "subscribe"
