"""ip-gateway core: domain, pipeline, store, transport, API."""

__version__ = "0.1.0"
