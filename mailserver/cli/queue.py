"""``mailserver queue list|show|retry|delete|bounce``: the outbound queue.

These commands change the database only; a running server's delivery worker
sees the change on its next poll (at most ``outbound.poll_interval`` seconds).
``bounce`` asks the worker to return the message to its sender with a delivery
status notification; ``delete`` drops it silently.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from mailserver.cli.common import CliError, SubParsers, cli_actor, print_json
from mailserver.config import Config
from mailserver.ops import admin
from mailserver.smtp.outbound_settings import spool_path
from storage import open_storage
from storage.directory import By
from storage.queue import OutboundQueue, QueuedMessage, open_queue


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    queue = sub.add_parser("queue", parents=[common], help="outbound mail queue")
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    lst = actions.add_parser("list", parents=[common], help="list queued messages")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(action=_list)
    show = actions.add_parser("show", parents=[common], help="one message with its recipients")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(action=_show)
    retry = actions.add_parser("retry", parents=[common], help="try again now")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?")
    which.add_argument("--all", action="store_true", help="every queued message")
    retry.set_defaults(action=_retry)
    delete = actions.add_parser("delete", parents=[common], help="drop a message without notice")
    delete.add_argument("id", type=int)
    delete.set_defaults(action=_delete)
    bounce = actions.add_parser("bounce", parents=[common], help="return a message to its sender")
    bounce.add_argument("id", type=int)
    bounce.set_defaults(action=_bounce)


async def _with_queue(config: Config, action: Callable[[OutboundQueue], Awaitable[int]]) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    queue = open_queue(config.storage_url, spool_path(config.outbound, config.data_dir))
    await queue.start()
    try:
        return await action(queue)
    finally:
        await queue.close()


async def _administer(
    config: Config, action: Callable[[OutboundQueue, admin.Auditor], Awaitable[int]]
) -> int:
    """The queue and the audit log (the directory): for the changes ``ops.admin`` makes."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(config.storage_url, config.maildir, quota_bytes=config.storage.quota or None,
                           spool_dir=spool_path(config.outbound, config.data_dir))
    await storage.start()
    try:
        return await action(storage.outbound_queue(), storage.directory)
    finally:
        await storage.close()


def _message_dict(message: QueuedMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "sender": message.sender,
        "size": message.size,
        "created_at": message.created_at.isoformat(),
        "origin": message.origin,
        "account": message.account,
        "delay_warned": message.delay_warned,
        "bounce_requested": message.bounce_requested,
        "recipients": [
            {
                "address": r.address,
                "state": r.state.value,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat(),
                "last_attempt_at": r.last_attempt_at.isoformat() if r.last_attempt_at else None,
                "status": r.status,
                "last_error": r.last_error,
                "remote_mta": r.remote_mta,
            }
            for r in message.recipients
        ],
    }


async def _list(config: Config, args: argparse.Namespace) -> int:
    async def run(queue: OutboundQueue) -> int:
        messages = await queue.list()
        if args.json:
            print_json([_message_dict(m) for m in messages])
            return 0
        if not messages:
            print("queue is empty")
            return 0
        for m in messages:
            waiting = len(m.pending)
            sender = m.sender or "<>"
            print(f"{m.id:>8}  {m.created_at:%Y-%m-%d %H:%M}  {m.size:>9}  {sender}  "
                  f"({waiting} of {len(m.recipients)} waiting)")
        return 0

    return await _with_queue(config, run)


async def _show(config: Config, args: argparse.Namespace) -> int:
    async def run(queue: OutboundQueue) -> int:
        message = await queue.get(args.id)
        if message is None:
            raise CliError(f"no queued message {args.id}")
        data = _message_dict(message)
        if args.json:
            print_json(data)
            return 0
        for key in ("id", "sender", "size", "created_at", "origin", "account", "delay_warned",
                    "bounce_requested"):
            print(f"{key}: {data[key]}")
        for r in data["recipients"]:
            print(f"  <{r['address']}> {r['state']} attempts={r['attempts']} next={r['next_attempt_at']}"
                  + (f" last: {r['last_error']}" if r["last_error"] else ""))
        return 0

    return await _with_queue(config, run)


async def _retry(config: Config, args: argparse.Namespace) -> int:
    async def run(queue: OutboundQueue, auditor: admin.Auditor) -> int:
        count = await admin.retry_queued(queue, auditor, None if args.all else args.id, by=By(cli_actor()))
        if count is None:
            raise CliError(f"no queued message {args.id}")
        print(f"{count} recipient(s) will be tried again on the next queue run")
        return 0

    return await _administer(config, run)


async def _delete(config: Config, args: argparse.Namespace) -> int:
    async def run(queue: OutboundQueue, auditor: admin.Auditor) -> int:
        if not await admin.delete_queued(queue, auditor, args.id, by=By(cli_actor())):
            raise CliError(f"no queued message {args.id}")
        print(f"message {args.id} deleted")
        return 0

    return await _administer(config, run)


async def _bounce(config: Config, args: argparse.Namespace) -> int:
    async def run(queue: OutboundQueue, auditor: admin.Auditor) -> int:
        if not await admin.bounce_queued(queue, auditor, args.id, by=By(cli_actor())):
            raise CliError(f"no queued message {args.id}")
        print(f"message {args.id} will be returned to its sender on the next queue run")
        return 0

    return await _administer(config, run)
