"""``trace_date`` (the Received field's date) must be the very text of
``email.utils.format_datetime`` for every time and zone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from mailserver.smtp.delivery import trace_date

ZONES = [
    UTC,
    timezone(timedelta(0)),
    timezone(timedelta(0), "GMT"),
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(seconds=90)),
    None,
]


def test_trace_date_matches_format_datetime() -> None:
    rng = random.Random(17)
    for _ in range(20000):
        zone = rng.choice(ZONES)
        when = datetime(1, 1, 1) + timedelta(
            seconds=rng.randrange(0, 315_537_897_599), microseconds=rng.randrange(10**6)
        )
        when = when.replace(tzinfo=zone)
        assert trace_date(when) == format_datetime(when), when


def test_trace_date_edges() -> None:
    for when in (
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 6, 2, 3, 4, tzinfo=UTC),
        datetime.now(UTC),
    ):
        assert trace_date(when) == format_datetime(when)
