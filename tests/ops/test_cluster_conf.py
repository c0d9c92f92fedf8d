"""The cluster profile's files (compose.yaml, conf/cluster.toml, conf/haproxy.cfg) hold together."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mailserver.config import load

REPO = Path(__file__).resolve().parents[2]


def test_cluster_config_loads_with_proxy_protocol_on_every_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSERVER_STORAGE_URL", "postgresql+asyncpg://mailserver:x@db:5432/mailserver")
    config = load(REPO / "conf" / "cluster.toml")
    assert config.smtp.proxy_protocol and config.submission.proxy_protocol
    assert config.imap.proxy_protocol and config.web.proxy_protocol
    assert config.managesieve.proxy_protocol and config.managesieve.listen == "0.0.0.0:4190"
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    subnet = compose["networks"]["front"]["ipam"]["config"][0]["subnet"]
    assert config.server.trusted_proxies == [subnet]
    ipaddress.ip_network(subnet)
    for name in ("node1", "node2", "balancer"):
        assert compose["services"][name]["profiles"] == ["cluster"]
    assert "front" in compose["services"]["node1"]["networks"]
    assert compose["services"]["node1"]["environment"]["MAILSERVER_CONFIG"] == "/etc/mailserver/cluster.toml"


def test_haproxy_config_is_valid_and_sends_proxy_v2() -> None:
    text = (REPO / "conf" / "haproxy.cfg").read_text()
    assert "send-proxy-v2" in text
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        pytest.skip("haproxy is not installed")
    checked = subprocess.run([binary, "-c", "-f", str(REPO / "conf" / "haproxy.cfg")],
                             capture_output=True, text=True, check=False, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Warnings were found" not in checked.stdout + checked.stderr
