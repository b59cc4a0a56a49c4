"""Watermarks while inserts are deferred, on SQLite and PostgreSQL: a name's first move in a
transaction is an upsert (it takes the row's lock), the next ones are kept in memory and the
last is written once at flush / commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from connectors.store import CaseStore, StoreTransaction
from connectors.store import tables as t
from mapping.rules.assignment import resolve, round_robin_key
from mapping.rules.model import AssignSpec, Strategy

T0 = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


class Statements:
    """The SQL this transaction's connection sends to the database, by cursor execution."""

    def __init__(self, tx: StoreTransaction) -> None:
        self.sql: list[str] = []
        event.listen(tx.connection, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        self.sql.append(statement)

    def upserts(self) -> list[str]:
        return self._on_watermarks("INSERT")

    def reads(self) -> list[str]:
        return self._on_watermarks("SELECT")

    def _on_watermarks(self, verb: str) -> list[str]:
        return [s for s in self.sql if s.lstrip().upper().startswith(verb) and "watermarks" in s]


def stored(store: CaseStore, name: str) -> tuple[str, datetime] | None:
    """The committed row, as another transaction reads it."""
    with store.engine.connect() as connection:
        row = connection.execute(
            select(t.watermarks.c.value, t.watermarks.c.updated_at).where(
                t.watermarks.c.name == name
            )
        ).first()
    return None if row is None else (row.value, row.updated_at)


def raw_value(tx: StoreTransaction, name: str) -> str | None:
    """What the table holds inside the transaction, bypassing the transaction's memory."""
    return tx.connection.execute(
        select(t.watermarks.c.value).where(t.watermarks.c.name == name)
    ).scalar_one_or_none()


def test_deferred_moves_run_one_upsert_and_commit_the_last_value_and_time(
    store: CaseStore,
) -> None:
    with store.transaction() as tx:
        tx.set_watermark("w", "0", now=T0)
    with store.transaction() as tx:
        tx.defer_inserts()
        statements = Statements(tx)
        for n in range(1, 6):
            tx.set_watermark("w", str(n), now=T0 + timedelta(minutes=n))
        assert len(statements.upserts()) == 1  # the first move only: it takes the row lock
        assert tx.get_watermark("w") == "5"  # a read in the transaction sees the latest value
        assert statements.reads() == []  # ... answered from memory
        assert raw_value(tx, "w") == "1"  # the table still has the first move's value
    assert len(statements.upserts()) == 2  # + one at commit, with the last value
    assert stored(store, "w") == ("5", T0 + timedelta(minutes=5))


def test_flush_writes_each_moved_watermark_once(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.defer_inserts()
        statements = Statements(tx)
        for n in range(3):
            tx.set_watermark("a", f"a{n}", now=T0 + timedelta(seconds=n))
            tx.set_watermark("b", f"b{n}", now=T0 + timedelta(seconds=10 + n))
        tx.set_watermark("once", "x", now=T0)
        assert len(statements.upserts()) == 3  # a, b and once: each name's first move
        tx.flush()
        assert len(statements.upserts()) == 4  # a and b together; "once" is written already
        assert (raw_value(tx, "a"), raw_value(tx, "b")) == ("a2", "b2")
        tx.flush()
        assert len(statements.upserts()) == 4  # nothing left to write
        tx.set_watermark("a", "a3", now=T0 + timedelta(seconds=3))
        assert len(statements.upserts()) == 4  # still ours (the lock is held): memory only
    assert len(statements.upserts()) == 5
    assert stored(store, "a") == ("a3", T0 + timedelta(seconds=3))
    assert stored(store, "b") == ("b2", T0 + timedelta(seconds=12))
    assert stored(store, "once") == ("x", T0)


def test_deferred_round_robin_reads_and_writes_its_watermark_once(store: CaseStore) -> None:
    spec = AssignSpec(group="l1", strategy=Strategy.ROUND_ROBIN)
    groups = {"l1": ["a", "b", "c"]}
    with store.transaction() as tx:
        tx.defer_inserts()
        statements = Statements(tx)
        picks = [resolve(spec, groups, tx, now=T0) for _ in range(7)]
        assert len(statements.reads()) == 1 and len(statements.upserts()) == 1
    assert picks == ["a", "b", "c", "a", "b", "c", "a"]
    assert store.watermark(round_robin_key("l1")) == "a"
    with store.transaction() as tx:
        tx.defer_inserts()
        picks = [resolve(spec, groups, tx, now=T0) for _ in range(2)]
    assert picks == ["b", "c"]
    assert store.watermark(round_robin_key("l1")) == "c"


def test_a_failed_deferred_transaction_keeps_the_old_watermark(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.set_watermark("w", "1", now=T0)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.defer_inserts()
        for value in ("2", "3", "4"):
            tx.set_watermark("w", value, now=T0 + timedelta(hours=1))
        tx.flush()
        tx.set_watermark("w", "5", now=T0 + timedelta(hours=2))
        raise RuntimeError("bug")
    assert stored(store, "w") == ("1", T0)


def test_without_deferring_every_move_is_an_upsert(store: CaseStore) -> None:
    with store.transaction() as tx:
        statements = Statements(tx)
        for n in range(3):
            tx.set_watermark("w", str(n), now=T0 + timedelta(minutes=n))
            assert raw_value(tx, "w") == str(n)
        assert len(statements.upserts()) == 3
        assert tx.get_watermark("w") == "2"
    assert len(statements.upserts()) == 3  # the commit has nothing left to write
    assert stored(store, "w") == ("2", T0 + timedelta(minutes=2))


def test_a_rolled_back_savepoint_falls_back_to_the_value_last_written(store: CaseStore) -> None:
    # Deferring is not for transactions that roll back savepoints (see `defer_inserts`); if one
    # does, the transaction at least reads and commits the same value: the one last written.
    with store.transaction() as tx:
        tx.defer_inserts()
        tx.set_watermark("w", "a", now=T0)
        tx.set_watermark("w", "b", now=T0)
        savepoint = tx.connection.begin_nested()
        tx.set_watermark("w", "c", now=T0)
        savepoint.rollback()
        assert tx.get_watermark("w") == "a"
    assert stored(store, "w") == ("a", T0)
