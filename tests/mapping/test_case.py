"""The case record: lifecycle moves, labels, masking, numbering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from mapping.case import (
    ALLOWED_TRANSITIONS,
    Case,
    CaseSource,
    CaseStatus,
    LogKind,
    Person,
    Priority,
    ProblemType,
    SourceKind,
    format_case_number,
)
from mapping.errors import IllegalTransition

T0 = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


def make_case(**overrides: object) -> Case:
    values: dict[str, object] = {
        "number": "202405-001",
        "subject": "登录失败",
        "submitter": Person(name="张伟", department="销售部", email="zhang.wei@example.com"),
        "description": "登录系统时提示验证码失效",
        "source": CaseSource(kind=SourceKind.EMAIL, mailbox="support"),
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Case.model_validate(values)


def test_the_whole_process_is_a_legal_path() -> None:
    case = make_case()
    path = [
        CaseStatus.ASSIGNED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.ESCALATED,
        CaseStatus.RESOLVED,
        CaseStatus.REOPENED,
        CaseStatus.IN_PROGRESS,
        CaseStatus.RESOLVED,
        CaseStatus.CLOSED,
    ]
    for step, status in enumerate(path, start=1):
        assert case.move_to(status, at=T0 + timedelta(minutes=step), actor="owner")
    assert case.status is CaseStatus.CLOSED
    moves = [entry.text for entry in case.process_log if entry.kind is LogKind.STATUS]
    assert moves[0] == "new -> assigned"
    assert moves[-1] == "resolved -> closed"
    assert case.updated_at == T0 + timedelta(minutes=len(path))


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (CaseStatus.CLOSED, CaseStatus.IN_PROGRESS),
        (CaseStatus.RESOLVED, CaseStatus.ASSIGNED),
        (CaseStatus.NEW, CaseStatus.REOPENED),
        (CaseStatus.TRIAGE, CaseStatus.ESCALATED),
    ],
)
def test_an_illegal_move_names_the_case_and_both_states(
    start: CaseStatus, target: CaseStatus
) -> None:
    case = make_case(status=start)
    with pytest.raises(IllegalTransition) as raised:
        case.move_to(target, at=T0)
    message = str(raised.value)
    assert "202405-001" in message
    assert repr(start.value) in message and repr(target.value) in message
    assert case.status is start
    assert case.process_log == []


def test_every_status_can_reach_closed() -> None:
    for status in CaseStatus:
        reachable, frontier = {status}, [status]
        while frontier:
            for nxt in ALLOWED_TRANSITIONS[frontier.pop()]:
                if nxt not in reachable:
                    reachable.add(nxt)
                    frontier.append(nxt)
        assert CaseStatus.CLOSED in reachable or status is CaseStatus.CLOSED


def test_moving_to_the_same_status_is_a_no_op() -> None:
    case = make_case(status=CaseStatus.ASSIGNED)
    assert case.move_to(CaseStatus.ASSIGNED, at=T0) is False
    assert case.process_log == []


def test_labels_are_bilingual_and_parse_both_ways() -> None:
    assert ProblemType.PERMISSION.label_zh == "权限问题"
    assert ProblemType.parse("权限问题") is ProblemType.PERMISSION
    assert ProblemType.parse("How-To Question") is ProblemType.HOW_TO
    assert CaseStatus.parse("已升级") is CaseStatus.ESCALATED
    assert Priority.P2.raised() is Priority.P1 and Priority.P0.raised() is Priority.P0


def test_an_unknown_enum_value_is_a_clear_error() -> None:
    with pytest.raises(
        ValueError, match=r"unknown ProblemType 'hardware'.*system_fault \(系统故障\)"
    ):
        ProblemType.parse("hardware")
    with pytest.raises(ValidationError, match="priority"):
        make_case(priority="P5")


def test_submitter_is_shown_masked() -> None:
    person = Person(name="张伟", department="销售部", email="zhang.wei@example.com")
    assert person.masked == "张* (销售部)"
    assert person.masked_email == "z***@example.com"
    assert Person(name="").masked == "*"


def test_case_numbers_are_by_month_and_validated() -> None:
    assert format_case_number(date(2024, 5, 1), 1) == "202405-001"
    assert format_case_number(date(2024, 12, 31), 1234) == "202412-1234"
    with pytest.raises(ValidationError, match="YYYYMM-NNN"):
        make_case(number="2024-5-1")
    with pytest.raises(ValueError, match="starts at 1"):
        format_case_number(date(2024, 5, 1), 0)


def test_times_must_carry_a_zone() -> None:
    with pytest.raises(ValidationError, match="should have timezone info"):
        make_case(created_at=datetime(2024, 5, 20, 6, 0))  # naive on purpose


# The process log -----------------------------------------------------------------------------
def test_the_log_appends_in_order_and_leaves_earlier_entries_alone() -> None:
    case = make_case()
    first = case.log(LogKind.NOTE, "one", at=T0 + timedelta(minutes=1))
    log = case.process_log
    second = case.log(LogKind.NOTE, "two", at=T0 + timedelta(minutes=2))
    assert log == [first]  # a log read earlier is never changed behind the reader's back
    assert case.process_log == [first, second]
    assert case.process_log[0] is first
    assert case.updated_at == T0 + timedelta(minutes=2)


def test_logging_an_earlier_time_does_not_move_updated_at_back() -> None:
    case = make_case(updated_at=T0 + timedelta(hours=1))
    case.log(LogKind.NOTE, "late news", at=T0)
    assert case.updated_at == T0 + timedelta(hours=1)
    assert [entry.text for entry in case.process_log] == ["late news"]


def test_a_bad_entry_is_refused_and_leaves_the_log_as_it_was() -> None:
    case = make_case()
    case.log(LogKind.NOTE, "fine", at=T0)
    with pytest.raises(ValidationError):
        case.log(LogKind.NOTE, "no zone", at=datetime(2024, 5, 20, 6, 0))
    assert [entry.text for entry in case.process_log] == ["fine"]
    assert case.updated_at == T0


def test_the_log_is_the_case_s_own() -> None:
    # Appending in place must not reach into the list the case was made from.
    entries: list[object] = []
    case = make_case(process_log=entries)
    case.log(LogKind.NOTE, "x", at=T0)
    assert entries == []
    copy = case.model_copy(deep=True)
    case.log(LogKind.NOTE, "y", at=T0)
    assert [entry.text for entry in copy.process_log] == ["x"]


def test_a_shallow_copy_never_shares_the_log() -> None:
    case = make_case()
    case.log(LogKind.INTAKE, "first", at=T0)
    copy = case.model_copy()
    copy.log(LogKind.NOTE, "only on the copy", at=T0)
    case.log(LogKind.NOTE, "only on the case", at=T0)
    assert [e.text for e in case.process_log] == ["first", "only on the case"]
    assert [e.text for e in copy.process_log] == ["first", "only on the copy"]
