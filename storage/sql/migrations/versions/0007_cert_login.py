"""Certificate login: ``accounts.cert_login`` (SASL EXTERNAL opt-in per account).

Revision ID: 0007_cert_login
Revises: 0001
Create Date: 2026-12-05

An account may sign in to IMAP and submission with a TLS client certificate
issued by the server's CA (or an imported one) only once an operator ran
``mailserver account set ADDRESS --cert-login on``. Own branch (``cert_login``) off 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007_cert_login"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = ("cert_login",)
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "accounts", sa.Column("cert_login", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("accounts", "cert_login")
