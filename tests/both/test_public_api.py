"""The public API is importable from documented modules and shows its real types."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import django_ssf
from django_ssf.transmitter import api


def test_emit_shows_the_real_signature() -> None:
    shown = inspect.signature(django_ssf.emit)
    assert list(shown.parameters) == ["event", "subject", "txn", "streams"]
    assert [p.kind for p in shown.parameters.values()] == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.KEYWORD_ONLY,
    ]
    assert shown.parameters["txn"].default is None
    assert shown.parameters["streams"].default is None
    # emit() returns an Emission (event_id, txn, the jtis once fanned out): docs/transmitter.md.
    assert shown.return_annotation == "Emission"
    # ... and it is the implementation's signature, so the two cannot drift apart.
    assert shown == inspect.signature(api.emit)


def test_importing_the_package_loads_no_models() -> None:
    code = (
        "import sys, django_ssf; from django_ssf import emit; "
        "import django_ssf.events, django_ssf.subjects; "
        "loaded = [m for m in sys.modules if m.startswith('django_ssf.models')]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("django_ssf.events", ["caep", "risc", "ssf", "RawEvent", "register_event_type"]),
        (
            "django_ssf.subjects",
            ["Subject", "validate_subject", "subjects_match", "register_format", "SubjectError"],
        ),
    ],
)
def test_documented_public_modules_export_their_names(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    for name in names:
        assert name in mod.__all__
        assert getattr(mod, name) is not None
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which does not exist"


def test_subject_builders_build_valid_subjects() -> None:
    from django_ssf.subjects import Subject, subjects_match, validate_subject

    alice = Subject.email("alice@example.com")
    assert alice == {"format": "email", "email": "alice@example.com"}
    assert validate_subject(alice) == alice
    assert subjects_match(alice, {"format": "email", "email": "alice@example.com"})


def test_the_package_is_marked_typed() -> None:
    assert (Path(django_ssf.__file__).parent / "py.typed").is_file()
