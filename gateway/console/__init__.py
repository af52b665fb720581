"""The operator console: static files served at ``/console`` by the gateway (no build step).

The page talks to the operator API (gateway/api/ops.py, gateway/api/console.py) with the
operator's id and role in headers; it shows metadata, the person masked (birth date only),
and content only on request for the privileged role, each look audited.
"""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
