"""The one-command demo: two sites of the example project talking SSF in both directions.

``python -m example_project.demo`` (what ``./scripts/demo`` runs):

1. resets ``var/``, migrates two databases and creates the same demo user on both sites;
2. starts an identity provider (IdP) on ``127.0.0.1:8000`` and a SaaS app on
   ``127.0.0.1:8001``, both from ``example_project.settings``, each with its own database
   and issuer;
3. registers an OAuth client for the app at the IdP and connects the app to the IdP
   (push), registers a client for the IdP at the app and connects the IdP to the app
   (poll), and verifies both streams, all over the real HTTP control plane;
4. logs the demo user in on the app, logs the same user out at the IdP (the IdP emits a
   CAEP session-revoked event) and shows the app ending the user's session;
5. the reverse direction: the user logs out at the app, the IdP polls the app's event and
   ends the user's IdP session; then the app reports a compromised credential;
6. prints the URLs to open and keeps both sites running until Ctrl-C (``--no-wait`` exits
   instead), then stops every process it started.

Without ``CELERY_BROKER_URL`` tasks run in-process and a background ``ssf_poll`` process
polls for the IdP; with it set, each site gets a real Celery worker with beat.

The :class:`Site` and :class:`Demo` classes are also what the end-to-end tests drive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "manage.py"
HOST = "127.0.0.1"

DEMO_USER = "alice"
DEMO_EMAIL = "alice@example.com"
DEMO_PASSWORD = "alice-demo-password"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-demo-password"

SESSION_REVOKED = "caep.session-revoked"
CREDENTIAL_COMPROMISE = "risc.credential-compromise"

T = TypeVar("T")


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


class DemoFatal(DemoError):
    """A failure that waiting longer cannot fix (a process died, a SET was rejected)."""


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Call ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
        except DemoFatal:
            raise
        except (requests.RequestException, DemoError, ValueError) as exc:
            last_error, result = exc, None
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A currently unused TCP port on loopback (for tests that must not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """``preexec_fn``: ask Linux to SIGTERM the child if the orchestrator dies first."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def parse_json_output(text: str) -> Any:
    """The JSON document a management command printed (tolerating log lines around it)."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "[{":
            try:
                value, _ = decoder.raw_decode(text[index:])
            except ValueError:
                continue
            return value
    raise DemoError(f"expected JSON output, got: {text[-500:]!r}")


@dataclass
class Site:
    """One running site of the example project: its environment, commands and processes."""

    key: str
    title: str
    port: int
    database_url: str
    var_dir: Path
    broker_url: str | None = None
    queue: str | None = None
    python: str = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def session_cookie(self) -> str:
        return f"sessionid_{self.port}"

    @property
    def csrf_cookie(self) -> str:
        return f"csrftoken_{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "logs"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("CELERY_BROKER_URL", "CELERY_TASK_DEFAULT_QUEUE", "DJANGO_SETTINGS_MODULE"):
            env.pop(name, None)
        env.update(
            DJANGO_SETTINGS_MODULE="example_project.settings",
            DATABASE_URL=self.database_url,
            SSF_ISSUER=self.issuer,
            SSF_SITE_NAME=self.title,
            PYTHONUNBUFFERED="1",
        )
        if self.broker_url:
            env["CELERY_BROKER_URL"] = self.broker_url
        if self.queue:
            env["CELERY_TASK_DEFAULT_QUEUE"] = self.queue
        env.update(self.extra_env)
        return env

    # ---- management commands --------------------------------------------------------
    def manage(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run ``manage.py <args>`` against this site's database; raise on failure."""
        argv = [self.python, str(MANAGE), *args]
        try:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoError(
                f"[{self.key}] manage.py {' '.join(args)} timed out after {timeout}s"
            ) from exc
        if check and done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip())[-2000:]
            raise DemoError(
                f"[{self.key}] manage.py {' '.join(args)} exited {done.returncode}:\n{output}"
            )
        return done

    def manage_json(self, *args: str, timeout: float = 120) -> Any:
        return parse_json_output(self.manage(*args, timeout=timeout).stdout)

    # ---- processes ------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        """Start a long-running child with its output in ``var/logs/<site>-<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file(name), "ab")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the orchestrator, which stops us in order
            preexec_fn=_die_with_parent,
        )
        proc.log_handle = log  # type: ignore[attr-defined]
        self.processes[name] = proc
        return proc

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{self.key}-{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_file(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start_web(self, timeout: float = 60) -> None:
        if not port_is_free(self.port):
            raise DemoError(
                f"port {self.port} on {HOST} is in use: is another demo running? "
                "Stop it, or choose other ports with --idp-port/--app-port."
            )
        self.spawn(
            "web",
            [
                self.python,
                str(MANAGE),
                "runserver",
                f"{HOST}:{self.port}",
                "--noreload",
                "--insecure",  # serve the admin's static files without DEBUG
            ],
        )
        self.wait_web(timeout)

    def wait_web(self, timeout: float = 60) -> None:
        proc = self.processes["web"]

        def up() -> bool:
            if proc.poll() is not None:
                raise DemoFatal(
                    f"[{self.key}] web server exited with {proc.returncode}:\n"
                    + self.log_tail("web")
                )
            return requests.get(self.url("/whoami/"), timeout=2).status_code == 200

        wait_until(up, timeout, f"{self.title} on {self.base_url}")

    def start_worker(self) -> None:
        """A real Celery worker with embedded beat, on this site's own queue."""
        if not self.broker_url:
            raise DemoError("a Celery worker needs a broker URL")
        self.spawn(
            "worker",
            [
                self.python,
                "-m",
                "celery",
                "-A",
                "example_project",
                "worker",
                "-B",
                "--schedule",
                str(self.var_dir / f"{self.key}-celerybeat-schedule"),
                "--queues",
                self.queue or "celery",
                "--hostname",
                f"{self.queue or self.key}@%h",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
        )

    def start_poller(self) -> None:
        """The receiver's poll loop as a process (what Celery beat does when a broker is set)."""
        self.spawn("poller", [self.python, str(MANAGE), "ssf_poll"])

    def stop(self, name: str, timeout: float = 15) -> None:
        proc = self.processes.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Children of the child (none expected, but never leave any behind).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.log_handle.close()  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise DemoFatal(
                    f"[{self.key}] {name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                )

    # ---- browser-like HTTP ----------------------------------------------------------
    def login(self, username: str, password: str) -> requests.Session:
        """Log in through the real login form (CSRF included); return the browser session."""
        browser = requests.Session()
        page = browser.get(self.url("/login/"), timeout=10)
        page.raise_for_status()
        response = browser.post(
            self.url("/login/"),
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": browser.cookies.get(self.csrf_cookie, ""),
            },
            headers={"Referer": self.url("/login/")},
            allow_redirects=False,
            timeout=10,
        )
        if response.status_code != 302 or not self.whoami(browser)["authenticated"]:
            raise DemoError(f"[{self.key}] login as {username} failed ({response.status_code})")
        return browser

    def logout(self, browser: requests.Session) -> None:
        response = browser.post(
            self.url("/logout/"),
            data={"csrfmiddlewaretoken": browser.cookies.get(self.csrf_cookie, "")},
            headers={"Referer": self.url("/")},
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code not in (200, 302):
            raise DemoError(f"[{self.key}] logout failed ({response.status_code})")

    def whoami(self, browser: requests.Session) -> dict[str, Any]:
        response = browser.get(self.url("/whoami/"), timeout=10)
        response.raise_for_status()
        return response.json()

    # ---- SSF state, through the documented commands ---------------------------------
    def inbox(self, limit: int = 200) -> list[dict[str, Any]]:
        return self.manage_json("ssf_inbox", "--json", "--limit", str(limit))

    def inbox_entry(self, jti: str) -> dict[str, Any] | None:
        return next((row for row in self.inbox() if row.get("jti") == jti), None)

    def emit(
        self,
        event_type: str,
        subject: dict[str, Any],
        claims: dict[str, Any] | None = None,
        txn: str | None = None,
    ) -> list[str]:
        args = ["ssf_emit", event_type, "--subject", json.dumps(subject)]
        if claims:
            args += ["--claims", json.dumps(claims)]
        if txn:
            args += ["--txn", txn]
        return list(self.manage_json(*args)["jtis"])


PROCESSED_STATES = ("processed",)


class Demo:
    """The scenario, step by step; each step prints what it does and checks the outcome."""

    def __init__(
        self,
        var_dir: Path,
        idp_port: int = 8000,
        app_port: int = 8001,
        broker_url: str | None = None,
        database_urls: dict[str, str] | None = None,
        queue_prefix: str | None = None,
        out: Callable[[str], None] = print,
        python: str = sys.executable,
    ) -> None:
        self.var_dir = Path(var_dir).resolve()
        self.broker_url = broker_url
        self.out = out
        urls = database_urls or {}
        prefix = queue_prefix or f"ssf-demo-{os.getpid()}"
        self.idp = Site(
            key="idp",
            title="Identity provider",
            port=idp_port,
            database_url=urls.get("idp") or f"sqlite:///{self.var_dir / 'idp.sqlite3'}",
            var_dir=self.var_dir,
            broker_url=broker_url,
            queue=f"{prefix}-idp" if broker_url else None,
            python=python,
        )
        self.app = Site(
            key="app",
            title="SaaS app",
            port=app_port,
            database_url=urls.get("app") or f"sqlite:///{self.var_dir / 'app.sqlite3'}",
            var_dir=self.var_dir,
            broker_url=broker_url,
            queue=f"{prefix}-app" if broker_url else None,
            python=python,
        )
        self.step_no = 0
        # Filled in as the scenario runs.
        self.app_stream: dict[str, Any] = {}  # the app's receiver stream at the IdP (push)
        self.idp_stream: dict[str, Any] = {}  # the IdP's receiver stream at the app (poll)
        self.app_client: dict[str, Any] = {}
        self.idp_client: dict[str, Any] = {}

    @property
    def sites(self) -> tuple[Site, Site]:
        return (self.idp, self.app)

    @property
    def subject(self) -> dict[str, str]:
        return {"format": "email", "email": DEMO_EMAIL}

    def step(self, text: str) -> None:
        self.step_no += 1
        self.out(f"\n==> [{self.step_no}] {text}")

    def say(self, text: str) -> None:
        self.out(f"    {text}")

    # ---- set-up ---------------------------------------------------------------------
    def reset(self) -> None:
        """Remove what an earlier run left (SQLite files, logs, beat schedules)."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        for site in self.sites:
            if site.database_url.startswith("sqlite:///"):
                db = Path(site.database_url.removeprefix("sqlite:///"))
                for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")):
                    path.unlink(missing_ok=True)
            for path in self.var_dir.glob(f"{site.key}-celerybeat-schedule*"):
                path.unlink(missing_ok=True)
        shutil.rmtree(self.var_dir / "logs", ignore_errors=True)

    def prepare(self) -> None:
        self.step("Preparing two sites, each with its own database")
        self.reset()
        for site in self.sites:
            site.manage("migrate", "--noinput", timeout=300)
            # Then create the tables of any app without migrations (none in a release; a
            # checkout whose migrations are not generated yet still runs). Done second so
            # that their foreign keys find the migrated tables, as PostgreSQL requires.
            site.manage("migrate", "--noinput", "--run-syncdb", timeout=300)
            site.manage_json(
                "ensure_user", DEMO_USER, "--email", DEMO_EMAIL, "--password", DEMO_PASSWORD
            )
            site.manage_json(
                "ensure_user",
                ADMIN_USER,
                "--email",
                "admin@example.com",
                "--password",
                ADMIN_PASSWORD,
                "--superuser",
            )
            self.say(f"{site.title}: database {site.database_url}, users {DEMO_USER}, {ADMIN_USER}")

    def start(self) -> None:
        self.step("Starting both sites on loopback")
        for site in self.sites:
            if self.broker_url:
                site.start_worker()
            site.start_web()
            mode = f"Celery worker + beat on {self.broker_url}" if self.broker_url else (
                "tasks in-process"
            )
            self.say(f"{site.title}: {site.base_url} ({mode}; log {site.log_file('web')})")

    def connect(self) -> None:
        idp, app = self.idp, self.app
        self.step("Registering the app as a receiver client at the IdP (ssf_register_client)")
        self.app_client = idp.manage_json("ssf_register_client", "SaaS app")
        self.say(f"client_id {self.app_client['client_id']}, token endpoint "
                 f"{self.app_client['token_endpoint']}")

        self.step("Connecting the app to the IdP, push delivery (ssf_connect on the app)")
        self.app_stream = app.manage_json(
            "ssf_connect",
            idp.issuer,
            "--delivery",
            "push",
            "--client-id",
            self.app_client["client_id"],
            "--client-secret",
            self.app_client["client_secret"],
            "--token-endpoint",
            self.app_client["token_endpoint"],
            "--description",
            "SaaS app receives the IdP's signals",
        )
        self.say(f"stream {self.app_stream['stream_id']} ({self.app_stream['status']})")

        self.step("Verifying the app's stream (the IdP pushes a verification event)")
        app.manage("ssf_verify", str(self.app_stream["id"]), timeout=120)
        self.say("verified")

        self.step("Registering the IdP as a receiver client at the app")
        self.idp_client = app.manage_json("ssf_register_client", "Identity provider")
        self.say(f"client_id {self.idp_client['client_id']}")

        self.step("Connecting the IdP to the app, poll delivery (ssf_connect on the IdP)")
        self.idp_stream = idp.manage_json(
            "ssf_connect",
            app.issuer,
            "--delivery",
            "poll",
            "--client-id",
            self.idp_client["client_id"],
            "--client-secret",
            self.idp_client["client_secret"],
            "--token-endpoint",
            self.idp_client["token_endpoint"],
            "--description",
            "IdP receives the app's signals",
        )
        self.say(f"stream {self.idp_stream['stream_id']} ({self.idp_stream['status']})")
        if not self.broker_url:
            idp.start_poller()
            self.say(f"IdP poller started (ssf_poll; log {idp.log_file('poller')})")

        self.step("Verifying the IdP's stream (the IdP polls the app's verification event)")
        idp.manage("ssf_verify", str(self.idp_stream["id"]), timeout=120)
        self.say("verified")

    # ---- the two directions ---------------------------------------------------------
    def forward(self, timeout: float = 60) -> None:
        """IdP → app: a logout at the IdP ends the user's session at the app."""
        idp, app = self.idp, self.app
        self.step(f"Logging {DEMO_USER} in on the app")
        app_browser = app.login(DEMO_USER, DEMO_PASSWORD)
        self.say(f"app says: {app.whoami(app_browser)}")

        self.step(f"{DEMO_USER} logs out at the IdP: the IdP emits CAEP session-revoked (push)")
        idp_browser = idp.login(DEMO_USER, DEMO_PASSWORD)
        idp.logout(idp_browser)

        def app_session_ended() -> bool:
            return not app.whoami(app_browser)["authenticated"]

        wait_until(app_session_ended, timeout, f"the app to end {DEMO_USER}'s session")
        self.say(f"app says: {app.whoami(app_browser)}")
        self.say(f"the app ended {DEMO_USER}'s session on the IdP's signal")
        self.show_last_received(app)

    def reverse(self, timeout: float = 90) -> None:
        """App → IdP: a logout at the app ends the user's IdP session; then a RISC event."""
        idp, app = self.idp, self.app
        self.step(f"Logging {DEMO_USER} in at the IdP")
        idp_browser = idp.login(DEMO_USER, DEMO_PASSWORD)
        self.say(f"IdP says: {idp.whoami(idp_browser)}")

        self.step(f"{DEMO_USER} logs out at the app: the app emits CAEP session-revoked (poll)")
        app_browser = app.login(DEMO_USER, DEMO_PASSWORD)
        app.logout(app_browser)

        def idp_session_ended() -> bool:
            return not idp.whoami(idp_browser)["authenticated"]

        wait_until(idp_session_ended, timeout, f"the IdP to end {DEMO_USER}'s session")
        self.say(f"IdP says: {idp.whoami(idp_browser)}")
        self.say(f"the IdP polled the app's signal and ended {DEMO_USER}'s session")

        self.step("The app reports a compromised credential (RISC credential-compromise)")
        jtis = app.emit(
            CREDENTIAL_COMPROMISE, self.subject, claims={"credential_type": "password"}
        )
        self.say(f"emitted {', '.join(jtis)}")
        for jti in jtis:
            self.wait_processed(idp, jti, timeout)
        self.show_last_received(idp)

    def wait_processed(self, site: Site, jti: str, timeout: float = 60) -> dict[str, Any]:
        """Wait until ``site``'s inbox shows ``jti`` processed; fail on a rejection."""

        def processed() -> dict[str, Any] | None:
            row = site.inbox_entry(jti)
            if row and row.get("status") == "rejected":
                raise DemoFatal(f"[{site.key}] rejected {jti}: {row.get('error')}")
            return row if row and row.get("status") in PROCESSED_STATES else None

        return wait_until(processed, timeout, f"{site.title} to process {jti}", interval=0.5)

    def show_last_received(self, site: Site) -> None:
        rows = site.inbox(limit=1)
        if rows:
            row = rows[0]
            self.say(
                f"{site.title} inbox: {row.get('event_type')} from {row.get('iss')}, "
                f"status {row.get('status')}, jti {row.get('jti')}"
            )

    # ---- the end --------------------------------------------------------------------
    def print_urls(self) -> None:
        self.step("Both sites are running. Open them in a browser:")
        for site in self.sites:
            self.out(f"\n    {site.title}  {site.base_url}/")
            self.out(f"      login      {site.url('/login/')}  ({DEMO_USER} / {DEMO_PASSWORD})")
            self.out(
                f"      dashboard  {site.url('/ssf/dashboard/')}  ({ADMIN_USER} / {ADMIN_PASSWORD})"
            )
            self.out(f"      admin      {site.url('/admin/')}")
            self.out(f"      discovery  {site.url('/.well-known/ssf-configuration')}")
        self.out(
            f"\n    Try it: log in as {DEMO_USER} on both sites in one browser, keep both"
            " dashboards open as admin in another,\n    then log out on one site and reload"
            " the other: the session there has ended."
        )

    def wait_forever(self) -> None:
        self.out("\n    Press Ctrl-C to stop both sites.")
        while True:
            for site in self.sites:
                site.check_alive()
            time.sleep(1)

    def stop(self) -> None:
        for site in (self.app, self.idp):
            site.stop_all()


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m example_project.demo",
        description="Run two sites of the example project and show SSF in both directions.",
    )
    parser.add_argument("--no-wait", action="store_true", help="exit after the scenario")
    parser.add_argument("--idp-port", type=int, default=8000)
    parser.add_argument("--app-port", type=int, default=8001)
    parser.add_argument(
        "--var-dir", type=Path, default=ROOT / "var", help="databases and logs (reset each run)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)

    demo = Demo(
        var_dir=args.var_dir,
        idp_port=args.idp_port,
        app_port=args.app_port,
        broker_url=os.environ.get("CELERY_BROKER_URL") or None,
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print("django-ssf demo: an identity provider and a SaaS app, each a transmitter and a receiver")
    try:
        demo.prepare()
        demo.start()
        demo.connect()
        demo.forward()
        demo.reverse()
        demo.print_urls()
        if not args.no_wait:
            demo.wait_forever()
    except KeyboardInterrupt:
        print("\n==> Stopping (Ctrl-C)")
    except DemoError as exc:
        print(f"\n!! demo failed: {exc}", file=sys.stderr)
        print(f"!! logs are in {demo.var_dir / 'logs'}", file=sys.stderr)
        return 1
    finally:
        demo.stop()
    print("==> Both sites stopped; nothing is left running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
