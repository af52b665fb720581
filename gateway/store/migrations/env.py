"""Alembic environment: migrations run on the connection the gateway hands over.

Run them with ``ipgw db upgrade`` or by starting the gateway; both call
``gateway.store.database.Database.migrate``.
"""

from alembic import context

from gateway.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through gateway.store.database.Database.migrate")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
