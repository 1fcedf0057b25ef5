"""Write statements compiled once and run with plain tuples: the ingest writer's hot path.

SQLAlchemy Core builds, caches and compiles a statement and turns every row's dict into
driver parameters on each execution; on the ingest path that bookkeeping cost more than
the database work itself. A :class:`Compiled` statement is a Core statement compiled once
per engine dialect, with the bind processors of its columns (timestamps to UTC, JSON to
text, booleans) looked up once. Rows are converted with those processors and handed to
the driver's ``executemany`` through ``exec_driver_sql``, so what is stored is exactly
what Core would store, errors still arrive as SQLAlchemy exceptions, and the statement
runs inside the caller's transaction. On PostgreSQL asyncpg runs the ``executemany`` as
one prepared statement, pipelined.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import ValuesBase

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A write statement's SQL for one dialect, its parameters' names in positional order
    and the bind processor of each (None when the driver takes the value as it is)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[_Processor | None, ...]
    _values: Callable[[dict[str, Any]], Any] = field(init=False, repr=False, compare=False)
    _processed: tuple[tuple[int, _Processor], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        getter = operator.itemgetter(*self.names)
        # itemgetter of one name returns the value itself, not a 1-tuple.
        values = getter if len(self.names) > 1 else (lambda row: (getter(row),))
        object.__setattr__(self, "_values", values)
        processed = tuple((i, p) for i, p in enumerate(self.processors) if p is not None)
        object.__setattr__(self, "_processed", processed)

    def row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """The driver's positional parameters for one row given by name."""
        if not self._processed:
            return tuple(self._values(values))
        row = list(self._values(values))
        for index, process in self._processed:
            row[index] = process(row[index])
        return tuple(row)

    def rows(self, values: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [self.row(v) for v in values]

    def execute_many(self, conn: Connection, values: Sequence[dict[str, Any]]) -> None:
        """Run the statement once per row in ``values``, inside ``conn``'s transaction."""
        if values:
            conn.exec_driver_sql(self.sql, self.rows(values))


def compile_write(statement: ValuesBase, names: Sequence[str], dialect: Dialect) -> Compiled:
    """Compile an INSERT or UPDATE whose values are bind parameters named ``names``.

    Compiled for ``executemany``, so PostgreSQL adds no ``RETURNING``; a column default the
    compiler would add as one more parameter is refused: every column is given by name.
    """
    compiled = statement.compile(dialect=dialect, for_executemany=True)
    order = tuple(compiled.positiontup or ())
    if sorted(order) != sorted(names):
        raise ValueError(f"statement parameters {order} are not {tuple(names)}")
    processors = tuple(compiled.binds[name].type.bind_processor(dialect) for name in order)
    return Compiled(compiled.string, order, processors)


def insert_statement(table: sa.Table, names: Sequence[str]) -> Any:
    """``INSERT INTO table (names...) VALUES (...)`` with one bind parameter per column."""
    return table.insert().values({n: sa.bindparam(n, type_=table.c[n].type) for n in names})


class StatementCache:
    """Compiled statements per engine dialect and caller-chosen key, built on first use."""

    def __init__(self) -> None:
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, dict[Any, Compiled]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, dialect: Dialect, key: Any, build: Callable[[Dialect], Compiled]) -> Compiled:
        cache = self._by_dialect.setdefault(dialect, {})
        compiled = cache.get(key)
        if compiled is None:
            compiled = cache[key] = build(dialect)
        return compiled
