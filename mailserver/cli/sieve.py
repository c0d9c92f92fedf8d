"""``mailserver sieve put|list|get|activate|delete|check``: users' Sieve scripts
(storage/sieve.py), checked as ManageSieve checks them (mailserver/ops/sieve.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailserver.cli.common import CliError, SubParsers, with_store
from mailserver.config import Config
from mailserver.ops.sieve import InvalidName, InvalidScript, ScriptTooBig, SieveLimits, put_checked
from mailserver.sieve.compiler import compile_script
from mailserver.sieve.parser import SieveSyntaxError
from storage.api import MailStore
from storage.sieve import (
    NoSuchScript,
    NoSuchScriptOwner,
    ScriptActive,
    ScriptExists,
    SieveScriptError,
    TooManyScripts,
    sieve_scripts_for,
)


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    sieve = sub.add_parser("sieve", parents=[common], help="Sieve filter scripts of mailboxes (RFC 5228)")
    actions = sieve.add_subparsers(dest="sieve_command", required=True, metavar="ACTION")
    put = actions.add_parser(
        "put", parents=[common], help="store a script for a mailbox (replaces one of the same name)"
    )
    put.add_argument("address")
    put.add_argument("file", metavar="FILE", help="the script (UTF-8); - reads standard input")
    put.add_argument("--name", default=None, metavar="N", help="script name (default: the file name's stem)")
    put.add_argument("--activate", action="store_true", help="make it the mailbox's active script")
    put.set_defaults(action=_put)
    listing = actions.add_parser(
        "list", parents=[common], help="a mailbox's scripts (ACTIVE marks the one run)"
    )
    listing.add_argument("address")
    listing.set_defaults(action=_list)
    get = actions.add_parser("get", parents=[common], help="print a script")
    get.add_argument("address")
    get.add_argument("name")
    get.set_defaults(action=_get)
    activate = actions.add_parser(
        "activate", parents=[common], help="make NAME the active script (an empty NAME: none)"
    )
    activate.add_argument("address")
    activate.add_argument("name")
    activate.set_defaults(action=_activate)
    delete = actions.add_parser("delete", parents=[common], help="delete a script that is not active")
    delete.add_argument("address")
    delete.add_argument("name")
    delete.set_defaults(action=_delete)
    check = actions.add_parser(
        "check", parents=[common], help="check a script's syntax (errors as FILE:line:column: message)"
    )
    check.add_argument("file", metavar="FILE", help="the script (UTF-8); - reads standard input")
    check.set_defaults(action=_check)


def _refusal(exc: SieveScriptError, address: str, name: str = "") -> CliError:
    """One bilingual line for a refused script operation."""
    match exc:
        case NoSuchScriptOwner():
            return CliError(f"không có hộp thư {address} / no such mailbox {address}")
        case NoSuchScript():
            return CliError(f"không có kịch bản {exc} / no such script {exc}")
        case ScriptActive():
            return CliError(
                f"kịch bản {name} đang dùng, hãy kích hoạt kịch bản khác trước / "
                f"script {name} is active: activate another (or none) first"
            )
        case ScriptExists():
            return CliError(f"đã có kịch bản {exc} / script {exc} exists")
        case TooManyScripts():
            return CliError("hộp thư đã đủ số kịch bản tối đa / the mailbox has the most scripts allowed")
        case InvalidScript():
            return CliError(f"kịch bản sai cú pháp / script is not valid Sieve: {exc}")
        case InvalidName() | ScriptTooBig():
            return CliError(str(exc))
    return CliError(f"bị từ chối / refused: {exc}")


def _read(file: str) -> str:
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        raise CliError(f"không đọc được tệp / cannot read {file}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(f"tệp không phải UTF-8 / {file} is not UTF-8 (octet {exc.start + 1})") from None


async def _put(config: Config, args: argparse.Namespace) -> int:
    text = _read(args.file)
    name = args.name if args.name is not None else ("script" if args.file == "-" else Path(args.file).stem)

    async def run(store: MailStore) -> int:
        try:
            warnings = await put_checked(
                sieve_scripts_for(store),
                args.address,
                name,
                text,
                SieveLimits.from_config(config),
                activate=args.activate,
            )
        except SieveScriptError as exc:
            raise _refusal(exc, args.address, name) from None
        for warning in warnings:
            print(f"cảnh báo / warning: {warning}", file=sys.stderr)
        state = " (đang dùng / active)" if args.activate else ""
        print(f"đã lưu / stored {name} for {args.address.lower()}{state}")
        return 0

    return await with_store(config, run)


async def _list(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            scripts = await sieve_scripts_for(store).list_scripts(args.address)
        except SieveScriptError as exc:
            raise _refusal(exc, args.address) from None
        for script in scripts:
            print(f"{script.name}\t{'ACTIVE' if script.active else ''}".rstrip("\t"))
        return 0

    return await with_store(config, run)


async def _get(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            script = await sieve_scripts_for(store).get_script(args.address, args.name)
        except SieveScriptError as exc:
            raise _refusal(exc, args.address) from None
        if script is None:
            raise _refusal(NoSuchScript(args.name), args.address)
        sys.stdout.write(script.text)
        return 0

    return await with_store(config, run)


async def _activate(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            await sieve_scripts_for(store).set_active(args.address, args.name or None)
        except SieveScriptError as exc:
            raise _refusal(exc, args.address, args.name) from None
        if args.name:
            print(f"đang dùng / active: {args.name} for {args.address.lower()}")
        else:
            print(f"không kịch bản nào đang dùng / no active script for {args.address.lower()}")
        return 0

    return await with_store(config, run)


async def _delete(config: Config, args: argparse.Namespace) -> int:
    async def run(store: MailStore) -> int:
        try:
            await sieve_scripts_for(store).delete_script(args.address, args.name)
        except SieveScriptError as exc:
            raise _refusal(exc, args.address, args.name) from None
        print(f"đã xóa / deleted {args.name} of {args.address.lower()}")
        return 0

    return await with_store(config, run)


async def _check(config: Config, args: argparse.Namespace) -> int:
    """RFC 5228 syntax and the extensions we run, without storing anything."""
    text = _read(args.file)
    label = "<stdin>" if args.file == "-" else args.file
    if len(text.encode("utf-8", "surrogatepass")) > config.sieve.max_script_size:
        print(f"{label}: cảnh báo / warning: larger than sieve.max_script_size "
              f"({config.sieve.max_script_size} octets)", file=sys.stderr)
    try:
        compile_script(text, label)
    except SieveSyntaxError as exc:
        raise CliError(f"{label}:{exc.line}:{exc.column}: {exc.message}") from None
    print(f"{label}: OK")
    return 0
