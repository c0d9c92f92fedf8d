"""One row of the directory's audit log (``dir_audit``), written inside the caller's
transaction: the directory and the routing stores audit their changes alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.directory import By
from storage.sql import directory_models as dm

AU: Final = cast(Table, dm.DirAudit.__table__)


async def audit(
    conn: AsyncConnection, action: str, subject: str, by: By, detail: Mapping[str, object] | None = None
) -> None:
    await conn.execute(
        insert(AU).values(
            at=datetime.now(UTC),
            actor=by.actor,
            action=action,
            subject=subject,
            decision=by.decision,
            detail=json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, default=str),
        )
    )
