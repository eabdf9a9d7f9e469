"""The service tests' common database: fresh, migrated, on each backend, with ACC1 funded with 100,000 USD.

A module that needs other accounts or amounts defines its own ``database`` fixture, which takes precedence.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oms.service.uow import Database
from tests.service.factories import funded_account, setup_database


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = setup_database(database_url)
    funded_account(database, "ACC1", "100000")
    yield database
    database.dispose()
