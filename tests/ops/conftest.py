"""Helpers for the operations tests: a ``mailserver serve`` subprocess on free
loopback ports, and a TOML writer for derived configurations."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import end_all, end_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_dump(data: Mapping[str, Mapping[str, Any]]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = []
    for section, items in data.items():
        out.append(f"[{section}]")
        out += [f"{k} = {value(v)}" for k, v in items.items()]
        out.append("")
    return "\n".join(out)


def server_config(tmp_path: Path, **extra: Mapping[str, Any]) -> Path:
    data: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(tmp_path / "data"), "hostname": "mx.test.dongnai.gov.vn"},
        "smtp": {"listen": f"127.0.0.1:{free_port()}"},
        "submission": {"listen": f"127.0.0.1:{free_port()}", "tls_listen": f"127.0.0.1:{free_port()}",
                       "allow_plaintext_auth": True},
        "imap": {"listen": f"127.0.0.1:{free_port()}", "tls_listen": f"127.0.0.1:{free_port()}"},
        "managesieve": {"listen": f"127.0.0.1:{free_port()}"},
        "web": {"enabled": False},
        "auth": {"failure_delay": 0.05},
        "dns": {"use_servers": False},
    }
    for section, items in extra.items():
        data.setdefault(section, {}).update(items)
    path = tmp_path / "mailserver.toml"
    path.write_text(toml_dump(data), encoding="utf-8")
    return path


def port_of(config: Path, section: str, key: str = "listen") -> int:
    import tomllib

    return int(tomllib.loads(config.read_text())[section][key].rsplit(":", 1)[1])


def cli(config: Path, *args: str, stdin: str | None = None,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailserver", "--config", str(config), *args],
        input=stdin, capture_output=True, text=True, timeout=120, check=False, env=env,
    )


class Servers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}

    def start(self, config: Path, argv: list[str] | None = None,
              env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        # stderr goes to a file: a chatty (DEBUG) server must never block on a full pipe.
        log = config.with_name(f"serve-{len(self.procs)}.log")
        with log.open("w") as err:
            proc = subprocess.Popen(
                argv or [sys.executable, "-m", "mailserver", "--config", str(config), "serve"],
                stdout=subprocess.PIPE, stderr=err, text=True, env=env,
            )
        self.logs[proc.pid] = log
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("mailserver ready"):
            end_process(proc, 10)
            raise AssertionError(f"server did not start: {line!r} {log.read_text()[-3000:]}")
        return proc

    def stop(self, proc: subprocess.Popen[str]) -> str:
        end_process(proc, 60, terminate=True)
        err = self.logs[proc.pid].read_text()
        assert proc.returncode == 0, err[-3000:]
        return err


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    end_all(s.procs)
