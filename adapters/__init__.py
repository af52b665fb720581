"""Delivery adapters, one module per platform; each exposes ``create(context)``.

See ``adapters/README.md`` for the interface each speaks.
"""
