"""What every `casedesk` sub-command shares: the --config option, settings, tables, Prefect.

Kept apart from `flows.cli` so that the sub-command modules can import it at the top without
importing the command tree that mounts them. Heavy modules are imported inside functions so that
`casedesk --help` stays fast.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from flows.settings import Settings

__all__ = [
    "ConfigOption",
    "clip",
    "display_width",
    "load",
    "one_shot_prefect",
    "prepare_prefect",
    "table",
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Settings file (default: CASEDESK_CONFIG or ./casedesk.toml)."
    ),
]


def load(config: Path | None) -> Settings:
    """The settings for a command; a bad file stops it here with one clear line."""
    from flows.settings import load_settings

    return load_settings(config)


def load_for_a_run(config: Path | None) -> Settings:
    """`load`, and the rules file checked too: a run that would stop at a bad rule (inside the
    flow, with Prefect's tracebacks) stops here instead, with one clear line. The flow reads
    the rules again when it starts (an edit in between is read then, and checked again)."""
    from mapping.rules import load_rules

    settings = load(config)
    load_rules(settings.rules_path)
    return settings


def display_width(text: str) -> int:
    """Columns a string takes in a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, width: int) -> str:
    """At most `width` terminal columns, with an ellipsis where it was cut."""
    if display_width(text) <= width:
        return text
    out, used = "", 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out, used = out + ch, used + w
    return out + "…"


def table(rows: Sequence[dict[str, Any]], *, max_width: int = 40) -> str:
    """A plain, aligned table that reads the same in any terminal or log."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [[clip(str(row[c]), max_width) for c in columns] for row in rows]
    widths = [
        max(display_width(c), *(display_width(r[i]) for r in cells)) for i, c in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        padded = (v + " " * (w - display_width(v)) for v, w in zip(values, widths, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def prepare_prefect() -> None:
    """Quiet one-shot flow runs: no telemetry, only warnings on the terminal."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


@contextmanager
def one_shot_prefect() -> Iterator[None]:
    """Flow runs started from the command line: no 1 s heartbeat join at the end of each."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
