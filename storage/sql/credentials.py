"""``SqlCredentialStore``: ``storage.credentials`` on the mail index's database.

Runs on the shared ``database.Database`` and its write serialisation (as the activity
store does). Login history batches are written with ``durable=False``: a
statistic lost to a power cut is harmless, and it keeps the batch cheap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.credentials import HISTORY_PER_ACCOUNT, AppPassword, DuplicateName, LoginEvent, TotpState
from storage.sql import credential_models as cm
from storage.sql.database import Database

__all__ = ["SqlCredentialStore"]

AP: Final = cast(Table, cm.AppPasswordRow.__table__)
LH: Final = cast(Table, cm.LoginHistoryRow.__table__)
TOTP: Final = cast(Table, cm.TotpRow.__table__)
RC: Final = cast(Table, cm.RecoveryCodeRow.__table__)


def _app(row: Row[Any]) -> AppPassword:
    return AppPassword(
        id=row.id, account_id=row.account_id, name=row.name,
        scopes=tuple(s for s in row.scopes.split(",") if s), password_hash=row.password_hash,
        selector=row.selector, created_at=row.created_at, last_used_at=row.last_used_at,
        last_used_ip=row.last_used_ip,
    )


class SqlCredentialStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_app_password(
        self, account_id: int, name: str, scopes: tuple[str, ...], password_hash: str, selector: str,
        when: datetime,
    ) -> AppPassword:
        def tx(conn: Connection) -> AppPassword:
            exists = conn.execute(
                select(AP.c.id).where(AP.c.account_id == account_id, AP.c.name == name)
            ).first()
            if exists is not None:
                raise DuplicateName(name)
            new_id = conn.execute(
                insert(AP).values(
                    account_id=account_id, name=name, scopes=",".join(scopes),
                    password_hash=password_hash, selector=selector, created_at=when,
                )
            ).inserted_primary_key
            assert new_id is not None  # noqa: S101 - an insert returns its key
            return AppPassword(int(new_id[0]), account_id, name, scopes, password_hash, selector, when)

        try:
            return await self._db.run_write(tx)
        except IntegrityError:
            raise DuplicateName(name) from None

    async def list_app_passwords(self, account_id: int) -> list[AppPassword]:
        def tx(conn: Connection) -> list[AppPassword]:
            rows = conn.execute(select(AP).where(AP.c.account_id == account_id).order_by(AP.c.id))
            return [_app(r) for r in rows]

        return await self._db.run_read(tx)

    async def revoke_app_password(self, account_id: int, name: str) -> bool:
        def tx(conn: Connection) -> bool:
            result = conn.execute(delete(AP).where(AP.c.account_id == account_id, AP.c.name == name))
            return bool(result.rowcount)

        return await self._db.run_write(tx)

    async def record_logins(self, events: list[LoginEvent], keep: int = HISTORY_PER_ACCOUNT) -> None:
        if not events:
            return

        def tx(conn: Connection) -> None:
            conn.execute(
                insert(LH),
                [
                    {"account_id": e.account_id, "at": e.at, "remote_ip": e.remote_ip[:64],
                     "protocol": e.protocol[:16], "client": e.client[:200], "success": e.success,
                     "detail": e.detail[:64]}
                    for e in events
                ],
            )
            for e in events:
                if e.app_password_id is not None and e.success:
                    conn.execute(
                        update(AP).where(AP.c.id == e.app_password_id)
                        .values(last_used_at=e.at, last_used_ip=e.remote_ip[:64])
                    )
            for account_id in {e.account_id for e in events}:
                oldest_kept = conn.execute(
                    select(LH.c.id).where(LH.c.account_id == account_id)
                    .order_by(LH.c.id.desc()).offset(keep - 1).limit(1)
                ).scalar()
                if oldest_kept is not None:
                    conn.execute(delete(LH).where(LH.c.account_id == account_id, LH.c.id < oldest_kept))

        await self._db.run_write(tx, durable=False)

    async def logins(self, account_id: int, limit: int = HISTORY_PER_ACCOUNT) -> list[LoginEvent]:
        def tx(conn: Connection) -> list[LoginEvent]:
            rows = conn.execute(
                select(LH).where(LH.c.account_id == account_id).order_by(LH.c.id.desc()).limit(limit)
            )
            return [
                LoginEvent(r.account_id, r.at, r.remote_ip, r.protocol, r.success, r.client, r.detail)
                for r in rows
            ]

        return await self._db.run_read(tx)

    async def totp(self, account_id: int) -> TotpState | None:
        def tx(conn: Connection) -> TotpState | None:
            row = conn.execute(select(TOTP).where(TOTP.c.account_id == account_id)).first()
            if row is None:
                return None
            left = conn.execute(
                select(func.count()).select_from(RC)
                .where(RC.c.account_id == account_id, RC.c.used_at.is_(None))
            ).scalar_one()
            return TotpState(account_id, row.secret, row.enabled, row.created_at, row.last_step, int(left))

        return await self._db.run_read(tx)

    async def start_totp(self, account_id: int, secret: str, when: datetime) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(delete(RC).where(RC.c.account_id == account_id))
            conn.execute(delete(TOTP).where(TOTP.c.account_id == account_id))
            conn.execute(insert(TOTP).values(account_id=account_id, secret=secret, enabled=False,
                                             created_at=when, last_step=-1))

        await self._db.run_write(tx)

    async def enable_totp(self, account_id: int, step: int, recovery_hashes: list[str]) -> bool:
        def tx(conn: Connection) -> bool:
            done = conn.execute(
                update(TOTP).where(TOTP.c.account_id == account_id, TOTP.c.enabled.is_(False))
                .values(enabled=True, last_step=step)
            )
            if not done.rowcount:
                return False
            conn.execute(delete(RC).where(RC.c.account_id == account_id))
            if recovery_hashes:
                rows = [{"account_id": account_id, "code_hash": h} for h in recovery_hashes]
                conn.execute(insert(RC), rows)
            return True

        return await self._db.run_write(tx)

    async def accept_totp_step(self, account_id: int, step: int) -> bool:
        def tx(conn: Connection) -> bool:
            done = conn.execute(
                update(TOTP).where(TOTP.c.account_id == account_id, TOTP.c.enabled.is_(True),
                                   TOTP.c.last_step < step)
                .values(last_step=step)
            )
            return bool(done.rowcount)

        return await self._db.run_write(tx)

    async def use_recovery_code(self, account_id: int, code_hash: str, when: datetime) -> bool:
        def tx(conn: Connection) -> bool:
            done = conn.execute(
                update(RC).where(RC.c.account_id == account_id, RC.c.code_hash == code_hash,
                                 RC.c.used_at.is_(None))
                .values(used_at=when)
            )
            return bool(done.rowcount)

        return await self._db.run_write(tx)

    async def disable_totp(self, account_id: int) -> bool:
        def tx(conn: Connection) -> bool:
            conn.execute(delete(RC).where(RC.c.account_id == account_id))
            return bool(conn.execute(delete(TOTP).where(TOTP.c.account_id == account_id)).rowcount)

        return await self._db.run_write(tx)

