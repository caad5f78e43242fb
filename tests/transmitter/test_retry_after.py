"""``Retry-After`` (RFC 9110 §10.2.3) in every form a receiver may send.

The header is untrusted input read inside the push drain: every form must give a number
of seconds or ``None`` (use the backoff), never an exception. An HTTP-date without a
zone (``-0000``, or the asctime form, which has none) once raised ``AttributeError``
and stopped the drain.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_ssf.transmitter.delivery import KIND_RETRY, classify_response, parse_retry_after

NOW = datetime(1994, 11, 6, 8, 48, 37, tzinfo=UTC)  # 60 s before the dates below


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # delta-seconds
        ("120", 120.0),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("007", 7.0),
        # IMF-fixdate, the preferred form
        ("Sun, 06 Nov 1994 08:49:37 GMT", 60.0),
        # obsolete RFC 850 form
        ("Sunday, 06-Nov-94 08:49:37 GMT", 60.0),
        # obsolete asctime form: no zone at all, which means UTC
        ("Sun Nov  6 08:49:37 1994", 60.0),
        # RFC 5322 "-0000": UTC, with no claim about local time
        ("Sun, 06 Nov 1994 08:49:37 -0000", 60.0),
        # an explicit offset is honoured
        ("Sun, 06 Nov 1994 10:49:37 +0200", 60.0),
        # a date in the past means "now"
        ("Sun, 06 Nov 1994 08:00:00 GMT", 0.0),
    ],
)
def test_parses_every_form(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",  # negative delta-seconds are not delta-seconds
        "1.5",
        "+10",
        "0x10",
        "\u0663",  # a Unicode digit is not a DIGIT
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:61:00 GMT",
        "Sun, 06 Nov",
    ],
)
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_huge_values_are_capped_not_crashing() -> None:
    assert parse_retry_after("9" * 5000, now=NOW) == 1e12  # no 5000-digit int()
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) > 2.5e11


def test_zoneless_date_uses_the_clock_when_no_now_is_given() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    header = when.strftime("%a %b %d %H:%M:%S %Y")  # asctime form, no zone
    assert 80 <= parse_retry_after(header) <= 91


@pytest.mark.parametrize(
    "value", ["Sun, 06 Nov 1994 08:49:37 -0000", "Sun Nov  6 08:49:37 1994", "garbage"]
)
def test_a_503_with_any_retry_after_is_classified_not_raised(value: str) -> None:
    outcome = classify_response(503, {"Retry-After": value}, b"busy")
    assert outcome.kind == KIND_RETRY
    assert outcome.http_status == 503
    assert outcome.retry_after is None or outcome.retry_after >= 0.0
