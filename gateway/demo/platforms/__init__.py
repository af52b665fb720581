"""Simulated IP platforms, each a real HTTP server on 127.0.0.1: what the delivery adapters
talk to in the demo, the tests and the chaos runs. They behave like the real interfaces
(``adapters/README.md``) and can be told to fail (unavailable, slow, never acknowledging)."""
