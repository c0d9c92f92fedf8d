"""``mailserver serve``."""

from __future__ import annotations

import argparse

from mailserver.cli.common import SubParsers
from mailserver.config import Config


def register(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("serve", parents=[common], help="run every listener until SIGTERM/SIGINT")
    parser.set_defaults(action=_serve, uvloop=True)


async def _serve(config: Config, args: argparse.Namespace) -> int:
    from mailserver.app import serve

    await serve(config)
    return 0
