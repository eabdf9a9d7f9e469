"""The Alembic migrations build exactly the schema the models declare, on SQLite and on PostgreSQL.

Why: migrations are written by hand (each with its reasons); a column, index or type that drifts from
``oms.db.models`` would only show when a statement built from the models met the migrated database.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from oms.db.engine import make_engine
from oms.db.models import Base


def test_a_migrated_database_has_no_difference_from_the_models(database_url: str) -> None:
    engine = make_engine(database_url)  # the fixture's database is migrated to head
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
