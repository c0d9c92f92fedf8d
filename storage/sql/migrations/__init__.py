"""Alembic migrations of the mail index; run them with ``storage.sql.migrate``."""
