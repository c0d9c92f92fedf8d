"""ENVELOPE in IMAP wire form beside its JSON: messages.envelope_imap.

Revision ID: 0005_envelope_wire
Revises: 0004_message_index
Create Date: 2026-11-30

A FETCH of ENVELOPE over a whole folder (what a client does on opening it)
spent most of its time decoding each message's cached JSON and quoting its
fields; the bytes are the same every time, so they are written once, at
delivery (``storage.imapwire.envelope_wire``, the form for clients without
UTF8=ACCEPT). Rows already stored are filled in here, in batches; the column
stays nullable so that a row without it (none after this revision) still
works through the JSON.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.imapwire import envelope_wire

revision: str = "0005_envelope_wire"
down_revision: str | None = "0004_message_index"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

BATCH = 2000


def upgrade() -> None:
    op.add_column("messages", sa.Column("envelope_imap", sa.LargeBinary(), nullable=True))
    messages = sa.table(
        "messages",
        sa.column("id", sa.BigInteger),
        sa.column("envelope", sa.Text),
        sa.column("envelope_imap", sa.LargeBinary),
    )
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(messages.c.id, messages.c.envelope)
            .where(messages.c.id > last)
            .order_by(messages.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            try:
                wire: bytes | None = envelope_wire(row.envelope, False)
            except ValueError:
                wire = None  # a corrupt cache keeps failing the way it did
            updates.append({"row_id": row.id, "wire": wire})
        conn.execute(
            messages.update()
            .where(messages.c.id == sa.bindparam("row_id"))
            .values(envelope_imap=sa.bindparam("wire")),
            updates,
        )
        last = rows[-1].id


def downgrade() -> None:
    op.drop_column("messages", "envelope_imap")
