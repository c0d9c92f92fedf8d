"""Alembic environment: runs on the connection ``storage.sql.migrate`` hands over.

There is no alembic.ini and no URL here: the caller opens the (async) engine,
calls ``connection.run_sync`` and passes the sync connection in
``config.attributes["connection"]``, so SQLite and PostgreSQL use their async
drivers for migrations too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from storage.sql.models import Base


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through storage.sql.migrate, which supplies a connection")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables when needed.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
