"""Timing the rules inside a real intake: the router in this process, the prematch where it runs.

`TimedRouter` wraps `IntakeContext.route_new_case`; `TimedPrematch` wraps
`IntakeContext.prematch`. Pickled into a worker (as the parse pool's
initializer argument), it starts from zero there and writes its running total to its own file
every few calls, so the benchmark can read what the worker spent on the rules.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not imported for real: a parse worker unpickles this module, lightly
    from connectors.store import StoreTransaction
    from flows.intake import IntakeContext
    from flows.parse_ahead import Prematch
    from flows.routing import CaseRouter
    from mapping.case import Case
    from mapping.parsed_email import ParsedEmail
    from mapping.rules import Prematched

#: A worker writes its total every this many calls (and the bench counts only what it wrote).
WRITE_EVERY = 20


class TimedPrematch:
    def __init__(self, inner: Prematch, folder: Path, owner: int | None = None) -> None:
        self.inner, self.folder = inner, folder
        #: The benchmark's own process; any other one is a worker, which writes its totals.
        self.owner = os.getpid() if owner is None else owner
        self.seconds, self.calls = 0.0, 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (TimedPrematch, (self.inner, self.folder, self.owner))  # from zero in a worker

    def __call__(self, parsed: ParsedEmail, mailbox: str) -> Prematched:
        start = time.perf_counter()
        result = self.inner(parsed, mailbox)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        if self.calls % WRITE_EVERY == 0 and os.getpid() != self.owner:
            (self.folder / f"prematch-{os.getpid()}.txt").write_text(
                f"{self.calls} {self.seconds!r}"
            )
        return result

    def worker_totals(self) -> tuple[int, float]:
        """(calls, seconds) the workers wrote (this process's own are `calls`, `seconds`)."""
        calls, seconds = 0, 0.0
        for path in self.folder.glob("prematch-*.txt"):
            count, total = path.read_text().split()
            calls, seconds = calls + int(count), seconds + float(total)
        return calls, seconds


class TimedRouter:
    """Wraps the intake hook to add up the time the rules take inside a real intake.

    Composing the notices (triage, assignment mail) is mail work like the confirmation, so it is
    timed apart and counted as intake, not as rules.
    """

    def __init__(self, inner: CaseRouter) -> None:
        self.inner, self.seconds, self.notice_seconds = inner, 0.0, 0.0
        notify = inner._notify

        def timed_notify(tx: StoreTransaction, case: Case, kind: str, to: list[str]) -> None:
            start = time.perf_counter()
            notify(tx, case, kind, to)
            self.notice_seconds += time.perf_counter() - start

        inner._notify = timed_notify  # type: ignore[method-assign]

    def __call__(
        self,
        tx: StoreTransaction,
        case: Case,
        parsed: ParsedEmail,
        prematched: Prematched | None = None,
    ) -> None:
        start = time.perf_counter()
        self.inner(tx, case, parsed, prematched)
        self.seconds += time.perf_counter() - start

    @property
    def rules_seconds(self) -> float:
        return self.seconds - self.notice_seconds


def time_rules(context: IntakeContext, folder: Path) -> tuple[TimedRouter, TimedPrematch]:
    """Wrap `context`'s router and prematch (as `intake_context` made them) in the timers; a
    worker writes its prematch totals into `folder`."""
    from flows.routing import CaseRouter  # here, not at the top (see the imports)

    assert isinstance(context.route_new_case, CaseRouter) and context.prematch is not None
    router = TimedRouter(context.route_new_case)
    prematch = TimedPrematch(context.prematch, folder)
    context.route_new_case, context.prematch = router, prematch
    return router, prematch
