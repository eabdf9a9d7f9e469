"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL, and Redis.

``database`` is the common one of the service and ledger tests: that fresh database, with ACC1 funded with
100,000 USD. A module or directory that needs other accounts or amounts defines its own, which takes precedence.

PostgreSQL tests clone a template database migrated once per run (CREATE DATABASE ... TEMPLATE), SQLite
tests copy a migrated file, so each test starts from the real schema without paying for migrations.
With ``CI=true`` an unreachable PostgreSQL or Redis fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text

from oms.db.engine import make_engine
from oms.db.migrate import upgrade
from oms.service.uow import Database
from tests.service.factories import funded_account, setup_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("OMS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("OMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEMPLATE_DB = f"oms_test_template_{os.getpid()}"  # per pytest process: parallel runs never collide

settings.register_profile(
    "ci", max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev")
settings.load_profile(HYPOTHESIS_PROFILE)
# The long profile's stateful tests run far past the suite's 300 s per-test timeout (pyproject.toml); with it, a
# test gets an hour unless --timeout or PYTEST_TIMEOUT says otherwise (a test's own timeout marker still wins).
LONG_PROFILE_TEST_TIMEOUT_S = 3600.0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Give the long Hypothesis profile a per-test timeout it can finish in, before pytest-timeout reads it."""
    if HYPOTHESIS_PROFILE == "long" and config.getoption("timeout", None) is None and not os.environ.get("PYTEST_TIMEOUT"):
        config.option.timeout = LONG_PROFILE_TEST_TIMEOUT_S


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    """An autocommit connection pool to the PostgreSQL server, used to create and drop test databases."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any connection failure means "not reachable"
        engine.dispose()
        _unavailable("PostgreSQL", error)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin: Engine) -> Iterator[str]:
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"'))
        connection.execute(text(f'CREATE DATABASE "{TEMPLATE_DB}"'))
    engine = make_engine(pg_url(TEMPLATE_DB))
    upgrade(engine)
    engine.dispose()
    yield TEMPLATE_DB
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _fresh_postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    pg_admin: Engine = request.getfixturevalue("pg_admin")
    template: str = request.getfixturevalue("pg_template")
    name = f"oms_test_{uuid.uuid4().hex[:16]}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield pg_url(name)
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _fresh_sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "oms.sqlite3"
    shutil.copyfile(template, path)
    yield f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database: every storage test runs once per backend."""
    if request.param == "postgresql":
        yield from _fresh_postgres(request)
    else:
        yield from _fresh_sqlite(request, tmp_path)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, for tests about PostgreSQL's own locking."""
    yield from _fresh_postgres(request)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A reachable Redis database, flushed before and after the test."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except Exception as error:  # noqa: BLE001
        _unavailable("Redis", error)
    client.flushdb()
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def stunnel() -> str:
    """The stunnel binary the TLS drills need (`.ci/run` installs it); missing: a skip here, a failure in CI."""
    from fix.tls_front import TlsFrontError, stunnel_binary

    try:
        return stunnel_binary()
    except TlsFrontError as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{error} (CI=true: a missing tool is a failure, not a skip)", pytrace=False)
        pytest.skip(str(error))


@pytest.fixture
def cli_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated SQLite file that the ``oms`` CLI uses (``OMS_DATABASE_URL``), as an operator's machine would."""
    from click.testing import CliRunner

    from cli.main import main
    from oms.settings import get_settings

    url = f"sqlite:///{tmp_path / 'oms.sqlite3'}"
    monkeypatch.setenv("OMS_DATABASE_URL", url)
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "ACC1", "100000")
    yield database
    database.dispose()
