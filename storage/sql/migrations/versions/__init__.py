"""Alembic revision scripts (hand-written; see ``storage/sql/models.py``)."""
