"""The documentation's examples run, and what the pages name exists.

Every fenced ``python`` block of the pages listed in :data:`PAGES` is executed against the
test settings, in page order, in one namespace per page (like a notebook), unless the line
just above its fence is a marker comment:

``<!-- docs-test: skip -->``
    a signature listing or a fragment that is not meant to run (it must still be short);
``<!-- docs-test: settings -->``
    a ``settings.py`` excerpt: executed on its own and checked (``SSF`` keys exist,
    ``CELERY_BEAT_SCHEDULE`` tasks are real Celery task names, scopes match, ...);
``<!-- docs-test: raises NAME -->``
    the block must raise the exception class ``NAME`` (the page says it does);
``<!-- docs-test: defer -->``
    run after the page's other blocks (it uses something a later section sets up).

Besides running the examples, the tests check that every management command and option
in ``docs/commands.md`` is in the command's ``--help``, that every command the pages
mention exists, that Celery task names, URL paths and setting names in the pages are
real, and that the attributes the handler examples read exist on ``ReceivedEvent``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
import textwrap
import types
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import get_commands, load_command_class
from django.urls import Resolver404, resolve

from django_ssf.conf import DEFAULTS
from django_ssf.core import constants as c
from django_ssf.receiver.handlers import NOT_APPLICABLE
from tests.helpers.transmitter_delivery import PROVIDER_PATH, make_stream

ROOT = Path(__file__).resolve().parents[2]
# The pages whose examples this module runs and whose names it checks.
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/quickstart.md",
    "docs/architecture.md",
    "docs/deployment.md",
    "docs/operations.md",
    "docs/security.md",
    "docs/commands.md",
    "docs/conformance.md",
    "docs/keys.md",
    "docs/subjects.md",
    "docs/events.md",
    "docs/security-outbound-http.md",
]

FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.S | re.M,
)
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<kind>[\w-]+)(?:\s+(?P<arg>[\w.]+))?\s*-->")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    marker: str = ""
    marker_arg: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str, lang: str | None = None) -> list[Block]:
    """Fenced code blocks of a page (dedented when nested in a list), with their markers."""
    text = (ROOT / page).read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if lang is not None and match.group("lang") != lang:
            continue
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        found.append(
            Block(
                page=page,
                line=text.count("\n", 0, match.start()) + 1,
                lang=match.group("lang"),
                code=textwrap.dedent(match.group("body")),
                marker=marker.group("kind") if marker else "",
                marker_arg=(marker.group("arg") or "") if marker else "",
            )
        )
    return found


def page_text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


# ---- names injected into a page's namespace -----------------------------------------
# A few examples are fragments of host code that use a name the host already has (the
# ``user`` whose password just changed, the ``url`` a receiver gave). The tests provide
# those names here, per page, so that the fragments run unchanged.


def _context(page: str, user: Any) -> dict[str, Any]:
    if page == "docs/quickstart.md":
        return {"user": user}
    if page == "docs/subjects.md":
        return {
            "sub_id": {
                "format": "complex",
                "user": {"format": "email", "email": "alice@example.com"},
                "tenant": {"format": "opaque", "id": "acme"},
            },
            "transmitter_metadata": {"critical_subject_members": ["tenant"]},
        }
    if page == "docs/security-outbound-http.md":
        # A cloud metadata address: the guard must refuse it before any packet is sent.
        return {
            "url": "http://169.254.169.254/latest/meta-data",
            "token": "e30.e30.",
            "headers": {"Content-Type": "application/secevent+jwt"},
        }
    return {}


# ---- the fixtures -------------------------------------------------------------------


@pytest.fixture
def docs_env(settings, db) -> Iterator[dict[str, Any]]:
    """Test settings with a static signing key; restores every global registry after."""
    from django.contrib.auth import get_user_model

    from django_ssf import signals
    from django_ssf.core import subjects
    from django_ssf.core.events import registry

    settings.SSF = {**settings.SSF, "KEYS_PROVIDER": PROVIDER_PATH}
    user = get_user_model().objects.create_user(
        "alice", email="alice@example.com", password="old-password-123"
    )
    event_uris = set(registry.uris())
    formats = set(subjects.registered_formats())
    saved_receivers = list(signals.event_received.receivers)
    try:
        yield {"user": user}
    finally:
        for uri in set(registry.uris()) - event_uris:
            registry.unregister(uri)
        for name in set(subjects.registered_formats()) - formats:
            subjects.unregister_format(name)
        with signals.event_received.lock:
            signals.event_received.receivers[:] = saved_receivers
            signals.event_received.sender_receivers_cache.clear()


def new_handlers(before: list[Any]) -> list[Any]:
    """The ``@on_event`` receivers connected since :func:`snapshot_handlers`.

    (``on_event`` wraps the function: plain ``event_received.connect`` receivers have no
    ``__wrapped__``.)
    """
    from django_ssf import signals

    with signals.event_received.lock:
        entries = list(signals.event_received.receivers)
    added = []
    for key, receiver, *_ in entries:
        if key in before:
            continue
        if isinstance(receiver, weakref.ReferenceType):
            receiver = receiver()
        if hasattr(receiver, "__wrapped__"):
            added.append(receiver)
    return added


def snapshot_handlers() -> list[Any]:
    """The lookup keys of the ``event_received`` receivers connected now."""
    from django_ssf import signals

    with signals.event_received.lock:
        return [entry[0] for entry in signals.event_received.receivers]


def _run_handler(receiver: Any, event: Any) -> Any:
    from django_ssf.receiver.models import ReceiverStream

    return receiver(sender=ReceiverStream, event=event)


def run_page(page: str, namespace: dict[str, Any]) -> list[Block]:
    """Execute a page's runnable python blocks in order; returns the blocks run."""
    runnable = [b for b in blocks(page, "python") if b.marker not in ("skip", "settings")]
    ordered = [b for b in runnable if b.marker != "defer"] + [
        b for b in runnable if b.marker == "defer"
    ]
    for block in ordered:
        compiled = compile(block.code, block.where, "exec")
        if block.marker == "raises":
            with pytest.raises(Exception) as caught:
                exec(compiled, namespace)
            names = {cls.__name__ for cls in type(caught.value).__mro__}
            assert block.marker_arg in names, (
                f"{block.where} should raise {block.marker_arg}, raised {caught.value!r}"
            )
        else:
            with warnings.catch_warnings():
                # risc.sessions-revoked is deprecated on purpose; its example still runs.
                warnings.simplefilter("ignore", DeprecationWarning)
                exec(compiled, namespace)
    return ordered


# ---- every python block is accounted for ------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_parse_or_are_marked(page: str) -> None:
    """A block that is not marked ``skip`` is valid Python; skipped blocks are few."""
    for block in blocks(page, "python"):
        if block.marker == "skip":
            continue
        try:
            ast.parse(block.code)
        except SyntaxError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{block.where}: python block does not parse: {exc}")
        assert block.marker in ("", "settings", "raises", "defer"), (
            f"{block.where}: unknown docs-test marker {block.marker!r}"
        )


# ---- README ------------------------------------------------------------------------


def _received_event(event_type: str, subject: dict, **claims: Any) -> Any:
    from django_ssf.receiver.events import ReceivedEvent

    return ReceivedEvent(
        event_type=event_type,
        subject=subject,
        claims=dict(claims),
        jti="docs-jti-1",
        iss="https://idp.example.com",
        txn="docs-txn",
        raw="e30.e30.sig",
    )


def test_readme_starts_with_the_two_commands() -> None:
    first = blocks("README.md")[0]
    commands = [line.split("#")[0].strip() for line in first.code.strip().splitlines()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    assert (ROOT / "scripts" / "demo").exists() and (ROOT / "scripts" / "test").exists()


def test_readme_examples_emit_and_handle(docs_env: dict[str, Any]) -> None:
    from django_ssf.transmitter.models import OutboundSET

    user = docs_env["user"]
    stream = make_stream(method=c.DELIVERY_POLL, events=[c.CAEP_SESSION_REVOKED])
    before = snapshot_handlers()

    run_page("README.md", {})

    # The emit example stored one signed SET for the one interested stream.
    sets = list(OutboundSET.objects.filter(stream=stream))
    assert [s.event_type for s in sets] == [c.CAEP_SESSION_REVOKED]
    assert sets[0].status == OutboundSET.STATUS_PENDING and sets[0].token.count(".") == 2

    # The handler example connected one receiver, for RISC credential-compromise only,
    # that deactivates the user named by the subject.
    added = new_handlers(before)
    assert len(added) == 1
    assert _run_handler(added[0], _received_event(
        c.CAEP_SESSION_REVOKED, {"format": "email", "email": user.email})) is NOT_APPLICABLE
    _run_handler(
        added[0],
        _received_event(
            c.RISC_CREDENTIAL_COMPROMISE,
            {"format": "email", "email": user.email},
            credential_type="password",
        )
    )
    user.refresh_from_db()
    assert user.is_active is False


# ---- quickstart --------------------------------------------------------------------


def test_quickstart_examples(docs_env: dict[str, Any]) -> None:
    from django_ssf.transmitter.models import OutboundSET

    user = docs_env["user"]
    stream = make_stream(method=c.DELIVERY_POLL, events=[c.RISC_CREDENTIAL_COMPROMISE])
    before = snapshot_handlers()

    ran = run_page("docs/quickstart.md", _context("docs/quickstart.md", user))
    assert len(ran) >= 2

    # The transmitter example: the password was made unusable and one SET was stored.
    user.refresh_from_db()
    assert not user.has_usable_password()
    sets = list(OutboundSET.objects.filter(stream=stream))
    assert [s.event_type for s in sets] == [c.RISC_CREDENTIAL_COMPROMISE]

    # The receiver example: its handler acts on the user named by the subject.
    other = type(user).objects.create_user("bob", email="bob@example.com", password="pw-123456")
    added = new_handlers(before)
    assert len(added) == 1
    assert _run_handler(added[0], _received_event(
        c.CAEP_SESSION_REVOKED, {"format": "email", "email": "bob@example.com"}
    )) is NOT_APPLICABLE
    _run_handler(
        added[0],
        _received_event(
            c.RISC_CREDENTIAL_COMPROMISE,
            {"format": "email", "email": "bob@example.com"},
            credential_type="password",
        )
    )
    other.refresh_from_db()
    assert not other.has_usable_password()


def test_handler_examples_read_real_attributes() -> None:
    """``event.X`` in the handler examples names a field or property of ReceivedEvent."""
    from django_ssf.receiver.events import ReceivedEvent

    known = {f.name for f in dataclasses.fields(ReceivedEvent)} | {
        name for name, value in vars(ReceivedEvent).items() if isinstance(value, property)
    }
    for page in ("README.md", "docs/quickstart.md"):
        for block in blocks(page, "python"):
            if "on_event" not in block.code:
                continue
            used = set(re.findall(r"\bevent\.(\w+)", block.code))
            assert used, f"{block.where}: the handler example reads nothing from the event"
            assert used <= known, f"{block.where}: ReceivedEvent has no {used - known}"


# ---- settings excerpts -------------------------------------------------------------


def settings_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page, "python") if b.marker == "settings"]


@pytest.mark.parametrize("block", settings_blocks(), ids=lambda b: b.where)
def test_settings_excerpts_are_valid(block: Block) -> None:
    from django.conf import settings as django_settings

    namespace: dict[str, Any] = {}
    exec(compile(block.code, block.where, "exec"), namespace)
    assigned = {k for k in namespace if k.isupper()}
    assert assigned or {"app", "urlpatterns"} & set(namespace), (
        f"{block.where}: a settings block sets nothing"
    )

    if "SSF" in namespace:
        unknown = set(namespace["SSF"]) - set(DEFAULTS)
        assert not unknown, f"{block.where}: SSF has no setting(s) {unknown}"
    if "INSTALLED_APPS" in namespace:
        apps = [a for a in namespace["INSTALLED_APPS"] if isinstance(a, str)]
        needed = {
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "rest_framework",
            "oauth2_provider",
            "django_ssf.keys",
            "django_ssf.transmitter",
            "django_ssf.receiver",
        }
        assert needed <= set(apps), f"{block.where}: INSTALLED_APPS lacks {needed - set(apps)}"
        assert set(apps) <= set(django_settings.INSTALLED_APPS)
    if "OAUTH2_PROVIDER" in namespace:
        scopes = set(namespace["OAUTH2_PROVIDER"].get("SCOPES", {}))
        assert scopes == {DEFAULTS["TRANSMITTER_READ_SCOPE"], DEFAULTS["TRANSMITTER_MANAGE_SCOPE"]}
    if "CELERY_BEAT_SCHEDULE" in namespace:
        tasks = celery_task_names()
        for name, entry in namespace["CELERY_BEAT_SCHEDULE"].items():
            assert entry["task"] in tasks, f"{block.where}: beat entry {name}: no such task"
            assert isinstance(entry["schedule"], int | float)
    if "app" in namespace:
        # The Celery app of the deployment page finds every django-ssf task.
        app = namespace["app"]
        app.loader.import_default_modules()
        missing = DJANGO_SSF_TASKS - set(app.tasks)
        assert not missing, f"{block.where}: the documented Celery app misses {missing}"
    if "urlpatterns" in namespace:
        module = types.ModuleType("docs_urls")
        module.urlpatterns = namespace["urlpatterns"]
        for path in ("/.well-known/ssf-configuration", "/ssf/streams", "/ssf/jwks.json"):
            resolve(path, urlconf=module)


DJANGO_SSF_TASKS = {
    "django_ssf.transmitter.deliver_stream",
    "django_ssf.transmitter.fanout_event",
    "django_ssf.transmitter.sweep_outbox",
    "django_ssf.transmitter.check_inactivity",
    "django_ssf.transmitter.purge",
    "django_ssf.receiver.drain_stream",
    "django_ssf.receiver.process_pending_sets",
    "django_ssf.receiver.poll_streams",
    "django_ssf.receiver.keep_streams_alive",
    "django_ssf.receiver.purge",
}


def celery_task_names() -> set[str]:
    from celery import current_app


    return {name for name in current_app.tasks if name.startswith("django_ssf.")}


def test_documented_tasks_are_registered() -> None:
    """The tasks the pages name (and the Celery app example must find) are registered."""
    assert celery_task_names() == DJANGO_SSF_TASKS


def test_every_named_celery_task_exists() -> None:
    """``task `django_ssf...` `` in prose and ``"task": "..."`` in code name real tasks."""
    tasks = celery_task_names()
    pattern = re.compile(r"(?:[Tt]asks?\s+`|\"task\":\s*\")(django_ssf\.[\w.]+)[`\"]")
    seen = set()
    for page in PAGES:
        for name in pattern.findall(page_text(page)):
            seen.add(name)
            assert name in tasks, f"{page} names a Celery task that does not exist: {name}"
    # The integrator's pages name every periodic task at least once.
    assert {
        "django_ssf.transmitter.sweep_outbox",
        "django_ssf.transmitter.check_inactivity",
        "django_ssf.receiver.poll_streams",
        "django_ssf.receiver.process_pending_sets",
    } <= seen


# ---- management commands -----------------------------------------------------------

COMMAND_HEADING = re.compile(r"^### `(\w+)`\s*$", re.M)


def documented_commands() -> dict[str, str]:
    """``{command: its section of docs/commands.md}``."""
    text = page_text("docs/commands.md")
    heads = list(COMMAND_HEADING.finditer(text))
    sections = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        sections[head.group(1)] = text[head.end() : end]
    return sections


def our_commands() -> set[str]:
    return {
        name for name, app in get_commands().items() if app.startswith("django_ssf.") or app ==
        "example_project"
    }


def command_help(name: str, sub: str | None = None) -> str:
    app = get_commands()[name]
    parser = load_command_class(app, name).create_parser("manage.py", name)
    if sub is None:
        return parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[sub].format_help()
    raise AssertionError(f"{name} has no subcommands")


def test_every_command_is_documented() -> None:
    from django.test import override_settings

    with override_settings(INSTALLED_APPS=[*_installed_apps(), "example_project"]):
        commands = our_commands()
    assert commands == set(documented_commands())


def _installed_apps() -> list[str]:
    from django.conf import settings

    return list(settings.INSTALLED_APPS)


#: Commands whose options live on sub-commands, and those sub-commands.
_SUBCOMMANDS = {
    "ssf_keys": (
        "list", "generate", "rotate", "retire", "reencrypt", "rotate-client", "retire-client",
    ),
    "ssf_registration_token": ("create", "list", "revoke", "approve"),
}


@pytest.mark.parametrize("name", sorted(documented_commands()))
def test_documented_options_are_in_help(name: str) -> None:
    from django.test import override_settings

    section = documented_commands()[name]
    usage = [b.code for b in blocks("docs/commands.md", "sh") if f"manage.py {name}" in b.code]
    assert usage, f"docs/commands.md shows no usage line for {name}"
    with override_settings(INSTALLED_APPS=[*_installed_apps(), "example_project"]):
        assert name in get_commands(), f"documented command {name} does not exist"
        # Join continuation lines, then check each usage line against its (sub)parser.
        current_sub: str | None = None
        for code in usage:
            for line in code.replace("\\\n", " ").splitlines():
                line = line.split("#")[0]
                match = re.search(rf"manage\.py {name}\b(.*)", line)
                if match is None:
                    # a continuation of the previous usage line (indented options)
                    options = re.findall(r"(--[a-z][\w-]*)", line)
                    if options:
                        text = command_help(name, current_sub)
                        for option in options:
                            assert option in text, f"{name}: {option} not in --help"
                    continue
                rest = match.group(1)
                words = rest.split()
                current_sub = (
                    words[0]
                    if name in _SUBCOMMANDS and words and words[0][0].isalpha()
                    else None
                )
                text = command_help(name, current_sub)
                for option in re.findall(r"(--[a-z][\w-]*)", rest):
                    assert option in text, f"{name} {current_sub or ''}: {option} not in --help"
        # Options named in the prose of the section exist too.
        for option in set(re.findall(r"`(--[a-z][\w-]*)", section)):
            helps = [command_help(name)]
            if name in _SUBCOMMANDS:
                helps += [command_help(name, s) for s in _SUBCOMMANDS[name]]
            assert any(option in h for h in helps), f"{name}: {option} is documented, not real"


def test_every_mentioned_command_exists() -> None:
    from django.test import override_settings

    with override_settings(INSTALLED_APPS=[*_installed_apps(), "example_project"]):
        commands = set(get_commands())
    from django_ssf.core.setlog import FIELDS

    # Prometheus metric names (ssf_transmitter_*, ssf_receiver_*, ssf_jwks_*) and the
    # log records' ssf_* fields are not commands.
    pattern = re.compile(
        r"(?:manage\.py\s+|`)(ssf_(?!(?:transmitter|receiver|jwks)_)\w+|ensure_user)\b"
    )
    for page in PAGES:
        for name in pattern.findall(page_text(page)):
            if name in FIELDS:
                continue
            assert name in commands, f"{page} mentions a command that does not exist: {name}"


# ---- URL paths, settings names -----------------------------------------------------

URL_PATH = re.compile(r"`((?:/\.well-known|/ssf|/admin|/login|/logout|/whoami|/api)[^`\s]*)`")


@pytest.mark.parametrize("page", PAGES)
def test_url_paths_resolve(page: str) -> None:
    """Paths in backticks resolve in the example project (django-ssf at the root)."""
    for raw in URL_PATH.findall(page_text(page)):
        if raw == "/.well-known/":  # the directory, named as such
            continue
        path = raw.split("?")[0]
        path = re.sub(r"<[^>]+>", "x", path).replace("[", "").replace("]", "")
        path = path.replace("…", "x")
        try:
            resolve(path, urlconf="example_project.urls")
        except Resolver404:  # pragma: no cover - the message is the point
            pytest.fail(f"{page}: `{raw}` is not a route")


NON_SSF_NAMES = {
    # Django, Celery, django-oauth-toolkit, the environment
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "DEBUG",
    "ALLOWED_HOSTS",
    "APPEND_SLASH",
    "DATABASE_URL",
    "SSF_ISSUER",
    "SSF_SITE_NAME",
    "CELERY_BROKER_URL",
    "CELERY_TASK_DEFAULT_QUEUE",
    "PROMETHEUS_MULTIPROC_DIR",
    # the test command's environment (scripts/test)
    "SSF_FAULT_SETS",
    "SSF_TEST_PROCESSES",
    "SSF_METRICS_TOKEN",
    "CELERY_TASK_ALWAYS_EAGER",
    "CELERY_BEAT_SCHEDULE",
    "CELERY_RESULT_BACKEND",
    "CELERY_WORKER_CONSUMER",
    "OAUTH2_PROVIDER",
    "INSTALLED_APPS",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "ACCESS_TOKEN_EXPIRE_SECONDS",
    "SCOPES_BACKEND_CLASS",
    "REQUESTS_CA_BUNDLE",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "CONN_MAX_AGE",
    "SSF_TEST_REDIS_URL",
    "SSF_TEST_POSTGRES_URL",
    "SSF",
    "DATABASES",
    # values, not names
    "ALL",
    "NONE",
    "HS256",
    "RS256",
    "PS256",
    "ES256",
    "EDDSA",
    "A256GCM",
    "A192GCM",
    "A128GCM",
    "LOW",
    "MEDIUM",
    "HIGH",
    "USER",
    "DEVICE",
    "SESSION",
    "TENANT",
    "ORG_UNIT",
    "GROUP",
    "APPLICATION",
    "JSON",
    "JWT",
    "JWE",
    "JWS",
    "UPDATE",
    "SELECT",
}


@pytest.mark.parametrize("page", PAGES)
def test_setting_names_exist(page: str) -> None:
    import django_ssf.events as public_events

    text = page_text(page)
    for name in re.findall(r"SSF\[\"([A-Za-z_]+)\"\]", text):
        assert name in DEFAULTS, f"{page}: SSF[{name!r}] is not a setting"
    exported = set(dir(public_events)) | set(dir(c))
    for name in re.findall(r"`([A-Z][A-Z0-9_]{2,})`", text):
        assert name in DEFAULTS or name in exported or name in NON_SSF_NAMES, (
            f"{page}: `{name}` is neither a setting nor a known name"
        )


# ---- the other pages' examples ------------------------------------------------------

OTHER_RUNNABLE_PAGES = [
    p
    for p in PAGES
    if p not in ("README.md", "docs/quickstart.md")
    and any(b.marker not in ("skip", "settings") for b in blocks(p, "python"))
]


@pytest.mark.parametrize("page", OTHER_RUNNABLE_PAGES)
def test_page_examples_run(page: str, docs_env: dict[str, Any]) -> None:
    namespace = _context(page, docs_env["user"])
    ran = run_page(page, namespace)
    assert ran, f"{page}: nothing ran"
