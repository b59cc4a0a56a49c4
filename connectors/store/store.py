"""The case store: cases, the intake ledger, raw blobs, the outbox and sync watermarks.

Everything that crosses the process boundary is written here in one transaction with the case it
belongs to, so that a crash at any point leaves either all of it or none of it (see
`CaseStore.transaction`). SQLite is the default; PostgreSQL is the same code by URL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from connectors.store import tables as t
from connectors.store.migrate import upgrade_to_head
from connectors.store.records import (
    LedgerDecision,
    LedgerEntry,
    OutboxItem,
    OutboxMessage,
    OutboxStatus,
)
from mapping.case import Case, CaseStatus, Priority, SourceKind, format_case_number
from mapping.errors import CaseNotFound, ConcurrentUpdate, StoreError

__all__ = ["CaseStore", "StoreTransaction", "sha256_hex"]

logger = logging.getLogger(__name__)


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    # SQLite: one writer at a time. BEGIN IMMEDIATE takes the write lock at the start of every
    # transaction, so two processes allocating case numbers queue instead of failing with
    # "database is locked" halfway through (pysqlite's own BEGIN is deferred).
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _insert_for(connection: Connection, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT on both supported databases."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


@dataclass(frozen=True)
class _HotStatements:
    """The statements intake runs for every message, built once per database dialect.

    Their values are passed at execution: building a statement with `.values(...)` and its
    cache key cost 0.14 ms of the 0.18 ms each such insert took (SQLite, measured on the intake
    benchmark), more than the database's own work.
    """

    next_case_number: Any
    add_case: Any
    put_blob: Any
    record: Any
    queue: Any
    queue_many: Any
    suppressed: Any
    get_watermark: Any
    set_watermark: Any


@lru_cache(maxsize=4)
def _hot_statements(dialect_name: str) -> _HotStatements:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    counters = t.case_counters
    return _HotStatements(
        next_case_number=dialect.insert(counters)
        .values(month=bindparam("month"), last_sequence=1)
        .on_conflict_do_update(
            index_elements=["month"], set_={"last_sequence": counters.c.last_sequence + 1}
        )
        .returning(counters.c.last_sequence),
        add_case=insert(t.cases),
        put_blob=dialect.insert(t.blobs).on_conflict_do_nothing(index_elements=["sha256"]),
        record=insert(t.ledger),
        queue=dialect.insert(t.outbox)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(t.outbox.c.id),
        queue_many=dialect.insert(t.outbox).on_conflict_do_nothing(index_elements=["key"]),
        suppressed=select(t.suppressed_addresses.c.address, t.suppressed_addresses.c.reason).where(
            t.suppressed_addresses.c.address.in_(bindparam("addresses", expanding=True))
        ),
        # Round-robin assignment reads and moves a watermark for every case it assigns.
        get_watermark=select(t.watermarks.c.value).where(t.watermarks.c.name == bindparam("name")),
        set_watermark=dialect.insert(t.watermarks)
        .values(name=bindparam("name"), value=bindparam("value"), updated_at=bindparam("at"))
        .on_conflict_do_update(
            index_elements=["name"],
            set_={"value": bindparam("value"), "updated_at": bindparam("at")},
        ),
    )


class CaseStore:
    """The database behind casedesk. Open it with `CaseStore.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> CaseStore:
        """Connect, and bring the schema up to date unless told not to."""
        try:
            engine = _make_engine(url)
            if migrate:
                upgrade_to_head(engine)
        except SQLAlchemyError as error:
            safe_url = make_url(url).render_as_string(hide_password=True)
            raise StoreError(f"cannot open the case store at {safe_url}: {error}") from error
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """One unit of work: everything written through it commits together or not at all."""
        with self.engine.begin() as connection:
            tx = StoreTransaction(connection)
            yield tx
            tx.flush()

    # Reads that need no transaction of the caller's.
    def get_case(self, number: str) -> Case:
        with self.transaction() as tx:
            return tx.get_case(number)

    def list_cases(
        self,
        *,
        statuses: Iterable[CaseStatus] | None = None,
        priorities: Iterable[Priority] | None = None,
        limit: int | None = None,
    ) -> list[Case]:
        with self.transaction() as tx:
            return tx.list_cases(statuses=statuses, priorities=priorities, limit=limit)

    def ledger_entries(
        self, *, decision: LedgerDecision | None = None, case_number: str | None = None
    ) -> list[LedgerEntry]:
        with self.transaction() as tx:
            return tx.ledger_entries(decision=decision, case_number=case_number)

    def outbox_items(self, *, status: OutboxStatus | None = None) -> list[OutboxItem]:
        with self.transaction() as tx:
            return tx.outbox_items(status=status)

    def watermark(self, name: str) -> str | None:
        with self.transaction() as tx:
            return tx.get_watermark(name)

    def blob(self, sha256: str) -> bytes:
        with self.transaction() as tx:
            return tx.get_blob(sha256)


class StoreTransaction:
    """Reads and writes inside one database transaction (see `CaseStore.transaction`)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._hot = _hot_statements(connection.dialect.name)
        #: Watermarks this transaction wrote, by name (see `get_watermark`); None until the
        #: first write, when the savepoint listener is added.
        self._watermarks: dict[str, str] | None = None
        #: While deferring: watermarks set in memory only since their upsert, by name -> the
        #: time of the last set; `flush` writes them.
        self._watermarks_unwritten: dict[str, datetime] = {}
        #: Suppressed-or-not answers for a batch's addresses (see `prefetch_suppressed`).
        self._suppressed: dict[str, str | None] | None = None
        self._listening = False
        #: While on (`defer_inserts`), new cases, ledger rows and outbox messages wait here;
        #: so do the moves of watermarks after their first (`set_watermark`).
        self._deferring = False
        self._pending_cases: list[dict[str, Any]] = []
        self._pending_ledger: list[dict[str, Any]] = []
        self._pending_outbox: list[dict[str, Any]] = []
        #: Case counters while inserts are deferred: month -> the last number given.
        self._counters: dict[str, int] = {}
        #: Months whose last number was counted in memory and is not written yet.
        self._counters_unwritten: dict[str, int] = {}

    def defer_inserts(self) -> None:
        """From now on new cases, ledger rows and outbox messages are written together, in one
        statement per table, by `flush`: before any read of cases, the ledger or the outbox (all
        pending tables at once) and at commit.

        Intake's batches use it: one INSERT of 200 rows instead of 200 INSERTs saves about
        0.1 ms a row on SQLite. Their ids are not known until then: `record` and `queue` return
        None. Case numbers are counted in memory too (`allocate_case_number`), and so are a
        watermark's moves after its first (`set_watermark`).

        Not for a transaction that rolls back savepoints: a row deferred inside one would
        outlive it, and a watermark moved in memory before one would fall back to the value
        last written (intake's guarded re-run, which rolls back a message's savepoint, does not
        defer).
        """
        self._deferring = True

    def flush(self) -> None:
        """Write what `defer_inserts` held back (the transaction does this before commit)."""
        if self._pending_cases:
            rows, self._pending_cases = self._pending_cases, []
            self.connection.execute(self._hot.add_case, rows)
        if self._counters_unwritten:
            counted, self._counters_unwritten = self._counters_unwritten, {}
            for month, sequence in counted.items():
                self.connection.execute(
                    update(t.case_counters)
                    .where(t.case_counters.c.month == month)
                    .values(last_sequence=sequence)
                )
        if self._pending_ledger:
            rows, self._pending_ledger = self._pending_ledger, []
            self.connection.execute(self._hot.record, rows)
        if self._pending_outbox:
            rows, self._pending_outbox = self._pending_outbox, []
            self.connection.execute(self._hot.queue_many, rows)
        if self._watermarks_unwritten:
            unwritten, self._watermarks_unwritten = self._watermarks_unwritten, {}
            assert self._watermarks is not None  # a name is unwritten only after its upsert
            values = self._watermarks
            self.connection.execute(
                self._hot.set_watermark,
                [{"name": name, "value": values[name], "at": at} for name, at in unwritten.items()],
            )

    # Cases ----------------------------------------------------------------------------------
    def allocate_case_number(self, month: date) -> str:
        """The next `YYYYMM-NNN` of that month; gap-free because it rolls back with the case.

        While inserts are deferred, only a month's first number goes to the database (the
        upsert that takes the counter's row lock, or on SQLite the write lock already held,
        until commit, so no one else can number in between); the next ones are counted here
        and the last is written at `flush`."""
        key = f"{month.year:04d}{month.month:02d}"
        if self._deferring and key in self._counters:
            sequence = self._counters[key] + 1
            self._counters_unwritten[key] = sequence
        else:
            sequence = self.connection.execute(
                self._hot.next_case_number, {"month": key}
            ).scalar_one()
        if self._deferring:
            self._counters[key] = sequence
        return format_case_number(month, sequence)

    def add_case(self, case: Case, *, month: date) -> Case:
        """Store a new case, numbering it in `month` (the team's local month of its intake)."""
        if case.number is None:
            case.number = self.allocate_case_number(month)
        case.version = 1
        if self._deferring:
            self._pending_cases.append(self._case_columns(case))
        else:
            self.connection.execute(self._hot.add_case, self._case_columns(case))
        return case

    def save_case(self, case: Case) -> Case:
        """Write a changed case; refuses if someone else saved it since it was read."""
        self.flush()
        if case.number is None:
            raise StoreError("a case must be added before it is saved")
        expected = case.version
        old = self.get_case(case.number)
        if old.version != expected:
            raise ConcurrentUpdate(case.number, expected)
        if old.process_log != case.process_log[: len(old.process_log)]:
            raise StoreError(f"case {case.number}: the process log is append-only")
        case.version = expected + 1
        result = self.connection.execute(
            update(t.cases)
            .where(and_(t.cases.c.number == case.number, t.cases.c.version == expected))
            .values(**self._case_columns(case))
        )
        if result.rowcount != 1:
            case.version = expected
            raise ConcurrentUpdate(case.number, expected)
        return case

    def get_case(self, number: str) -> Case:
        self.flush()
        row = self.connection.execute(
            select(t.cases.c.record, t.cases.c.version).where(t.cases.c.number == number)
        ).first()
        if row is None:
            raise CaseNotFound(number)
        return self._case_from_row(row.record, row.version)

    def find_case(self, number: str) -> Case | None:
        try:
            return self.get_case(number)
        except CaseNotFound:
            return None

    def case_by_jira_key(self, key: str) -> Case | None:
        self.flush()
        row = self.connection.execute(
            select(t.cases.c.record, t.cases.c.version).where(t.cases.c.jira_key == key)
        ).first()
        return None if row is None else self._case_from_row(row.record, row.version)

    def list_cases(
        self,
        *,
        statuses: Iterable[CaseStatus] | None = None,
        priorities: Iterable[Priority] | None = None,
        owner: str | None = None,
        limit: int | None = None,
    ) -> list[Case]:
        self.flush()
        query = select(t.cases.c.record, t.cases.c.version).order_by(t.cases.c.id)
        if statuses is not None:
            query = query.where(t.cases.c.status.in_([s.value for s in statuses]))
        if priorities is not None:
            query = query.where(t.cases.c.priority.in_([p.value for p in priorities]))
        if owner is not None:
            query = query.where(t.cases.c.owner == owner)
        if limit is not None:
            query = query.limit(limit)
        return [self._case_from_row(r.record, r.version) for r in self.connection.execute(query)]

    def open_case_counts(self, owners: Sequence[str]) -> dict[str, int]:
        """How many open cases each person owns (for fewest-open-cases assignment)."""
        self.flush()
        closed = [CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value]
        rows = self.connection.execute(
            select(t.cases.c.owner, func.count())
            .where(t.cases.c.owner.in_(list(owners)), t.cases.c.status.not_in(closed))
            .group_by(t.cases.c.owner)
        )
        counts = dict.fromkeys(owners, 0)
        counts.update({row[0]: row[1] for row in rows})
        return counts

    @staticmethod
    def _case_columns(case: Case) -> dict[str, Any]:
        return {
            "number": case.number,
            "status": case.status.value,
            "priority": case.priority.value,
            "problem_type": case.problem_type.value,
            "owner": case.owner,
            "submitter_email": (case.submitter.email or "").lower() or None,
            "source_kind": case.source.kind.value,
            "jira_key": case.source.jira_key,
            "due_at": case.due_at,
            "created_at": case.created_at,
            "updated_at": case.updated_at,
            "version": case.version,
            "record": case.model_dump(mode="json", exclude={"version"}),
        }

    @staticmethod
    def _case_from_row(record: dict[str, Any], version: int) -> Case:
        return Case.model_validate({**record, "version": version})

    def email_case_numbers_without_jira_key(self) -> list[str]:
        """Email-born cases, not closed, that have no Jira issue yet: oldest first."""
        self.flush()
        query = (
            select(t.cases.c.number)
            .where(
                t.cases.c.source_kind == SourceKind.EMAIL.value,
                t.cases.c.jira_key.is_(None),
                t.cases.c.status != CaseStatus.CLOSED.value,
            )
            .order_by(t.cases.c.id)
        )
        return list(self.connection.execute(query).scalars())

    def jira_cases_updated_since(self, since: datetime | None) -> list[Case]:
        """Cases tied to a Jira issue, updated at or after `since` (None: all), oldest first."""
        self.flush()
        query = select(t.cases.c.record, t.cases.c.version).where(t.cases.c.jira_key.is_not(None))
        if since is not None:
            query = query.where(t.cases.c.updated_at >= since)
        rows = self.connection.execute(query.order_by(t.cases.c.id))
        return [self._case_from_row(row.record, row.version) for row in rows]

    # Blobs ----------------------------------------------------------------------------------
    def put_blob(self, content: bytes) -> str:
        """Keep bytes once, by their sha256; returns the hash."""
        return self.put_blobs([content])[0]

    def put_blobs(
        self, contents: Sequence[bytes], *, digests: Sequence[str] | None = None
    ) -> list[str]:
        """Keep several byte strings once each, in one round trip; returns their hashes.

        `digests` are their sha256 hex digests where the caller has them already (intake's
        parse workers hash every message: hashing 35 KB again costs ~20 us)."""
        if digests is None:
            digests = [sha256_hex(content) for content in contents]
        elif len(digests) != len(contents):
            raise StoreError("put_blobs: one digest per content")
        digests = list(digests)
        rows = {
            digest: {"sha256": digest, "size": len(content), "content": content}
            for digest, content in zip(digests, contents, strict=True)
        }
        if rows:
            self.connection.execute(self._hot.put_blob, list(rows.values()))
        return digests

    def get_blob(self, sha256: str) -> bytes:
        content = self.connection.execute(
            select(t.blobs.c.content).where(t.blobs.c.sha256 == sha256)
        ).scalar_one_or_none()
        if content is None:
            raise StoreError(f"no stored content with sha256 {sha256}")
        return bytes(content)

    # Ledger ---------------------------------------------------------------------------------
    def record(self, entry: LedgerEntry) -> int | None:
        """Write one ledger row; a second row for the same (source, location) is refused.

        Returns its id, or None while inserts are deferred (`defer_inserts`)."""
        values = entry.model_dump(exclude={"id"})
        if self._deferring:
            self._pending_ledger.append(values)
            return None
        result = self.connection.execute(self._hot.record, values)
        assert result.inserted_primary_key is not None  # a single-row INSERT always has one
        return int(result.inserted_primary_key[0])

    def seen_locations(self, source: str, locations: Sequence[str]) -> set[str]:
        self.flush()
        if not locations:
            return set()
        rows = self.connection.execute(
            select(t.ledger.c.location).where(
                t.ledger.c.source == source, t.ledger.c.location.in_(list(locations))
            )
        )
        return {row[0] for row in rows}

    def first_with_identity(self, source: str, identity: str) -> LedgerEntry | None:
        self.flush()
        row = self.connection.execute(
            select(t.ledger)
            .where(t.ledger.c.source == source, t.ledger.c.identity == identity)
            .order_by(t.ledger.c.id)
            .limit(1)
        ).first()
        return None if row is None else LedgerEntry.model_validate(row._asdict())

    def first_with_identities(
        self, source: str, identities: Sequence[str]
    ) -> dict[str, LedgerEntry]:
        """`first_with_identity` for many identities in one query: identity -> its first row."""
        self.flush()
        wanted = sorted(set(identities))
        if not wanted:
            return {}
        rows = self.connection.execute(
            select(t.ledger)
            .where(t.ledger.c.source == source, t.ledger.c.identity.in_(wanted))
            .order_by(t.ledger.c.id)
        )
        first: dict[str, LedgerEntry] = {}
        for row in rows:
            if row.identity not in first:
                first[row.identity] = LedgerEntry.model_validate(row._asdict())
        return first

    def case_number_for_message_id(self, message_id: str) -> str | None:
        """The case an earlier incoming message (by its Message-ID) was filed under."""
        self.flush()
        return self.connection.execute(
            select(t.ledger.c.case_number)
            .where(t.ledger.c.message_id == message_id, t.ledger.c.case_number.is_not(None))
            .order_by(t.ledger.c.id)
            .limit(1)
        ).scalar_one_or_none()

    def ledger_entries(
        self,
        *,
        decision: LedgerDecision | None = None,
        case_number: str | None = None,
        entry_id: int | None = None,
    ) -> list[LedgerEntry]:
        self.flush()
        query = select(t.ledger).order_by(t.ledger.c.id)
        if decision is not None:
            query = query.where(t.ledger.c.decision == decision.value)
        if case_number is not None:
            query = query.where(t.ledger.c.case_number == case_number)
        if entry_id is not None:
            query = query.where(t.ledger.c.id == entry_id)
        return [LedgerEntry.model_validate(row._asdict()) for row in self.connection.execute(query)]

    def update_ledger(self, entry_id: int, **values: Any) -> None:
        self.flush()
        self.connection.execute(update(t.ledger).where(t.ledger.c.id == entry_id).values(**values))

    # Outbox ---------------------------------------------------------------------------------
    def queue(self, message: OutboxMessage, *, now: datetime | None = None) -> int | None:
        """Queue a message once: a second call with the same key changes nothing (None).

        Returns the new row's id; None for a key queued before, and while inserts are deferred
        (`defer_inserts`)."""
        at = now or _now()
        row = {
            **message.model_dump(),
            "status": OutboxStatus.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
        }
        if self._deferring:
            self._pending_outbox.append(row)
            return None
        result = self.connection.execute(self._hot.queue, row)
        new_id = result.scalar_one_or_none()
        return None if new_id is None else int(new_id)

    def outbox_items(
        self, *, status: OutboxStatus | None = None, item_id: int | None = None
    ) -> list[OutboxItem]:
        self.flush()
        query = select(t.outbox).order_by(t.outbox.c.id)
        if status is not None:
            query = query.where(t.outbox.c.status == status.value)
        if item_id is not None:
            query = query.where(t.outbox.c.id == item_id)
        return [OutboxItem.model_validate(row._asdict()) for row in self.connection.execute(query)]

    def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        self.flush()
        query = (
            select(t.outbox)
            .where(
                t.outbox.c.status == OutboxStatus.QUEUED.value, t.outbox.c.next_attempt_at <= now
            )
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        return [OutboxItem.model_validate(row._asdict()) for row in self.connection.execute(query)]

    def update_outbox(self, item_id: int, **values: Any) -> None:
        self.flush()
        self.connection.execute(update(t.outbox).where(t.outbox.c.id == item_id).values(**values))

    def claim_due_outbox(self, now: datetime, limit: int, *, until: datetime) -> list[OutboxItem]:
        """Due messages, each taken until `until` so that no other sender sends it meanwhile.

        The claim moves `next_attempt_at` forward with a guarded UPDATE: of two senders racing
        for a row only one matches (SQLite takes the write lock at BEGIN, PostgreSQL re-checks
        the condition after the row lock). A sender that dies leaves the row due again at
        `until`.
        """
        due = self.due_outbox(now, limit)
        if not due:
            return []
        claimed = self.connection.execute(
            update(t.outbox)
            .where(
                t.outbox.c.id.in_([item.id for item in due]),
                t.outbox.c.status == OutboxStatus.QUEUED.value,
                t.outbox.c.next_attempt_at <= now,
            )
            .values(next_attempt_at=until)
            .returning(t.outbox.c.id)
        )
        ids = set(claimed.scalars())
        return [
            item.model_copy(update={"next_attempt_at": until}) for item in due if item.id in ids
        ]

    def update_outbox_many(self, changes: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Several rows changed alike (the same columns each) in one round trip."""
        self.flush()
        if not changes:
            return
        columns = list(changes[0][1])
        statement = (
            update(t.outbox)
            .where(t.outbox.c.id == bindparam("row_id"))
            .values({column: bindparam(f"new_{column}") for column in columns})
        )
        self.connection.execute(
            statement,
            [
                {"row_id": row_id, **{f"new_{c}": values[c] for c in columns}}
                for row_id, values in changes
            ],
        )

    def outbox_sent_since(self, since: datetime) -> list[tuple[list[str], datetime]]:
        """(recipients, sent_at) of every message sent since then: for per-recipient limits."""
        self.flush()
        rows = self.connection.execute(
            select(t.outbox.c.recipients, t.outbox.c.sent_at).where(
                t.outbox.c.status == OutboxStatus.SENT.value, t.outbox.c.sent_at >= since
            )
        )
        return [(list(row.recipients), row.sent_at) for row in rows]

    # Watermarks -----------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None:
        """The watermark's value as this transaction sees it.

        A value this transaction wrote is answered from memory: round robin reads and moves a
        watermark for every case it assigns, and the read cost as much as the write. That is
        what the database would answer: a transaction sees its own writes, and after the write
        no other one can change the row before we commit (SQLite: we hold the write lock;
        PostgreSQL: the upsert holds the row lock). Values only read are not kept, since under
        READ COMMITTED another transaction may change them between two reads.

        Watermarks moved in memory only (`set_watermark` while deferring) are among those
        written, so this never reads a row that `flush` has yet to change; the table has no
        other reader in a transaction, and other transactions see the values at our commit,
        which flushes first.
        """
        written = self._watermarks
        if written is not None and name in written:
            return written[name]
        return self.connection.execute(self._hot.get_watermark, {"name": name}).scalar_one_or_none()

    def set_watermark(self, name: str, value: str, *, now: datetime | None = None) -> None:
        """Move a watermark (created if new), stamped `now`.

        While inserts are deferred (`defer_inserts`) only a name's first move in this
        transaction runs the upsert, which takes the row's lock (PostgreSQL; SQLite: the write
        lock is held already) until commit, so no one else can change it in between; the next
        moves are kept here and the last one, with its time, is written at `flush`. Round
        robin moves one for every case it assigns: an upsert each was 13 % of the rules' time.
        """
        at = now or _now()
        written = self._watermarks
        if self._deferring and written is not None and name in written:
            written[name] = value
            self._watermarks_unwritten[name] = at
            return
        self.connection.execute(self._hot.set_watermark, {"name": name, "value": value, "at": at})
        if written is None:
            written = self._watermarks = {}
            self._forget_on_rollback()
        written[name] = value

    def _forget_on_rollback(self) -> None:
        """Intake and Jira sync roll back one message's or issue's savepoint and go on in the
        same transaction: what was written under it is undone, so what this transaction
        remembers of its writes (watermarks, suppressions) is forgotten then. Listening on
        this connection only, added once."""
        if not self._listening:
            event.listen(self.connection, "rollback_savepoint", self._forget_writes)
            self._listening = True

    def _forget_writes(self, *args: object) -> None:
        if self._watermarks is not None:
            self._watermarks.clear()
        # Moves kept in memory go too: the database's value is then the last one written, which
        # is what this transaction reads from now on (see `defer_inserts` on savepoints).
        self._watermarks_unwritten.clear()
        self._suppressed = None

    # Addresses we must not write to ---------------------------------------------------------
    def suppress_address(self, address: str, reason: str, *, now: datetime | None = None) -> None:
        self.connection.execute(
            _insert_for(self.connection, t.suppressed_addresses)
            .values(address=address.lower(), reason=reason, created_at=now or _now())
            .on_conflict_do_nothing(index_elements=["address"])
        )
        known = self._suppressed
        if known is not None:
            if known.get(address.lower()) is None:
                known[address.lower()] = reason
            self._forget_on_rollback()

    def prefetch_suppressed(self, addresses: Iterable[str]) -> None:
        """Ask once for a batch's addresses; `suppressed` then answers them from memory.

        Intake asks for every new report's sender (about 0.06 ms a query on SQLite). What this
        transaction suppresses afterwards is added; what another process suppresses meanwhile
        is seen at the next batch, and the outbox sender checks again before it sends.
        """
        wanted = sorted({a.lower() for a in addresses})
        known: dict[str, str | None] = dict.fromkeys(wanted)
        if wanted:
            rows = self.connection.execute(self._hot.suppressed, {"addresses": wanted})
            known.update({row[0]: row[1] for row in rows})
        self._suppressed = known

    def suppressed(self, addresses: Iterable[str]) -> dict[str, str]:
        """The addresses among these that bounced or asked not to be written to, with why."""
        wanted = [a.lower() for a in addresses]
        if not wanted:
            return {}
        known = self._suppressed
        if known is not None and all(address in known for address in wanted):
            return {a: reason for a in wanted if (reason := known[a]) is not None}
        rows = self.connection.execute(self._hot.suppressed, {"addresses": wanted})
        return {row[0]: row[1] for row in rows}
