"""A page of a list that grows with the cases (cases, a desk's tasks, sharing agreements): the rows that match the
filters given, in a stable order, one page at a time, and how many match in all."""

from __future__ import annotations

import asyncpg


class Where:
    """A WHERE clause naming only the filters given, each value a parameter: a generic plan of ``$1 IS NULL OR …``
    is one plan for every combination, and it scans the whole table (28 ms a page of cases with 10,000 of them);
    a clause of the filters given alone is planned on their indexes."""

    def __init__(self) -> None:
        self.values: list[object] = []
        self._terms: list[str] = []

    def given(self, value: object) -> str:
        """The parameter that carries ``value`` (``$n``)."""
        self.values.append(value)
        return f"${len(self.values)}"

    def term(self, condition: str) -> None:
        self._terms.append(condition)

    @property
    def clause(self) -> str:
        return " AND ".join(self._terms) or "true"


async def page(connection: asyncpg.Connection, source: str, where: Where, columns: str, order: str,
               limit: int | None, offset: int) -> tuple[list[asyncpg.Record], int]:
    """The rows of ``source`` that match, ``limit`` of them (None: all) from ``offset`` on in ``order`` (which must
    be total, or a page could repeat a row of the page before), and how many match in all."""
    clause, values = where.clause, list(where.values)
    total: int = await connection.fetchval(f"SELECT count(*) FROM {source} WHERE {clause}", *values)
    n = len(values)
    rows = await connection.fetch(f"SELECT {columns} FROM {source} WHERE {clause} ORDER BY {order}"
                                  f" LIMIT ${n + 1} OFFSET ${n + 2}", *values, limit, offset)
    return rows, total


def next_offset(offset: int, shown: int, total: int) -> int | None:
    """Where the next page begins (None: the page shown is the last)."""
    after = offset + shown
    return after if after < total else None
