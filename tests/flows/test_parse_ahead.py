"""Parse workers: the same batches, in order, parsed as in-process; a failure loses nothing."""

from __future__ import annotations

import os
import signal
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.mailbox import RawMessage
from connectors.store import CaseStore, LedgerDecision, sha256_hex
from flows import parse_ahead
from flows.intake import ingest_batch
from flows.parse_ahead import ParseAhead, parse_in_worker
from mapping.parsed_email import ParsedEmail, parse_email
from tests.flows.intake_mail import context, raw_message, report

MAX_BYTES = 5 * 1024 * 1024


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


def batches(count: int, size: int = 3) -> list[list[RawMessage]]:
    uids = iter(range(1, count * size + 1))
    return [
        [
            raw_message(report(subject=f"报表 {b}-{m}", charset="gbk"), next(uids))
            for m in range(size)
        ]
        for b in range(count)
    ]


def test_batches_come_back_in_order_parsed_as_in_process() -> None:
    source = batches(5)
    with ParseAhead(MAX_BYTES, workers=1) as ahead:
        out = list(ahead.pipeline(iter(source)))
    assert [batch for batch, _ in out] == source
    assert out[0][1] is None  # the first batch is parsed in-process while the second is fetched
    assert ahead.batches_parsed_ahead == 4
    for batch, parsed in out[1:]:
        assert parsed is not None and list(parsed) == [message.location for message in batch]
        for message in batch:
            assert parsed[message.location].parsed == parse_email(message.raw)


def test_a_single_batch_starts_no_worker() -> None:
    with ParseAhead(MAX_BYTES, workers=1) as ahead:
        assert [parsed for _, parsed in ahead.pipeline(iter(batches(1)))] == [None]
        assert ahead._pool is None
        assert list(ahead.pipeline(iter([]))) == []


def test_no_workers_parses_everything_in_process() -> None:
    with ParseAhead(MAX_BYTES, workers=0) as ahead:
        assert [parsed for _, parsed in ahead.pipeline(iter(batches(3)))] == [None] * 3
        assert ahead._pool is None


def test_what_a_worker_finds_is_what_intake_would_decide(
    store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_parse = parse_email

    def parse(raw: bytes) -> ParsedEmail:
        if b"boom" in raw:
            raise RuntimeError("parser bug")
        return real_parse(raw)

    monkeypatch.setattr(parse_ahead, "parse_email", parse)
    raws = [report(subject="ok"), report(subject="boom"), b"", b"x" * 2048, report(subject="ok 2")]
    batch = [raw_message(raw, uid) for uid, raw in enumerate(raws, 1)]
    found = parse_in_worker([message.raw for message in batch], max_message_bytes=1024)
    assert [item.parsed is not None for item in found] == [True, False, False, False, True]
    assert [item.digest for item in found] == [sha256_hex(raw) for raw in raws]
    assert found[1].failure == "RuntimeError: parser bug"
    assert found[2].unreadable == "the message is empty"
    assert found[3].too_large
    done = ingest_batch(
        store,
        batch,
        context(max_message_bytes=1024),
        parsed={message.location: item for message, item in zip(batch, found, strict=True)},
    )
    assert done.decisions == {"new_report": 2, "quarantined": 3}
    reasons = [entry.reason for entry in store.ledger_entries(decision=LedgerDecision.QUARANTINED)]
    assert reasons == [
        "RuntimeError: parser bug",
        "cannot parse: the message is empty",
        "larger than max_message_bytes (2048 > 1024)",
    ]


def test_a_dead_worker_means_parsing_in_process_not_losing_mail(
    store: CaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    source = batches(4)
    with ParseAhead(MAX_BYTES, workers=1) as ahead:
        pipeline = ahead.pipeline(iter(source))
        seen = [next(pipeline)]  # the first batch; the second is with the worker
        pool = ahead._pool
        assert pool is not None
        for process in list(pool._processes.values()):  # type: ignore[union-attr]
            os.kill(process.pid, signal.SIGKILL)
        seen.extend(pipeline)
    assert [batch for batch, _ in seen] == source
    assert seen[-1][1] is None  # a batch the worker had finished before it died may be parsed
    assert "parse workers failed" in caplog.text
    for batch, parsed in seen:
        ingest_batch(store, batch, context(), parsed=parsed)
    assert len(store.list_cases()) == 12


def test_a_worker_loads_neither_the_database_layer_nor_the_parents_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forkserver child runs its parent's main module first (the `casedesk` script imports
    the CLI and Prefect): hidden while the worker starts, it never does. (Asked with a builtin:
    a function of this module would import this module, and the store, there.)"""
    script = tmp_path / "heavy_main.py"
    script.write_text("import sqlalchemy\n", encoding="utf-8")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    fake_main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    with ParseAhead(MAX_BYTES, workers=1) as ahead:
        future = ahead._submit(batches(1)[0])  # the worker starts here
        assert future is not None and len(future.result()) == 3
        pool = ahead._pool
        assert pool is not None
        question = "'{}' in __import__('sys').modules"
        assert pool.submit(eval, question.format("mapping.parsed_email")).result() is True
        assert pool.submit(eval, question.format("sqlalchemy")).result() is False
    assert fake_main.__file__ == str(script) and fake_main.__spec__ is None
