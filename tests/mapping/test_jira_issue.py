"""Jira issue -> case record: the mapping tables, rich text both ways Jira writes it, malformed
issues, our own comments, status walks and what a later version may change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.jira_client import JiraComment, JiraIssue, JiraUser
from mapping.case import CaseStatus, LogKind, Priority, ProblemType, SourceKind
from mapping.jira_issue import (
    JiraMapping,
    JiraMappingError,
    add_comments,
    adf_to_text,
    apply_snapshot,
    case_label,
    created_issue_snapshot,
    map_issue,
    new_case_from_issue,
    rich_text,
    walk_status,
    wiki_to_text,
)

T0 = datetime(2024, 5, 20, 2, 0, tzinfo=UTC)
MIA = JiraUser(account_id="a1", name="mia", display_name="Mia Krystof", email="mia@example.com")
WANG = JiraUser(account_id="a2", display_name="王芳")  # Cloud often hides emails


@dataclass(frozen=True)
class PlainIssue:
    """An issue from plain values: the mapping needs no connector model."""

    key: str = "SUP-7"
    id: str = "10007"
    updated: datetime = T0
    created: datetime | None = T0 - timedelta(hours=1)
    summary: str = "登录提示验证码失效"
    description_text: str = "重试3次仍无法进入，Chrome，V2.1"
    status: str | None = "To Do"
    priority: str | None = "Medium"
    issuetype: str | None = "Task"
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    assignee: JiraUser | None = None
    reporter: JiraUser | None = MIA
    custom: dict[str, Any] = field(default_factory=dict)
    comments: tuple[JiraComment, ...] = ()


def issue(**values: Any) -> JiraIssue:
    """The connector's own model, as the sync passes it."""
    base: dict[str, Any] = {
        "key": "SUP-1",
        "id": "10001",
        "updated": T0,
        "created": T0 - timedelta(hours=2),
        "summary": "Export times out",
        "description_text": "Exporting the Q1 report fails after 30 s.",
        "status": "To Do",
        "priority": "Medium",
        "issuetype": "Task",
        "reporter": MIA,
    }
    return JiraIssue(**{**base, **values})


def comment(cid: str, text: str, *, ours: bool = False, minutes: int = 0) -> JiraComment:
    return JiraComment(
        id=cid, author=WANG, body_text=text, created=T0 + timedelta(minutes=minutes), is_ours=ours
    )


MAPPING = JiraMapping(
    collaborators_field="Collaborators",
    initial_analysis_field="Initial Analysis",
    solution_field="Solution",
    related_system_field="System",
    customer_email_field="Customer Email",
)


# -- the tables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("To Do", CaseStatus.NEW),
        ("to do", CaseStatus.NEW),
        ("In Progress", CaseStatus.IN_PROGRESS),
        ("Resolved", CaseStatus.RESOLVED),
        ("Done", CaseStatus.RESOLVED),
        ("Closed", CaseStatus.CLOSED),
    ],
)
def test_status_map(status: str, expected: CaseStatus) -> None:
    assert map_issue(issue(status=status), MAPPING).snapshot.status is expected


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        ("Highest", Priority.P0),
        ("High", Priority.P1),
        ("Medium", Priority.P2),
        ("Low", Priority.P2),
        ("Lowest", Priority.P2),
        (None, Priority.P2),
    ],
)
def test_priority_map(priority: str | None, expected: Priority) -> None:
    assert map_issue(issue(priority=priority), MAPPING).snapshot.priority is expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"issuetype": "Bug"}, ProblemType.SYSTEM_FAULT),
        ({"issuetype": "Question"}, ProblemType.HOW_TO),
        ({"issuetype": "Task"}, ProblemType.UNTRIAGED),
        # a label is more specific than the issue type
        ({"issuetype": "Bug", "labels": ("permission",)}, ProblemType.PERMISSION),
        ({"issuetype": "Task", "labels": ("Data",)}, ProblemType.DATA_ANOMALY),
    ],
)
def test_problem_type_from_type_labels(values: dict[str, Any], expected: ProblemType) -> None:
    assert map_issue(issue(**values), MAPPING).snapshot.problem_type is expected


def test_component_map_and_tags() -> None:
    mapping = MAPPING.model_copy(
        update={"problem_type_by_component": {"Billing": ProblemType.DATA_ANOMALY}}
    )
    mapped = map_issue(
        issue(
            components=("Billing", "Web"),
            labels=("vip", "casedesk-202405-001", "triaged"),
        ),
        mapping,
    )
    assert mapped.snapshot.problem_type is ProblemType.DATA_ANOMALY
    # our case label and the triage marker are bookkeeping, not tags
    assert mapped.snapshot.tags == ["vip", "Billing", "Web"]
    assert mapped.triaged_by_person


def test_people_and_custom_fields() -> None:
    mapped = map_issue(
        issue(
            assignee=MIA,
            reporter=WANG,
            custom={
                "Collaborators": [
                    {"accountId": "x", "displayName": "李雷", "emailAddress": "li@example.cn"},
                    {"accountId": "y", "displayName": "Sam"},
                ],
                "Initial Analysis": {
                    "type": "doc",
                    "version": 1,
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "DB"}]}],
                },
                "Solution": "h2. Fix\n*Restart* the exporter",
                "System": {"value": "ERP"},
                "Customer Email": "zhang@example.cn",
            },
        ),
        MAPPING,
    )
    snap = mapped.snapshot
    assert snap.owner == "mia@example.com"
    assert snap.collaborators == ["li@example.cn", "Sam"]
    assert snap.initial_analysis == "DB"
    assert snap.solution == "Fix\nRestart the exporter"
    assert snap.related_system == "ERP"
    # the customer, not the Jira reporter, is who gets asked for feedback
    assert mapped.submitter.name == "王芳" and mapped.submitter.email == "zhang@example.cn"
    assert mapped.triaged_by_person  # it has an assignee


def test_collaborators_from_a_text_field() -> None:
    mapped = map_issue(issue(custom={"Collaborators": "ops1, 运维二；ops1"}), MAPPING)
    assert mapped.snapshot.collaborators == ["ops1", "运维二"]


def test_plain_values_satisfy_the_mapping() -> None:
    mapped = map_issue(PlainIssue(), JiraMapping())
    case = new_case_from_issue(mapped, now=T0)
    assert case.subject == "登录提示验证码失效" and case.language.value == "zh"
    assert case.source.kind is SourceKind.JIRA and case.source.jira_key == "SUP-7"
    assert case.source.jira_id == "10007"
    assert case.created_at == T0 - timedelta(hours=1)
    assert case.process_log[0].kind is LogKind.INTAKE


# -- rich text ---------------------------------------------------------------------------------


def test_adf_to_text() -> None:
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "heading", "content": [{"type": "text", "text": "Steps"}]},
            {
                "type": "orderedList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}
                        ],
                    },
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "b"}]}
                        ],
                    },
                ],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "ask "},
                    {"type": "mention", "attrs": {"id": "1", "text": "@王芳"}},
                    {"type": "hardBreak"},
                    {"type": "inlineCard", "attrs": {"url": "https://x.example/1"}},
                ],
            },
            {"type": "codeBlock", "content": [{"type": "text", "text": "ERR 42"}]},
        ],
    }
    assert adf_to_text(doc) == "Steps\n\n- a\n- b\n\nask @王芳\nhttps://x.example/1\n\nERR 42"
    assert rich_text(doc) == adf_to_text(doc)


@pytest.mark.parametrize(
    ("wiki", "text"),
    [
        ("h1. Login fails", "Login fails"),
        ("*bold* and _italic_ and {{code}}", "bold and italic and code"),
        ("my_var_name and 2*3*4", "my_var_name and 2*3*4"),  # not markup
        ("* one\n* two\n# three", "- one\n- two\n- three"),
        ("see [the docs|https://d.example/x] or [https://e.example]", None),
        (
            "[~wang.fang] please check !shot.png|thumbnail!",
            "@wang.fang please check [image: shot.png]",
        ),
        ("{code:java}\nint x = 1;\n{code}", "int x = 1;"),
        ("{quote}还是不行{quote}", "还是不行"),
        ("||a||b||\n|1|2|", "a | b\n1 | 2"),
        ("first\\\\second", "first\nsecond"),
    ],
)
def test_wiki_to_text(wiki: str, text: str | None) -> None:
    if text is None:
        assert wiki_to_text(wiki) == "see the docs (https://d.example/x) or https://e.example"
    else:
        assert wiki_to_text(wiki) == text


def test_markup_is_only_read_as_wiki_when_asked() -> None:
    assert rich_text("*kept*", "plain") == "*kept*"
    mapped = map_issue(issue(description_text="h3. Title\n*x*"), MAPPING, markup="wiki")
    assert mapped.snapshot.description == "Title\nx"


# -- malformed issues --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"summary": "   "}, "no summary"),
        ({"status": None}, "no status"),
        ({"status": "Mystery"}, "unknown status 'Mystery'"),
    ],
)
def test_malformed_issue_says_why(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(JiraMappingError, match=reason) as caught:
        map_issue(issue(**values), MAPPING)
    assert caught.value.key == "SUP-1" and "SUP-1" in str(caught.value)


# -- comments ----------------------------------------------------------------------------------


def test_comments_skip_ours_and_are_logged_once() -> None:
    comments = [
        comment("1", "Looking at the logs", minutes=1),
        comment("2", "用户回复\n\n[casedesk] casedesk-reply:202405-001:1", ours=True, minutes=2),
        comment("3", "Replied by someone pasting [casedesk]", minutes=3),  # marker: not imported
        comment("4", "h3. Fixed\n*Restart* done", minutes=4),
    ]
    mapped = map_issue(issue(), MAPPING, comments=comments, markup="wiki")
    assert [c.id for c in mapped.comments] == ["1", "4"] and mapped.own_comments_skipped == 2
    assert mapped.comments[1].text == "Fixed\nRestart done"
    case = new_case_from_issue(mapped, now=T0)
    assert add_comments(case, mapped.comments) == 2
    assert add_comments(case, mapped.comments) == 0  # the same comments again add nothing
    logged = [e for e in case.process_log if e.kind is LogKind.COMMENT]
    assert [(e.actor, e.source_ref) for e in logged] == [
        ("王芳", "jira-comment:1"),
        ("王芳", "jira-comment:4"),
    ]


# -- status walks ------------------------------------------------------------------------------


def new_case(status: str = "To Do") -> Any:
    return new_case_from_issue(map_issue(issue(status=status), MAPPING), now=T0)


def test_walk_direct_and_through_reopened() -> None:
    case = new_case()
    assert walk_status(case, CaseStatus.CLOSED, at=T0).path == [CaseStatus.CLOSED]
    walk = walk_status(case, CaseStatus.IN_PROGRESS, at=T0, reason="Jira status In Progress")
    assert walk.path == [CaseStatus.REOPENED, CaseStatus.IN_PROGRESS]
    moves = [e.text for e in case.process_log if e.kind is LogKind.STATUS]
    assert moves[-2:] == [
        "closed -> reopened: Jira status In Progress; on the way to in_progress",
        "reopened -> in_progress: Jira status In Progress",
    ]


def test_to_do_on_a_case_in_work_changes_nothing_and_on_a_resolved_one_reopens() -> None:
    case = new_case()
    walk_status(case, CaseStatus.IN_PROGRESS, at=T0)
    assert not walk_status(case, CaseStatus.NEW, at=T0).moved
    assert case.status is CaseStatus.IN_PROGRESS
    walk_status(case, CaseStatus.RESOLVED, at=T0)
    assert walk_status(case, CaseStatus.NEW, at=T0).path == [CaseStatus.REOPENED]


def test_a_forbidden_jump_walks_through_legal_states() -> None:
    case = new_case()
    walk_status(case, CaseStatus.IN_PROGRESS, at=T0)
    walk = walk_status(case, CaseStatus.TRIAGE, at=T0, reason="Jira status Triage")
    assert walk.path == [CaseStatus.ASSIGNED, CaseStatus.TRIAGE]
    case.status = CaseStatus.CLOSED
    odd = walk_status(case, CaseStatus.TRIAGE, at=T0, reason="Jira status Triage")
    assert odd.path == [CaseStatus.REOPENED, CaseStatus.ASSIGNED, CaseStatus.TRIAGE]


def test_unreachable_target_keeps_status_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from mapping import jira_issue

    case = new_case()
    case.status = CaseStatus.ESCALATED
    # NEW is only a start state: no route leads back to it. (Normally "To Do" on a case in
    # work counts as satisfied; without that table the walk must give up, and say so.)
    monkeypatch.setattr(jira_issue, "_SATISFIED_BY", {})
    walk = walk_status(case, CaseStatus.NEW, at=T0, reason="Jira status To Do")
    assert walk.note is not None and "status kept" in walk.note
    assert case.status is CaseStatus.ESCALATED
    assert case.process_log[-1].kind is LogKind.NOTE


# -- later versions ----------------------------------------------------------------------------


def test_only_what_changed_in_jira_is_applied() -> None:
    first = map_issue(issue(labels=("vip",)), MAPPING)
    case = new_case_from_issue(first, now=T0)
    case.owner = "rules-picked@example.com"  # decided by casedesk, Jira has no assignee
    case.tags = [*case.tags, "rule-tag"]
    later = map_issue(
        issue(
            labels=("vip", "urgent"),
            priority="Highest",
            custom={"Solution": "Restarted the exporter"},
        ),
        MAPPING,
    )
    changed = apply_snapshot(case, later.snapshot, first.snapshot, at=T0)
    assert set(changed) == {"priority", "tags", "solution"}
    assert case.owner == "rules-picked@example.com"
    assert case.tags == ["vip", "rule-tag", "urgent"]
    assert case.priority is Priority.P0 and case.solution == "Restarted the exporter"

    removed = map_issue(issue(labels=("urgent",), assignee=MIA, status="Done"), MAPPING)
    changed = apply_snapshot(case, removed.snapshot, later.snapshot, at=T0)
    assert "owner" in changed and "status" in changed
    assert case.tags == ["rule-tag", "urgent"] and case.owner == "mia@example.com"
    assert case.status is CaseStatus.RESOLVED


def test_what_we_created_reads_back_as_no_change() -> None:
    baseline = created_issue_snapshot(
        "SUP-9",
        summary="Export fails",
        description="body\n",
        priority_name="High",
        labels=["casedesk", case_label("202405-001")],
        components=["Web"],
        issue_type="Task",
        mapping=MAPPING,
    )
    read_back = map_issue(
        issue(
            key="SUP-9",
            summary="Export fails",
            description_text="body",
            priority="High",
            labels=("casedesk", "casedesk-202405-001"),
            components=("Web",),
        ),
        MAPPING,
    )
    case = new_case_from_issue(read_back, now=T0)
    case.owner = "owner@example.com"
    changed = apply_snapshot(case, read_back.snapshot, baseline, at=T0)
    assert changed == []  # To Do on a new case: nothing to move either
    assert case.owner == "owner@example.com"


def test_mapping_refuses_a_blank_marker() -> None:
    with pytest.raises(ValueError, match="marker"):
        JiraMapping(comment_marker="  ")
    assert MAPPING.custom_field_names == [
        "Collaborators",
        "Initial Analysis",
        "Solution",
        "System",
        "Customer Email",
    ]
