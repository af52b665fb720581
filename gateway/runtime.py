"""The parts of a running gateway that the pipeline stages and the API share."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.auth.client_certs import ClientCertGate, gate_for
from gateway.auth.dev_issuer import DevIssuer
from gateway.auth.rate_limits import RateLimits
from gateway.auth.setup import verifier_for
from gateway.auth.tokens import TokenVerifier
from gateway.config import Settings
from gateway.delivery import AdapterContext, AdapterRegistry
from gateway.directory import Directory, load_directory
from gateway.population import PopulationRegister, load_file_register
from gateway.pseudonym import Pseudonymizer, load_or_create_key
from gateway.sealing import load_keyring
from gateway.store.database import Database
from gateway.transport import OutboxRelay, Topics
from mappings.plo.xsd import SchemaSet, load_schema_set

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the pipeline stages and the API share."""

    settings: Settings
    db: Database
    directory: Directory
    topics: Topics
    pseudonymize: Pseudonymizer
    adapters: AdapterRegistry
    #: checks every caller's bearer token (gateway/api/auth.py)
    verifier: TokenVerifier
    rate_limits: RateLimits
    #: checks the client certificates the TLS proxy passes on; None: no proxy is trusted
    client_certs: ClientCertGate | None = None
    #: the development issuer the verifier trusts when no real one is configured; it mints
    #: the demo's and tests' tokens
    dev_issuer: DevIssuer | None = None
    #: where a person lives when a notice does not say; None when none is configured
    population: PopulationRegister | None = None
    #: the KITH schema set for XML ingest; None when the XSDs are not installed
    schemas: SchemaSet | None = None
    relay: OutboxRelay | None = None
    #: the time the rules go by (consent validity, hold expiry); tests move it
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    #: answers whether the broker takes requests now (readiness)
    broker_check: Callable[[], Awaitable[bool]] | None = None
    #: records not yet committed per consumer (stage or retry tier), from the broker
    consumer_lags: Callable[[], Awaitable[dict[str, int]]] | None = None

    def committed(self) -> None:
        """Call after a commit that added outbox rows: publish them now, not at the next poll."""
        if self.relay:
            self.relay.wake()


def build_runtime(settings: Settings) -> Runtime:
    directory = load_directory(settings.directory_file)
    db = Database(settings.resolved_database_url, load_keyring(settings))
    key = load_or_create_key(
        settings.pseudonym_key.get_secret_value() if settings.pseudonym_key else None,
        settings.data_dir,
    )
    adapters = AdapterRegistry(AdapterContext(settings=settings, db=db))
    adapters.check(directory.adapter_names())
    population = (
        load_file_register(settings.population_register_file)
        if settings.population_register_file
        else None
    )
    verifier, dev_issuer = verifier_for(settings)
    return Runtime(
        verifier=verifier,
        client_certs=gate_for(settings),
        dev_issuer=dev_issuer,
        rate_limits=RateLimits(settings.rate_limit_per_second),
        population=population,
        schemas=_schemas(settings),
        settings=settings,
        db=db,
        directory=directory,
        topics=Topics.named(settings.topic_prefix, settings.retry_tiers_seconds),
        pseudonymize=Pseudonymizer(key),
        adapters=adapters,
    )


def _schemas(settings: Settings) -> SchemaSet | None:
    """The schema set, or None (logged) when the official XSDs are not where configured."""
    xsd_dir = settings.resolved_xsd_dir
    if xsd_dir is None:
        log.warning("KITH XSDs not found (set IPGW_XSD_DIR): POST /plo will refuse XML")
        return None
    return load_schema_set(xsd_dir)
