"""Sans-IO pieces of the portal: TOTP (RFC 6238 appendix B vectors), signed
sessions, the SVG chart."""

from __future__ import annotations

import pytest

from mailserver.web.charts import bar_chart
from mailserver.web.security import Session, SessionCodec, csrf_ok, totp, totp_ok

RFC6238_KEY = b"12345678901234567890"


@pytest.mark.parametrize(("at", "code"), [(59, "94287082"), (1111111109, "07081804"),
                                          (1234567890, "89005924"), (2000000000, "69279037")])
def test_totp_rfc6238_sha1_vectors(at: int, code: str) -> None:
    assert totp(RFC6238_KEY, at, digits=8) == code


def test_totp_ok_accepts_one_step_of_drift_only() -> None:
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of the RFC key
    code = totp(RFC6238_KEY, 1111111109)
    assert totp_ok(secret, code, at=1111111109)
    assert totp_ok(secret, code, at=1111111109 + 30)
    assert not totp_ok(secret, code, at=1111111109 + 90)
    assert not totp_ok(secret, "12345", at=1111111109)
    assert not totp_ok("not base32!", code, at=1111111109)


def test_session_round_trip_and_tampering() -> None:
    codec = SessionCodec(b"k" * 32)
    value = codec.dump(Session("tok", "op@dongnai.gov.vn", 123.0))
    assert codec.load(value) == Session("tok", "op@dongnai.gov.vn", 123.0)
    payload, _, sig = value.partition(".")
    assert codec.load(payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + sig) is None
    assert SessionCodec(b"x" * 32).load(value) is None
    assert codec.load("garbage") is None and codec.load("a.b") is None
    assert Session("t", "op", 100.0).operator_at(99.0) == "op"
    assert Session("t", "op", 100.0).operator_at(101.0) == ""
    assert csrf_ok(Session("t"), "t") and not csrf_ok(Session("t"), "") and not csrf_ok(Session("t"), "u")


def test_bar_chart_has_a_text_alternative() -> None:
    svg = bar_chart(["08", "09"], [3, 0], title="Thư <theo giờ>")
    assert svg.startswith("<svg") and 'aria-label="Thư &lt;theo giờ&gt;"' in svg
    assert "<title>08: 3</title>" in svg
    with pytest.raises(ValueError):
        bar_chart(["a"], [1, 2], title="x")
