"""The settings reference (docs/settings.md) documents every key of ``DEFAULTS``, exactly.

Each setting is one table row ``| `NAME` | `repr(default)` | meaning |``. The test fails
when a key is missing, when the page documents a key that no longer exists, or when a
documented default differs from the code. ``python -m tests.test_docs_settings`` prints
the rows to paste for missing keys (with the code comments as a first draft).
"""

from __future__ import annotations

import re
from pathlib import Path

from django_ssf.conf import DEFAULTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
# The page ends with the example project's environment variables: not SSF settings.
END_OF_REFERENCE = "## Settings of the example project"
ROW = re.compile(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*(.*?)\s*\|(.*)\|\s*$", re.MULTILINE)


def documented() -> dict[str, tuple[str, str]]:
    """``{name: (default cell, meaning cell)}`` of every settings row of the page."""
    rows: dict[str, tuple[str, str]] = {}
    text = DOC.read_text(encoding="utf-8").split(END_OF_REFERENCE)[0]
    for match in ROW.finditer(text):
        name, default, meaning = match.group(1), match.group(2), match.group(3).strip()
        assert name not in rows, f"{name} is documented twice in {DOC.name}"
        rows[name] = (default, meaning)
    return rows


def expected_default(name: str) -> str:
    return f"`{DEFAULTS[name]!r}`"


def test_every_setting_is_documented() -> None:
    missing = sorted(set(DEFAULTS) - set(documented()))
    assert not missing, (
        f"settings missing from docs/settings.md: {', '.join(missing)} "
        "(run `python -m tests.test_docs_settings` for rows to paste)"
    )


def test_no_stale_settings_are_documented() -> None:
    stale = sorted(set(documented()) - set(DEFAULTS))
    assert not stale, f"docs/settings.md documents settings that do not exist: {stale}"


def test_documented_defaults_match_the_code() -> None:
    rows = documented()
    wrong = {
        name: (rows[name][0], expected_default(name))
        for name in DEFAULTS
        if name in rows and rows[name][0] != expected_default(name)
    }
    assert not wrong, f"documented default differs from DEFAULTS (documented, actual): {wrong}"


def test_every_setting_has_a_meaning() -> None:
    empty = sorted(name for name, (_, meaning) in documented().items() if len(meaning) < 10)
    assert not empty, f"settings documented without an explanation: {empty}"


if __name__ == "__main__":  # pragma: no cover - a helper for whoever adds a setting
    have = documented() if DOC.exists() else {}
    for key in DEFAULTS:
        if key not in have:
            print(f"| `{key}` | {expected_default(key)} | (describe) |")
