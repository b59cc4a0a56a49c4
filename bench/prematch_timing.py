"""Timing the rules' content matching where it runs, also inside a parse worker.

`TimedPrematch` wraps `IntakeContext.prematch`. Pickled into a worker (as the parse pool's
initializer argument), it starts from zero there and writes its running total to its own file
every few calls, so the benchmark can read what the worker spent on the rules.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flows.parse_ahead import Prematch
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
