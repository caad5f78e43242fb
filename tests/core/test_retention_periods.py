"""A retention setting is seconds, a timedelta or None (forever); anything else is a clear
configuration error that names the setting."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ssf.core.retention import cutoff, retention_period

NOW = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (0, dt.timedelta(0)),
        (86400, dt.timedelta(days=1)),
        (1.5, dt.timedelta(seconds=1.5)),
        (dt.timedelta(days=30), dt.timedelta(days=30)),
    ],
)
def test_accepted_periods(value, expected) -> None:
    assert retention_period("X_RETAIN", value) == expected


def test_cutoff_is_now_minus_the_period_or_none_for_forever() -> None:
    assert cutoff(NOW, "X_RETAIN", 86400) == dt.datetime(2026, 1, 30, tzinfo=dt.UTC)
    assert cutoff(NOW, "X_RETAIN", None) is None


@pytest.mark.parametrize("value", ["30 days", True, [30], -1, dt.timedelta(seconds=-5)])
def test_anything_else_is_refused_by_name(value) -> None:
    with pytest.raises(ImproperlyConfigured, match="X_RETAIN"):
        retention_period("X_RETAIN", value)
