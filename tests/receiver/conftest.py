"""Fixtures of the receiver tests (only django_ssf.keys and django_ssf.receiver needed).

The live fake transmitter they talk to (``fake``) is in ``tests/conftest.py``: the round
trips in ``tests/both/`` use it too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.celery import Sent, not_eager


@pytest.fixture
def live_receiver(settings, live_server):
    """Our push URLs point at the live server; SETs are processed inline."""
    settings.SSF = {**settings.SSF, "BASE_URL": live_server.url, "RECEIVER_PROCESS_INLINE": True}
    return live_server


@pytest.fixture
def broker(monkeypatch, settings) -> Iterator[Sent]:
    """Celery not eager, the drain task's sends recorded (and not run).

    This is how production runs: a burst of pushes sends one drain task per stream.
    """
    from django_ssf.receiver.tasks import drain_stream as drain_task

    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": False,
                    }
    sent = Sent()
    monkeypatch.setattr(drain_task, "apply_async", sent)
    with not_eager():
        yield sent
