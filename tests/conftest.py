"""Shared fixtures: databases (SQLite and a fresh PostgreSQL database), runtimes, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from maild.cluster.heartbeat import ClaimHeartbeat
from maild.config import Config, load_config
from maild.runtime import Runtime, open_runtime

pytest_plugins = [
    "tests.token_endpoint",  # `token_endpoint`: OAuth 2.0 token introspection on loopback
    "tests.dovecot",  # `dovecot`, `dovecot_tls`, `dovecot_oauth2`: a real Dovecot on loopback
    "tests.sink",  # `sink`: a recording SMTP relay on loopback
    "tests.postfix",  # `postfix_server`: a real Postfix on loopback
]

# Commands print for a pipe, as a user's script reads them: no terminal width. pytest-xdist's
# workers set COLUMNS=80 and LINES=24, which would wrap their tables and lines.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FIXTURES = ROOT / "fixtures" / "emails"
CORPUS = ROOT / "tests" / "corpus"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def services_required() -> bool:
    """In CI (MAILD_REQUIRE_SERVICES=1) a missing server is a failure, not a skip."""
    return os.environ.get("MAILD_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip locally with `reason`; fail when services are required."""
    if services_required():
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def _postgres_admin() -> object:
    import psycopg

    return psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3)
    except Exception as error:
        skip_or_fail(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({error})")
        raise
    name = f"maild_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'maild.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def make_config(tmp_path: Path, database_url: str | None = None,
                rules_dir: Path = RULES, **overrides: object) -> Config:
    """A configuration under `tmp_path` with no file and no environment."""
    values: dict[str, object] = {"data_dir": str(tmp_path / "var"),
                                 "rules_dir": str(rules_dir)}
    if database_url:
        values["database_url"] = database_url
    values.update(overrides)
    return load_config(path=None, env={}, overrides=values)


@pytest.fixture
def runtime(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    """A maild instance on a fresh database with the shipped rules."""
    instance = open_runtime(make_config(tmp_path, database_url))
    yield instance
    instance.engine.dispose()


@pytest.fixture
def sqlite_runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A maild instance on SQLite only, for tests about logic rather than storage."""
    instance = open_runtime(make_config(tmp_path))
    yield instance
    instance.engine.dispose()


@dataclass
class Result:
    """What a `maild` run printed and returned."""

    code: int
    stdout: str
    stderr: str
    raw_stdout: bytes


@dataclass
class MaildCLI:
    """Runs the real `maild` command in a working directory with its own data."""

    cwd: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: bytes | None = None,
                 extra_env: dict[str, str] | None = None) -> Result:
        env = dict(self.env)
        env.update(extra_env or {})
        done = subprocess.run(
            [sys.executable, "-m", "maild.cli", *args], cwd=self.cwd, env=env,
            input=input, capture_output=True, timeout=120, check=False)
        return Result(done.returncode, done.stdout.decode("utf-8", "replace"),
                      done.stderr.decode("utf-8", "replace"), done.stdout)


@pytest.fixture
def maild(tmp_path: Path) -> MaildCLI:
    """The `maild` command run in a fresh directory holding a copy-free link to the rules."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "rules").symlink_to(RULES)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAILD_")}
    env["MAILD_LOG_FORMAT"] = "json"
    return MaildCLI(cwd=work, env=env)


@pytest.fixture(autouse=True)
def _heartbeats_end_with_their_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that claims messages and never finishes them (a process that "dies") leaves no
    heartbeat renewing their leases afterwards, into a database that is gone and into the
    output of whatever test runs next in this process."""
    started: list[ClaimHeartbeat] = []
    hold = ClaimHeartbeat.hold

    def held(self: ClaimHeartbeat, inbound_ids: Any) -> None:
        started.append(self)
        hold(self, inbound_ids)

    monkeypatch.setattr(ClaimHeartbeat, "hold", held)
    yield
    for heartbeat in started:
        heartbeat.drop(heartbeat.held())


@pytest.fixture
def sqlalchemy_executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first word of every statement run through `Connection.execute` from now on."""
    executed: list[str] = []
    execute = Connection.execute

    def counted(self: Connection, statement: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(str(statement).split()[0])
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", counted)
    return executed
