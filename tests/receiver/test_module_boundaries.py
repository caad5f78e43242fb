"""The receiver's modules form no import circle, and services reach Celery through a seam.

Services (ingest, drain, poller, ...) schedule background work with
``django_ssf.receiver.scheduling.enqueue(<task name>)``; only ``tasks`` imports the
services, never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import django_ssf.receiver
from django_ssf.receiver import scheduling

PACKAGE = "django_ssf.receiver"
ROOT = Path(django_ssf.receiver.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _imports(path: Path, module: str) -> set[str]:
    """Every module of the package this file imports, at the top or inside a function."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from . import tasks`` imports the submodule ``tasks``.
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py") if "migrations" not in p.parts}
    return {
        name: {m for m in _imports(path, name) if m in files and m != name}
        for name, path in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_receiver_modules_import_no_circle():
    graph = import_graph()
    assert f"{PACKAGE}.ingest" in graph and f"{PACKAGE}.tasks" in graph
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_tasks_module_imports_the_tasks():
    importers = sorted(name for name, deps in import_graph().items()
                       if f"{PACKAGE}.tasks" in deps and name != f"{PACKAGE}.tasks")
    # The app config imports it once, to register the tasks with Celery.
    assert importers == [f"{PACKAGE}.apps"]


def test_enqueue_runs_a_registered_task_through_celery(monkeypatch):
    from django_ssf.receiver.tasks import drain_stream

    sent = []
    monkeypatch.setattr(drain_stream, "apply_async",
                        lambda args, **options: sent.append((args, options)))
    monkeypatch.setattr(drain_stream, "delay", lambda *args: sent.append((args, "now")))
    scheduling.enqueue(scheduling.DRAIN_STREAM, 7, countdown=0.5)
    scheduling.enqueue(scheduling.DRAIN_STREAM, 8)
    assert sent == [((7,), {"countdown": 0.5}), ((8,), "now")]


def test_enqueue_sends_an_unknown_task_by_name(monkeypatch):
    from celery import current_app

    sent = []
    monkeypatch.setattr(current_app, "send_task",
                        lambda name, args, **options: sent.append((name, args, options)))
    scheduling.enqueue("somewhere.else", 1, countdown=2)
    assert sent == [("somewhere.else", (1,), {"countdown": 2})]


@pytest.mark.parametrize("name", [scheduling.DRAIN_STREAM, scheduling.PROCESS_PENDING_SETS,
                                  scheduling.POLL_STREAMS, scheduling.KEEP_STREAMS_ALIVE])
def test_every_scheduled_name_is_a_registered_task(name):
    from celery import current_app

    assert name in current_app.tasks


def test_session_tracking_is_wired_by_the_app_not_by_importing_models():
    from django.contrib.auth.signals import user_logged_in
    from django.contrib.sessions.backends.base import SessionBase

    models_source = (ROOT / "models.py").read_text()
    assert ".connect(" not in models_source and "SessionBase" not in models_source
    uids = [key[0] for key, *_ in user_logged_in.receivers]
    assert "django_ssf.receiver.record_login" in uids
    assert getattr(SessionBase.cycle_key, "_ssf_tracked", False)
