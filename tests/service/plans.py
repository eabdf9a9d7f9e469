"""What a PostgreSQL statement really reads: EXPLAIN ANALYZE's row counts, for plan tests."""

from __future__ import annotations

from typing import Any

from oms.service.uow import Database


def explain(database: Database, options: str, sql: str, params: Any) -> list[Any]:
    """The rows of ``EXPLAIN <options> sql`` with these values, on a connection of its own (rolled back)."""
    connection = database.engine.raw_connection()
    driver = connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor:
            cursor.execute(f"EXPLAIN {options} {sql}", params)
            rows = cursor.fetchall()
        driver.rollback()
    finally:
        connection.close()
    return rows


def rows_examined(database: Database, sql: str, params: Any, relation: str) -> int:
    """Rows the statement's scans of ``relation`` looked at when executed: those they returned plus those
    their filters threw away, over all loops."""
    plan = explain(database, "(ANALYZE, FORMAT JSON)", sql, params)[0][0][0]["Plan"]

    def examined(node: dict[str, Any]) -> int:
        own = 0
        if node.get("Relation Name") == relation:
            looked_at = node["Actual Rows"] + node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
            own = looked_at * node["Actual Loops"]
        return own + sum(examined(child) for child in node.get("Plans", []))

    return int(examined(plan))
