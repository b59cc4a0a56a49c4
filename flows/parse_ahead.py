"""Parse the next batches of mail in a worker process while this one writes the current batch.

Parsing a message (MIME, charsets, HTML, quoted history) is about half of what intake spends
on it, and it needs nothing but the bytes; the rest (cases, rules, the confirmation, the
database) has to happen in order in one transaction per batch. So when a run finds more than
one batch of new mail, the batches after the current one are handed to worker processes and
come back parsed while this process writes; a run with one batch (the usual scheduled run)
parses in-process and starts no worker.

Workers come from a `forkserver`: a clean process started once, without this process's threads
(a flow run has Prefect's), with the parser already imported, so each worker starts in
milliseconds. Only the bytes travel to a worker, and only what parsing found travels back. If a
worker cannot be started or dies, the batch is parsed in-process instead: nothing is lost, it is
only slower. The order of the batches, the transaction per batch and the marking of a batch in
the mailbox after its commit are the same as without workers.

Given the run's `prematch` (the rules' part that needs only the mail: which rules' content
conditions hold, and what they decide but the due time), a worker also runs it over its batch
after parsing it; the rules travel to each worker once, when it starts.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain
from types import TracebackType

from connectors.mailbox import RawMessage
from mapping.errors import MessageParseError
from mapping.parsed_email import ParsedEmail, parse_email
from mapping.rules.conditions import Prematched

__all__ = [
    "ParseAhead",
    "ParseFailure",
    "Parsed",
    "Prematch",
    "default_workers",
    "parse_in_worker",
    "prematch_all",
    "prematch_safely",
]

#: The rules' content conditions checked on a parsed mail of a mailbox (see
#: `flows.intake.IntakeContext.prematch`); pickled to a worker once, when it starts.
Prematch = Callable[[ParsedEmail, str], Prematched]

logger = logging.getLogger(__name__)

#: Batches fetched and handed to workers ahead of the one being written: enough to keep a
#: worker busy while this process writes, few enough that memory stays flat (2 x batch size).
LOOKAHEAD = 2


@contextmanager
def _parent_main_hidden() -> Iterator[None]:
    """Workers started meanwhile do not import this process's `__main__`.

    A `forkserver` (or `spawn`) child first runs its parent's main module (as `__mp_main__`),
    so that functions defined there can be unpickled: here that is the `casedesk` script, which
    imports the whole CLI with Prefect, or a benchmark, ~50-100 MB in every worker for nothing
    (workers run `parse_in_worker` only, from this module). multiprocessing finds that module
    through `__main__.__spec__` and `__main__.__file__`; both are hidden while a worker starts
    (it starts inside `submit`, in this thread) and put back at once.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    missing = object()
    saved = {name: main.__dict__.get(name, missing) for name in ("__spec__", "__file__")}
    main.__spec__ = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                main.__dict__.pop(name, None)
            else:
                main.__dict__[name] = value


def default_workers() -> int:
    """One worker beside this process on a machine with two or more cores, none on one.

    This process (IMAP, rules, composing, the database) is the slower side of the pipeline, so
    more workers than one rarely help; `intake_parse_workers` sets it."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


class ParseFailure(Exception):
    """Parsing raised in a worker: what it raised, named as `Type: message`, as intake would."""

    def __init__(self, description: str) -> None:
        self.description = description
        super().__init__(description)


@dataclass(frozen=True)
class Parsed:
    """What a worker sends back for one message: nothing of the raw bytes, which we have."""

    digest: str
    parsed: ParsedEmail | None = None
    too_large: bool = False
    #: MessageParseError's reason (the message is quarantined as unreadable)...
    unreadable: str | None = None
    #: ...or anything else parsing raised, as `Type: message` (a bug: quarantined too).
    failure: str | None = None
    #: The rules' content conditions that hold, when the worker was given the rules.
    prematched: Prematched | None = None

    @property
    def error(self) -> Exception | None:
        if self.unreadable is not None:
            return MessageParseError(self.unreadable)
        if self.failure is not None:
            return ParseFailure(self.failure)
        return None


def prematch_safely(prematch: Prematch, parsed: ParsedEmail, mailbox: str) -> Prematched | None:
    """`prematch(parsed, mailbox)`, or None if it fails: the router then matches the rules
    itself, where a failure is handled like any other in the message's work (a rule set that
    breaks on one mail must not lose that mail here)."""
    try:
        return prematch(parsed, mailbox)
    except Exception as error:  # noqa: BLE001 - matched again, and handled, by the router
        logger.warning("checking the rules early failed (%s: %s)", type(error).__name__, error)
        return None


def parse_in_worker(
    raws: list[bytes],
    max_message_bytes: int,
    mailboxes: list[str] | None = None,
    prematch: Prematch | None = None,
) -> list[Parsed]:
    """Hash and parse a batch's messages and, given `prematch`, check the rules' content
    conditions on each (runs in a worker; also used in-process by tests)."""
    results = []
    for raw in raws:
        # What the store's `sha256_hex` gives; not imported from there, so that a worker does
        # not load the database layer (~30 MB of its memory).
        digest = hashlib.sha256(raw).hexdigest()
        if len(raw) > max_message_bytes:
            results.append(Parsed(digest, too_large=True))
            continue
        try:
            results.append(Parsed(digest, parsed=parse_email(raw)))
        except MessageParseError as error:
            results.append(Parsed(digest, unreadable=error.reason))
        except Exception as error:  # noqa: BLE001 - sent back, quarantined by intake
            results.append(Parsed(digest, failure=f"{type(error).__name__}: {error}"))
    if prematch is None or mailboxes is None:
        return results
    found = prematch_all(
        prematch, [(item.parsed, mailbox) for item, mailbox in zip(results, mailboxes, strict=True)]
    )
    return [
        item if prematched is None else replace(item, prematched=prematched)
        for item, prematched in zip(results, found, strict=True)
    ]


def prematch_all(
    prematch: Prematch, mails: list[tuple[ParsedEmail | None, str]]
) -> list[Prematched | None]:
    """`prematch_safely` over a batch's parsed mails (None for one that did not parse), after
    all the parsing, not mail by mail between parses: the rules' tables stay in the CPU's caches
    (interleaved with parsing, the same matching took twice as long)."""
    return [
        None if parsed is None else prematch_safely(prematch, parsed, mailbox)
        for parsed, mailbox in mails
    ]


#: This worker's `Prematch`, set once when it starts (`_start_worker`).
_worker_prematch: Prematch | None = None


def _start_worker(prematch: Prematch | None) -> None:
    global _worker_prematch
    _worker_prematch = prematch


def _parse_batch(raws: list[bytes], max_message_bytes: int, mailboxes: list[str]) -> list[Parsed]:
    """What a worker runs for each batch: `parse_in_worker` with the worker's `Prematch`."""
    return parse_in_worker(raws, max_message_bytes, mailboxes, _worker_prematch)


class ParseAhead:
    """Batches of raw mail in, the same batches out, each with its messages parsed.

    Use as a context manager around one run's fetch loop::

        with ParseAhead(max_message_bytes, workers=1) as ahead:
            for batch, parsed in ahead.pipeline(mailbox.fetch_new(cursor, 200)):
                ingest_batch(store, batch, context, parsed=parsed)

    `parsed` is None where the batch is to be parsed in-process (a single batch, no workers, or
    a worker failed).
    """

    def __init__(
        self,
        max_message_bytes: int,
        *,
        workers: int | None = None,
        prematch: Prematch | None = None,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        #: Given to each worker when it starts (pickled: for the rules, their source, which
        #: the worker compiles again), so a worker checks the rules' content conditions too.
        self.prematch = prematch
        self.workers = default_workers() if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False
        #: Batches parsed by workers in this run (for the run's log line and tests).
        self.batches_parsed_ahead = 0

    def __enter__(self) -> ParseAhead:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (for measuring their memory); none before they start."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return [process.pid for process in processes.values() if process.pid is not None]

    def _start(self) -> ProcessPoolExecutor | None:
        if self._pool is None and not self._broken and self.workers > 0:
            try:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(
                    ["mapping.parsed_email", "mapping.rules.conditions", "flows.parse_ahead"]
                )
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(self.prematch,),
                )
            except (OSError, ValueError) as error:
                logger.warning("cannot start parse workers (%s); parsing in-process", error)
                self._broken = True
        return self._pool

    def _submit(self, batch: list[RawMessage]) -> Future[list[Parsed]] | None:
        pool = self._start()
        if pool is None:
            return None
        try:
            with _parent_main_hidden():  # a worker may start here
                return pool.submit(
                    _parse_batch,
                    [message.raw for message in batch],
                    self.max_message_bytes,
                    [message.mailbox for message in batch],
                )
        except (BrokenProcessPool, RuntimeError) as error:
            self._give_up(error)
            return None

    def _give_up(self, error: BaseException) -> None:
        logger.warning("parse workers failed (%s); parsing in-process from here", error)
        self._broken = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _result(
        self, batch: list[RawMessage], future: Future[list[Parsed]] | None
    ) -> dict[str, Parsed] | None:
        if future is None:
            return None
        try:
            results = future.result()
        except (BrokenProcessPool, OSError, EOFError) as error:
            self._give_up(error)
            return None
        self.batches_parsed_ahead += 1
        return {message.location: item for message, item in zip(batch, results, strict=True)}

    def pipeline(
        self, batches: Iterable[list[RawMessage]]
    ) -> Iterator[tuple[list[RawMessage], dict[str, Parsed] | None]]:
        """Each batch in order, with its parsed messages by location (or None: in-process).

        The first batch is parsed in-process while the second is fetched; workers start only
        when there is a second batch."""
        source = iter(batches)
        first = next(source, None)
        if first is None:
            return
        second = next(source, None)
        if second is None or self.workers == 0:
            yield first, None
            for batch in chain([second] if second is not None else [], source):
                yield batch, None
            return
        window: deque[tuple[list[RawMessage], Future[list[Parsed]] | None]] = deque()
        window.append((second, self._submit(second)))
        yield first, None
        for batch in source:
            window.append((batch, self._submit(batch)))
            if len(window) > LOOKAHEAD:
                ready, future = window.popleft()
                yield ready, self._result(ready, future)
        while window:
            ready, future = window.popleft()
            yield ready, self._result(ready, future)
