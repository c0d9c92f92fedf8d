"""What every CLI command module shares: errors, the store lifecycle, output."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeAlias

from mailserver.config import Config
from storage import open_store
from storage.api import MailStore

Action = Callable[[Config, argparse.Namespace], Coroutine[Any, Any, int]]
"""A command's implementation: returns the exit status."""

# argparse exposes no public name for the object add_subparsers() returns (and it is
# subscriptable only for type checkers, hence the string alias).
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(Exception):
    """An operator mistake: printed as one line on stderr, exit status 1."""


def common_parser() -> argparse.ArgumentParser:
    """Parent parser giving every sub-command ``--config`` (after the command name too)."""
    common = argparse.ArgumentParser(add_help=False)
    add_config_option(common, argparse.SUPPRESS)
    return common


def add_config_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="configuration file (TOML); default: $MAILSERVER_CONFIG, else built-in defaults",
    )


async def with_store(config: Config, action: Callable[[MailStore], Awaitable[int]]) -> int:
    """Open the store (applying migrations), run ``action``, close it."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.storage_url, config.maildir, quota_bytes=config.storage.quota or None)
    await store.start()
    try:
        return await action(store)
    finally:
        await store.close()


def print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def redact_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def cli_actor() -> str:
    """Who runs the command, for the audit log: $SUDO_USER, else the login name."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def read_stdin_line() -> str:
    return sys.stdin.readline().rstrip("\r\n")

