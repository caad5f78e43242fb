"""The transmitter's modules form no import cycle, and services schedule work by task name.

Services (emit, delivery, poll, streams) must not import the task module that imports
them; they go through ``scheduling``, which finds the task in the Celery app's registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import django_ssf.transmitter
from django_ssf.transmitter import scheduling, tasks

PACKAGE = Path(django_ssf.transmitter.__file__).parent
PREFIX = "django_ssf.transmitter"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PREFIX, *parts))


def _exists(name: str) -> bool:
    rel = Path(*name.split(".")[2:]) if name != PREFIX else Path()
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def _import_graph() -> dict[str, set[str]]:
    """Every module of the package → the package modules it imports (at any depth)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            deps.update(
                c
                for c in candidates
                if c.startswith(PREFIX) and c not in (name, PREFIX) and _exists(c)
            )
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_transmitter_modules_import_no_cycle():
    graph = _import_graph()
    assert f"{PREFIX}.streams" in graph  # the walk found the package
    assert _cycle(graph) is None


@pytest.mark.parametrize("service", ["api", "delivery", "poll", "outbox", "streams", "status"])
def test_services_do_not_import_the_tasks(service):
    assert f"{PREFIX}.tasks" not in _import_graph()[f"{PREFIX}.{service}"]


def test_enqueue_runs_the_registered_task(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda *a: calls.append(("now", a)))
    monkeypatch.setattr(
        tasks.deliver_stream,
        "apply_async",
        lambda args, countdown: calls.append(("later", args, countdown)),
    )
    scheduling.enqueue(scheduling.DELIVER_STREAM, 7)
    scheduling.enqueue(scheduling.DELIVER_STREAM, 8, countdown=2.5)
    assert calls == [("now", (7,)), ("later", (8,), 2.5)]


def test_enqueue_sends_an_unregistered_task_by_name(monkeypatch):
    from celery import current_app

    sent: list[tuple] = []
    monkeypatch.setattr(
        current_app,
        "send_task",
        lambda name, args, **options: sent.append((name, args, options)),
    )
    scheduling.enqueue("django_ssf.transmitter.not_here", 1, countdown=None)
    assert sent == [("django_ssf.transmitter.not_here", (1,), {})]
