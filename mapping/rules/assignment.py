"""Who gets a case: a fixed person, round robin in a group, or the member with fewest open cases.

Round-robin state is the last person picked, kept as the watermark `rules:round_robin:<group>`
in the same transaction as the case, so it rolls back with it; an edited group simply continues
after that person (or from the top if they left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from mapping.rules.model import AssignSpec, Strategy

__all__ = ["AssignmentState", "PreviewState", "resolve", "round_robin_key"]


class AssignmentState(Protocol):
    """What assignment reads and writes; `StoreTransaction` is one."""

    def open_case_counts(self, owners: Sequence[str]) -> dict[str, int]: ...

    def get_watermark(self, name: str) -> str | None: ...

    def set_watermark(self, name: str, value: str, *, now: datetime | None = None) -> None: ...


class PreviewState:
    """State for a preview (the rules benchmark, tests): reads nothing, writes nothing, picks
    the first member. (`casedesk rules explain` picks nobody: it names the group and strategy.)"""

    def open_case_counts(self, owners: Sequence[str]) -> dict[str, int]:
        return dict.fromkeys(owners, 0)

    def get_watermark(self, name: str) -> str | None:
        return None

    def set_watermark(self, name: str, value: str, *, now: datetime | None = None) -> None:
        return None


def round_robin_key(group: str) -> str:
    return f"rules:round_robin:{group}"


def resolve(
    spec: AssignSpec,
    groups: Mapping[str, Sequence[str]],
    state: AssignmentState,
    *,
    now: datetime,
    exclude: Sequence[str] = (),
) -> str | None:
    """The person `spec` names; None when every member of its group is excluded."""
    if spec.person is not None:
        return spec.person
    assert spec.group is not None  # the model guarantees person xor group
    members = [member for member in groups[spec.group] if member not in exclude]
    if not members:
        return None
    if spec.strategy is Strategy.FEWEST_OPEN:
        counts = state.open_case_counts(members)
        # Ties go to the member listed first, so the choice is stable and explainable.
        return min(members, key=lambda member: (counts.get(member, 0), members.index(member)))
    # Walk the whole group from the one after the last pick, so excluding someone (the owner,
    # when picking collaborators) does not restart the rotation.
    everyone = list(groups[spec.group])
    key = round_robin_key(spec.group)
    last = state.get_watermark(key)
    following = everyone.index(last) + 1 if last in everyone else 0
    rotation = everyone[following:] + everyone[:following]
    chosen = next(member for member in rotation if member in members)
    state.set_watermark(key, chosen, now=now)
    return chosen
