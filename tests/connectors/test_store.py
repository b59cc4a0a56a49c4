"""The case store on SQLite and PostgreSQL: cases, numbering, ledger, outbox, watermarks."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from connectors.store import (
    CaseStore,
    LedgerDecision,
    LedgerEntry,
    OutboxStatus,
    StoreTransaction,
    sha256_hex,
)
from mapping.case import CaseStatus, LogKind
from mapping.errors import CaseNotFound, ConcurrentUpdate, StoreError
from mapping.outgoing_mail import OutboxMessage
from mapping.rules.assignment import resolve, round_robin_key
from mapping.rules.model import AssignSpec, Strategy
from tests.mapping.test_case import make_case

T0 = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
MAY = date(2024, 5, 1)


@pytest.fixture
def store(store_url: str) -> CaseStore:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


def ledger_entry(location: str, **overrides: object) -> LedgerEntry:
    values: dict[str, object] = {
        "source": "email",
        "location": location,
        "identity": f"mid:{location}",
        "decision": LedgerDecision.NEW_REPORT,
        "reason": "test",
        "recorded_at": T0,
    }
    values.update(overrides)
    return LedgerEntry.model_validate(values)


def outbox_message(key: str) -> OutboxMessage:
    return OutboxMessage(
        key=key,
        case_number="202405-001",
        kind="confirmation",
        recipients=["zhang.wei@example.com"],
        subject="[Case 202405-001] 登录失败",
        message_id=f"{key}@casedesk.invalid",
        content=b"Subject: x\r\n\r\nbody\r\n",
    )


def test_a_case_round_trips_with_every_field(store: CaseStore) -> None:
    case = make_case(number=None, tags=["登录故障"], collaborators=["研发工程师", "运维专员"])
    case.log(LogKind.INTAKE, "reported by email", at=T0)
    with store.transaction() as tx:
        tx.add_case(case, month=MAY)
    assert case.number == "202405-001"
    stored = store.get_case("202405-001")
    assert stored == case
    assert stored.version == 1


def test_numbers_are_per_month(store: CaseStore) -> None:
    with store.transaction() as tx:
        numbers = [tx.allocate_case_number(MAY) for _ in range(3)]
        numbers.append(tx.allocate_case_number(date(2024, 6, 3)))
    assert numbers == ["202405-001", "202405-002", "202405-003", "202406-001"]


def test_a_failed_transaction_leaves_nothing_and_no_gap(store: CaseStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.add_case(make_case(number=None), month=MAY)
        tx.record(ledger_entry("support/INBOX/1/1"))
        tx.queue(outbox_message("202405-001/confirmation/1"))
        raise RuntimeError("crash before commit")
    assert store.list_cases() == []
    assert store.ledger_entries() == []
    assert store.outbox_items() == []
    with store.transaction() as tx:
        assert tx.allocate_case_number(MAY) == "202405-001"


def test_a_stale_save_is_refused(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.add_case(make_case(number=None), month=MAY)
    first, second = store.get_case("202405-001"), store.get_case("202405-001")
    first.move_to(CaseStatus.ASSIGNED, at=T0)
    with store.transaction() as tx:
        tx.save_case(first)
    second.move_to(CaseStatus.TRIAGE, at=T0)
    stale = pytest.raises(ConcurrentUpdate, match="202405-001 changed since it was read")
    with stale, store.transaction() as tx:
        tx.save_case(second)
    assert store.get_case("202405-001").status is CaseStatus.ASSIGNED


def test_the_process_log_cannot_be_rewritten(store: CaseStore) -> None:
    case = make_case(number=None)
    case.log(LogKind.INTAKE, "first", at=T0)
    with store.transaction() as tx:
        tx.add_case(case, month=MAY)
    case.process_log = []
    with pytest.raises(StoreError, match="append-only"), store.transaction() as tx:
        tx.save_case(case)


def test_an_unknown_case_is_named(store: CaseStore) -> None:
    with pytest.raises(CaseNotFound, match="202405-999"):
        store.get_case("202405-999")


def test_the_ledger_takes_each_location_once(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.record(ledger_entry("support/INBOX/1/1"))
        assert tx.seen_locations("email", ["support/INBOX/1/1", "support/INBOX/1/2"]) == {
            "support/INBOX/1/1"
        }
        earlier = tx.first_with_identity("email", "mid:support/INBOX/1/1")
        assert earlier is not None and earlier.location == "support/INBOX/1/1"
    with pytest.raises(IntegrityError), store.transaction() as tx:
        tx.record(ledger_entry("support/INBOX/1/1"))


def test_first_rows_of_many_identities_come_in_one_query(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.record(ledger_entry("support/INBOX/1/1", identity="mid:a@x"))
        tx.record(ledger_entry("support/INBOX/1/2", identity="mid:a@x"))
        tx.record(ledger_entry("support/INBOX/1/3", identity="sha256:00"))
        tx.record(ledger_entry("jira/SUP-1", source="jira", identity="mid:b@x"))
        first = tx.first_with_identities("email", ["mid:a@x", "sha256:00", "mid:b@x", "mid:a@x"])
        assert {identity: entry.location for identity, entry in first.items()} == {
            "mid:a@x": "support/INBOX/1/1",
            "sha256:00": "support/INBOX/1/3",
        }
        for identity, entry in first.items():
            assert tx.first_with_identity("email", identity) == entry
        assert tx.first_with_identities("email", []) == {}


def test_several_blobs_are_kept_once_in_one_call(store: CaseStore) -> None:
    with store.transaction() as tx:
        earlier = tx.put_blob(b"one")
        digests = tx.put_blobs([b"one", b"two", b"two", b""])
        assert digests[0] == earlier and digests[1] == digests[2]
        assert tx.put_blobs([]) == []
    assert [store.blob(digest) for digest in digests] == [b"one", b"two", b"two", b""]


def test_outbox_queueing_is_idempotent_by_key(store: CaseStore) -> None:
    with store.transaction() as tx:
        first = tx.queue(outbox_message("202405-001/confirmation/1"), now=T0)
        again = tx.queue(outbox_message("202405-001/confirmation/1"), now=T0)
    assert first is not None and again is None
    items = store.outbox_items(status=OutboxStatus.QUEUED)
    assert [item.key for item in items] == ["202405-001/confirmation/1"]
    with store.transaction() as tx:
        assert [i.id for i in tx.due_outbox(T0, 10)] == [first]
        assert tx.due_outbox(T0 - timedelta(seconds=1), 10) == []


def test_blobs_are_kept_once_and_watermarks_move(store: CaseStore) -> None:
    with store.transaction() as tx:
        digest = tx.put_blob(b"raw message")
        assert tx.put_blob(b"raw message") == digest
        tx.set_watermark("mailbox:support", "1")
        tx.set_watermark("mailbox:support", "2")
    assert store.blob(digest) == b"raw message"
    assert store.watermark("mailbox:support") == "2"
    assert store.watermark("jira:SUP") is None


def test_suppressed_addresses_are_case_insensitive(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.suppress_address("Gone@Example.com", "550 no such user")
        assert tx.suppressed(["gone@example.com", "ok@example.com"]) == {
            "gone@example.com": "550 no such user"
        }


def test_deferred_inserts_are_written_at_the_next_read_of_their_table_and_at_commit(
    store: CaseStore,
) -> None:
    def raw_count(tx: StoreTransaction, table: str) -> int:
        return int(tx.connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())

    with store.transaction() as tx:
        tx.defer_inserts()
        assert tx.record(ledger_entry("support/INBOX/1/1")) is None
        assert tx.record(ledger_entry("support/INBOX/1/2")) is None
        assert tx.queue(outbox_message("k1"), now=T0) is None
        assert tx.queue(outbox_message("k1"), now=T0) is None  # same key: one row in the end
        assert raw_count(tx, "ledger") == 0 and raw_count(tx, "outbox") == 0
        assert tx.seen_locations("email", ["support/INBOX/1/2"]) == {"support/INBOX/1/2"}
        assert raw_count(tx, "ledger") == 2 and raw_count(tx, "outbox") == 1
        tx.record(ledger_entry("support/INBOX/1/3"))
        tx.queue(outbox_message("k2"), now=T0)
        case = tx.add_case(make_case(number=None), month=MAY)
        assert raw_count(tx, "cases") == 0
        assert case.number is not None and tx.get_case(case.number).number == case.number
        assert raw_count(tx, "cases") == 1
    entries = store.ledger_entries()
    assert [entry.location[-1] for entry in entries] == ["1", "2", "3"]
    assert [entry.id for entry in entries] == sorted(entry.id for entry in entries)
    assert [item.key for item in store.outbox_items()] == ["k1", "k2"]


def test_deferred_case_numbers_are_counted_in_memory_and_stay_gap_free(store: CaseStore) -> None:
    def add(tx: StoreTransaction) -> str:
        case = make_case(number=None)
        tx.add_case(case, month=MAY)
        assert case.number is not None
        return case.number

    with store.transaction() as tx:
        tx.defer_inserts()
        statements: list[str] = []
        event.listen(
            tx.connection, "before_cursor_execute", lambda *args: statements.append(args[2])
        )
        numbers = [add(tx) for _ in range(3)]
        counter_statements = [sql for sql in statements if "case_counters" in sql]
        assert len(counter_statements) == 1  # the first number only; the others in memory
    assert [number[-3:] for number in numbers] == ["001", "002", "003"]
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.defer_inserts()
        add(tx)
        add(tx)
        raise RuntimeError("bug")
    with store.transaction() as tx:
        assert add(tx).endswith("-004")  # written at commit; the failed ones never were
    with store.transaction() as tx:
        tx.defer_inserts()
        assert [add(tx)[-3:] for _ in range(2)] == ["005", "006"]
        tx.flush()
        assert add(tx).endswith("-007")
    with store.transaction() as tx:
        assert add(tx).endswith("-008")


def test_deferred_inserts_go_when_the_transaction_fails(store: CaseStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.defer_inserts()
        tx.record(ledger_entry("support/INBOX/1/1"))
        raise RuntimeError("bug")
    assert store.ledger_entries() == []


def test_prefetched_suppressions_answer_from_memory_and_follow_this_transactions_writes(
    store: CaseStore,
) -> None:
    with store.transaction() as tx:
        tx.suppress_address("gone@example.com", "550 no such user")
    with store.transaction() as tx:
        tx.prefetch_suppressed(["Gone@Example.com", "ok@example.com", "later@example.com"])
        statements: list[str] = []
        event.listen(tx.connection, "before_execute", lambda *args: statements.append("x"))
        assert tx.suppressed(["gone@example.com"]) == {"gone@example.com": "550 no such user"}
        assert tx.suppressed(["OK@example.com"]) == {}
        assert statements == []  # both answered from memory
        tx.suppress_address("Later@Example.com", "bounced")
        statements.clear()
        assert tx.suppressed(["later@example.com"]) == {"later@example.com": "bounced"}
        assert statements == []
        assert tx.suppressed(["unknown@example.com"]) == {}
        assert statements == ["x"]  # not prefetched: asked


def test_a_rolled_back_suppression_is_forgotten(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.prefetch_suppressed(["a@example.com"])
        savepoint = tx.connection.begin_nested()
        tx.suppress_address("a@example.com", "bounced")
        assert tx.suppressed(["a@example.com"]) == {"a@example.com": "bounced"}
        savepoint.rollback()
        assert tx.suppressed(["a@example.com"]) == {}


def _allocate(url: str, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = CaseStore.open(url, migrate=False)
    numbers = []
    for _ in range(count):
        with store.transaction() as tx:
            case = make_case(number=None)
            tx.add_case(case, month=MAY)
            numbers.append(case.number)
    store.close()
    queue.put(numbers)


def test_eight_processes_get_unique_gap_free_numbers(store: CaseStore, store_url: str) -> None:
    processes, per_process = 8, 15
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_allocate, args=(store_url, per_process, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    numbers = [number for chunk in results for number in chunk]
    expected = [f"202405-{n:03d}" for n in range(1, processes * per_process + 1)]
    assert sorted(numbers) == expected
    assert len(store.list_cases()) == processes * per_process


def test_round_robin_rotates_within_and_across_transactions(store: CaseStore) -> None:
    # The transaction answers watermarks it wrote from memory; the rotation must not notice.
    spec = AssignSpec(group="l1", strategy=Strategy.ROUND_ROBIN)
    groups = {"l1": ["a", "b", "c"]}
    at = datetime(2024, 5, 20, tzinfo=UTC)
    with store.transaction() as tx:
        picks = [resolve(spec, groups, tx, now=at) for _ in range(2)]
    with store.transaction() as tx:
        picks += [resolve(spec, groups, tx, now=at) for _ in range(3)]
    assert picks == ["a", "b", "c", "a", "b"]
    assert store.watermark(round_robin_key("l1")) == "b"


def test_a_rolled_back_savepoint_undoes_a_remembered_watermark(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.set_watermark("rules:round_robin:l1", "a")
        savepoint = tx.connection.begin_nested()
        tx.set_watermark("rules:round_robin:l1", "b")
        assert tx.get_watermark("rules:round_robin:l1") == "b"
        savepoint.rollback()
        assert tx.get_watermark("rules:round_robin:l1") == "a"
        savepoint = tx.connection.begin_nested()
        tx.set_watermark("rules:round_robin:l1", "c")
        savepoint.commit()
        assert tx.get_watermark("rules:round_robin:l1") == "c"
    assert store.watermark("rules:round_robin:l1") == "c"


def test_a_rolled_back_transaction_keeps_the_old_watermark(store: CaseStore) -> None:
    with store.transaction() as tx:
        tx.set_watermark("w", "1")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.set_watermark("w", "2")
        raise RuntimeError("boom")
    with store.transaction() as tx:
        assert tx.get_watermark("w") == "1"


def test_put_blobs_takes_known_digests(store: CaseStore) -> None:
    contents = [b"raw one", b"raw two"]
    digests = [sha256_hex(content) for content in contents]
    with store.transaction() as tx:
        assert tx.put_blobs(contents, digests=digests) == digests
        with pytest.raises(StoreError, match="one digest per content"):
            tx.put_blobs(contents, digests=digests[:1])
    assert [store.blob(digest) for digest in digests] == contents
