"""A Jira issue becomes a case record, and later versions of it become case updates. Pure.

Everything that differs between Jira sites is data in :class:`JiraMapping`: which status,
priority, issue type, component and label mean what, and which custom fields (by name) hold
collaborators, the initial analysis, the solution, the related system and the customer's email.

The input is described by small read-only protocols (:class:`JiraIssueLike` and friends) rather
than the connector's pydantic models: this package stays free of the ``jira`` library and of
anything that talks to a server, the connector's ``JiraIssue``/``JiraComment`` satisfy the
protocols as they are, and tests can build issues from plain dataclasses.

    mapped = map_issue(issue, mapping, comments=all_comments)   # JiraMappingError if malformed
    case = new_case_from_issue(mapped, now=now)                 # a Jira-born case
    changes = apply_snapshot(case, mapped.snapshot, previous, at=now)   # a known issue changed

A later version only changes what changed *in Jira* since the version we saw before
(``previous``): a field casedesk decided (an owner chosen by the rules) is not overwritten by a
Jira field nobody touched. Status changes go through ``Case.move_to``: a jump the lifecycle does
not allow is walked through legal intermediate states, and when no walk exists the case keeps
its status and the process log says why. Nothing here raises on a status.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mapping.case import (
    ALLOWED_TRANSITIONS,
    Case,
    CaseSource,
    CaseStatus,
    Language,
    LogKind,
    Person,
    Priority,
    ProblemType,
    SourceKind,
    subject_line,
)
from mapping.environment import environment_from_text
from mapping.errors import CasedeskError

__all__ = [
    "JIRA_ACTOR",
    "JiraCommentLike",
    "JiraIssueLike",
    "JiraMapping",
    "JiraMappingError",
    "JiraSnapshot",
    "JiraUserLike",
    "MappedComment",
    "MappedIssue",
    "Markup",
    "StatusWalk",
    "add_comments",
    "adf_to_text",
    "apply_snapshot",
    "case_label",
    "created_issue_snapshot",
    "map_issue",
    "markup_for",
    "new_case_from_issue",
    "person_id",
    "rich_text",
    "walk_status",
    "wiki_to_text",
]

#: Who the process log says made a change that came from Jira (when no person is known).
JIRA_ACTOR = "jira"
Markup = Literal["wiki", "plain"]


def markup_for(flavor: str) -> Markup:
    """How an issue's text fields arrive from the client: Cloud's (REST v3) as ADF, which the
    connector makes plain text; Data Center's (REST v2) as wiki markup."""
    return "plain" if flavor == "cloud" else "wiki"


class JiraMappingError(CasedeskError):
    """An issue that cannot become a case (missing field, unknown status); it is skipped."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"Jira issue {key}: {reason}")


# -- what we read: the connector's models fit these as they are ------------------------------


class JiraUserLike(Protocol):
    @property
    def account_id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def display_name(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...


class JiraCommentLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def author(self) -> JiraUserLike | None: ...
    @property
    def body_text(self) -> str: ...
    @property
    def created(self) -> datetime: ...


class JiraIssueLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def updated(self) -> datetime: ...
    @property
    def created(self) -> datetime | None: ...
    @property
    def summary(self) -> str: ...
    @property
    def description_text(self) -> str: ...
    @property
    def status(self) -> str | None: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def issuetype(self) -> str | None: ...
    @property
    def labels(self) -> Sequence[str]: ...
    @property
    def components(self) -> Sequence[str]: ...
    @property
    def assignee(self) -> JiraUserLike | None: ...
    @property
    def reporter(self) -> JiraUserLike | None: ...
    @property
    def custom(self) -> Mapping[str, Any]: ...
    @property
    def comments(self) -> Sequence[JiraCommentLike]: ...


# -- configuration -----------------------------------------------------------------------------


def _folded(table: Mapping[str, Any]) -> dict[str, Any]:
    return {key.strip().casefold(): value for key, value in table.items()}


class JiraMapping(BaseModel):
    """What each Jira value means for the case record. Names are matched case-insensitively."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status_map: dict[str, CaseStatus] = Field(
        default_factory=lambda: {
            "To Do": CaseStatus.NEW,
            "Open": CaseStatus.NEW,
            "In Progress": CaseStatus.IN_PROGRESS,
            "Waiting for customer": CaseStatus.PENDING_FOLLOW_UP,
            "Escalated": CaseStatus.ESCALATED,
            "Resolved": CaseStatus.RESOLVED,
            "Done": CaseStatus.RESOLVED,
            "Closed": CaseStatus.CLOSED,
        },
        description="Jira status name -> case status; a status not listed makes the issue "
        "malformed (skipped with its reason) until it is added here.",
    )
    priority_map: dict[str, Priority] = Field(
        default_factory=lambda: {"Highest": Priority.P0, "High": Priority.P1}
    )
    default_priority: Priority = Field(
        default=Priority.P2, description="For every priority not in priority_map."
    )
    problem_type_by_label: dict[str, ProblemType] = Field(
        default_factory=lambda: {
            "permission": ProblemType.PERMISSION,
            "data": ProblemType.DATA_ANOMALY,
            "how-to": ProblemType.HOW_TO,
        }
    )
    problem_type_by_component: dict[str, ProblemType] = Field(default_factory=dict)
    problem_type_by_issue_type: dict[str, ProblemType] = Field(
        default_factory=lambda: {
            "Bug": ProblemType.SYSTEM_FAULT,
            "Incident": ProblemType.SYSTEM_FAULT,
            "Improvement": ProblemType.IMPROVEMENT,
            "New Feature": ProblemType.IMPROVEMENT,
            "Question": ProblemType.HOW_TO,
        }
    )
    tags_from: tuple[Literal["labels", "components", "issuetype"], ...] = Field(
        default=("labels", "components"), description="Which issue values become case tags."
    )
    collaborators_field: str | None = Field(default=None, description="Custom field name.")
    initial_analysis_field: str | None = Field(default=None, description="Custom field name.")
    solution_field: str | None = Field(default=None, description="Custom field name.")
    related_system_field: str | None = Field(default=None, description="Custom field name.")
    customer_email_field: str | None = Field(
        default=None,
        description="Custom field with the customer's address: the submitter's email (who gets "
        "the feedback request) instead of the Jira reporter's.",
    )
    triaged_labels: tuple[str, ...] = Field(
        default=("triaged",),
        description="An issue with an assignee or one of these labels was triaged by a person: "
        "the rules keep its priority, type and owner.",
    )
    comment_marker: str = Field(
        default="[casedesk]", description="Ends every comment casedesk writes; never imported."
    )
    case_label_prefix: str = Field(default="casedesk-", pattern=r"^\S+$")

    @field_validator("comment_marker")
    @classmethod
    def _marker_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the comment marker must not be blank (our comments would echo)")
        return value

    @property
    def custom_field_names(self) -> list[str]:
        """Every custom field the mapping reads, for the connector to ask for by name."""
        names = (
            self.collaborators_field,
            self.initial_analysis_field,
            self.solution_field,
            self.related_system_field,
            self.customer_email_field,
        )
        return list(dict.fromkeys(name for name in names if name))

    def status_for(self, name: str) -> CaseStatus | None:
        return _folded(self.status_map).get(name.strip().casefold())

    def priority_for(self, name: str | None) -> Priority:
        return self.mapped_priority(name) or self.default_priority

    def mapped_priority(self, name: str | None) -> Priority | None:
        """The priority `priority_map` gives a Jira priority; None when it names none."""
        if name is None:
            return None
        found: Priority | None = _folded(self.priority_map).get(name.strip().casefold())
        return found

    def problem_type_for(
        self, labels: Sequence[str], components: Sequence[str], issuetype: str | None
    ) -> ProblemType:
        """Most specific first: a label, then a component, then the issue type."""
        lookups: tuple[tuple[dict[str, ProblemType], Sequence[str]], ...] = (
            (self.problem_type_by_label, labels),
            (self.problem_type_by_component, components),
            (self.problem_type_by_issue_type, [issuetype] if issuetype else []),
        )
        for table, values in lookups:
            folded = _folded(table)
            for value in values:
                found: ProblemType | None = folded.get(value.strip().casefold())
                if found is not None:
                    return found
        return ProblemType.UNTRIAGED


# -- rich text ---------------------------------------------------------------------------------

# The only reader of Jira rich text in casedesk: the connector turns description and comment
# bodies into text with adf_to_text too, so both see the same words.
_ADF_INLINE_ATTR = {"mention": "text", "emoji": "text", "status": "text", "date": "timestamp"}
_ADF_LINK_ATTR = {"inlineCard": "url", "blockCard": "url", "embedCard": "url"}
_ADF_BLOCKS = frozenset(
    {"doc", "blockquote", "panel", "expand", "nestedExpand", "layoutSection", "layoutColumn"}
)


def adf_to_text(node: Any) -> str:
    """What a person reads in an Atlassian Document (v3), as plain text without formatting."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind == "rule":
        return ""
    if kind in _ADF_INLINE_ATTR:
        return str(attrs.get(_ADF_INLINE_ATTR[kind], ""))
    if kind in _ADF_LINK_ATTR:
        return str(attrs.get(_ADF_LINK_ATTR[kind], ""))
    if kind in ("media", "mediaSingle", "mediaGroup") and not node.get("content"):
        return f"[{attrs.get('alt') or 'attachment'}]"
    children = [adf_to_text(child) for child in node.get("content") or []]
    if kind in ("bulletList", "orderedList"):
        return "\n".join(f"- {child}" for child in children)
    if kind == "listItem":
        return "\n".join(child for child in children if child)
    if kind == "table":
        return "\n".join(children)
    if kind == "tableRow":
        return " | ".join(children)
    if kind in _ADF_BLOCKS:
        return "\n\n".join(child for child in children if child)
    return "".join(children)


#: Jira wiki markup (v2 / Data Center) -> readable text, applied in this order.
_WIKI_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\{(?:code|noformat)(?::[^}]*)?\}\n?(.*?)\n?\{(?:code|noformat)\}", re.S), r"\1"),
    (re.compile(r"\{quote\}\n?(.*?)\n?\{quote\}", re.S), r"\1"),
    (re.compile(r"\{color(?::[^}]*)?\}(.*?)\{color\}", re.S), r"\1"),
    (re.compile(r"\{panel(?::[^}]*)?\}\n?(.*?)\n?\{panel\}", re.S), r"\1"),
    (re.compile(r"^h[1-6]\.\s*", re.M), ""),
    (re.compile(r"^bq\.\s*", re.M), ""),
    (re.compile(r"^[ \t]*[*#-]+[ \t]+", re.M), "- "),
    (re.compile(r"^-{4,}\s*$", re.M), ""),
    (re.compile(r"\[~([^\]]+)\]"), r"@\1"),
    (re.compile(r"\[([^|\]\n]+)\|([^\]\n]+)\]"), r"\1 (\2)"),
    (re.compile(r"\[((?:https?|mailto):[^\]\s]+)\]"), r"\1"),
    (re.compile(r"!([^!\s|]+)(?:\|[^!]*)?!"), r"[image: \1]"),
    (re.compile(r"\{\{(.*?)\}\}"), r"\1"),
    (re.compile(r"(?<![\w*])\*(\S(?:[^*\n]*?\S)?)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w])_(\S(?:[^_\n]*?\S)?)_(?![\w])"), r"\1"),
    (re.compile(r"\\\\"), "\n"),
)
_TABLE_ROW = re.compile(r"^\|\|?(.*?)\|?\|\s*$", re.M)


def _table_row(match: re.Match[str]) -> str:
    cells = [cell.strip() for cell in re.split(r"\|\|?", match.group(1))]
    return " | ".join(cells)


def wiki_to_text(text: str) -> str:
    """Jira wiki markup (what v2 and Data Center return) as the text a person reads."""
    out = text.replace("\r\n", "\n")
    out = _TABLE_ROW.sub(_table_row, out)  # before the list rule: a row starts with "|"
    for pattern, replacement in _WIKI_RULES:
        out = pattern.sub(replacement, out)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def rich_text(value: Any, markup: Markup = "wiki") -> str:
    """Any Jira text value as plain text: an ADF document, wiki markup, or plain text."""
    if value is None:
        return ""
    if isinstance(value, dict):
        if value.get("type") == "doc":
            return adf_to_text(value).strip()
        return _scalar_text(value)
    if isinstance(value, list):
        return ", ".join(part for part in (_scalar_text(item) for item in value) if part)
    text = str(value)
    return wiki_to_text(text) if markup == "wiki" else text.strip()


def _scalar_text(value: Any) -> str:
    """An option ({"value": ...}), a user, a named object, or a plain value, as text."""
    if isinstance(value, dict):
        for key in ("value", "emailAddress", "displayName", "name", "key"):
            if value.get(key):
                return str(value[key]).strip()
        return ""
    return "" if value is None else str(value).strip()


# -- people ------------------------------------------------------------------------------------


def person_id(user: JiraUserLike | None) -> str | None:
    """How a Jira user is named on the case: email where Jira shows it, else their name."""
    if user is None:
        return None
    return user.email or user.display_name or user.name or user.account_id


def _people(value: Any) -> list[str]:
    """A multi-user picker (list of users) or a comma-separated text field, as names."""
    if value is None:
        return []
    items = value if isinstance(value, list) else re.split(r"[,，;；\n]", rich_text(value))
    names = [_scalar_text(item) for item in items]
    return list(dict.fromkeys(name for name in names if name))


# -- mapping one issue -------------------------------------------------------------------------


class JiraSnapshot(BaseModel):
    """What one version of an issue says, in case terms. Kept in the ledger, so the next
    version's changes can be told apart from what casedesk itself decided."""

    model_config = ConfigDict(frozen=True)

    key: str
    subject: str | None = None
    description: str | None = None
    status_name: str | None = None
    status: CaseStatus | None = None
    priority_name: str | None = None
    priority: Priority | None = None
    problem_type: ProblemType | None = None
    tags: list[str] | None = None
    owner: str | None = None
    collaborators: list[str] | None = None
    initial_analysis: str | None = None
    solution: str | None = None
    related_system: str | None = None


class MappedComment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    actor: str
    at: datetime
    text: str

    @property
    def source_ref(self) -> str:
        return f"jira-comment:{self.id}"


class MappedIssue(BaseModel):
    """An issue in case terms: its snapshot, who reported it, its comments (not ours)."""

    model_config = ConfigDict(frozen=True)

    key: str
    id: str
    updated: datetime
    created: datetime
    snapshot: JiraSnapshot
    submitter: Person
    labels: list[str]
    components: list[str]
    priority_name: str | None
    #: What `priority_map` makes of `priority_name`; None when the map names it not (then the
    #: snapshot's priority is `default_priority`, and the rules' defaults stand for a new case).
    mapped_priority: Priority | None = None
    triaged_by_person: bool
    comments: list[MappedComment]
    own_comments_skipped: int = 0


#: The fields a person edits in Jira that a later version may change on the case.
_SNAPSHOT_FIELDS = (
    "subject",
    "description",
    "priority",
    "problem_type",
    "tags",
    "owner",
    "collaborators",
    "initial_analysis",
    "solution",
    "related_system",
)
#: Fields that must be present for an issue to be a report at all.
_REQUIRED: tuple[tuple[str, str], ...] = (
    ("summary", "it has no summary"),
    ("status", "it has no status"),
)


def case_label(case_number: str, prefix: str = "casedesk-") -> str:
    """The Jira label that ties an issue to its case: ``casedesk-202405-001``."""
    return f"{prefix}{case_number}"


def _language(text: str) -> Language:
    return Language.ZH if re.search(r"[\u3400-\u9fff]", text) else Language.EN


def _tags(issue: JiraIssueLike | _IssueFields, mapping: JiraMapping) -> list[str]:
    sources: dict[str, Sequence[str]] = {
        "labels": [
            label
            for label in issue.labels
            if not label.startswith(mapping.case_label_prefix)
            and label.casefold() not in {t.casefold() for t in mapping.triaged_labels}
        ],
        "components": issue.components,
        "issuetype": [issue.issuetype] if issue.issuetype else [],
    }
    tags = [value for source in mapping.tags_from for value in sources[source]]
    return list(dict.fromkeys(tag for tag in tags if tag))


def created_issue_snapshot(
    key: str,
    *,
    summary: str,
    description: str,
    priority_name: str | None,
    labels: Sequence[str],
    components: Sequence[str],
    issue_type: str | None,
    mapping: JiraMapping,
) -> JiraSnapshot:
    """What casedesk put into an issue it created, as the next pull will read it back: the
    baseline against which a person's later edits in Jira are recognised."""
    fields = _IssueFields(
        key=key, labels=tuple(labels), components=tuple(components), issuetype=issue_type
    )
    return JiraSnapshot(
        key=key,
        subject=subject_line(summary),
        description=description.strip(),
        priority_name=priority_name,
        priority=mapping.priority_for(priority_name),
        problem_type=mapping.problem_type_for(labels, components, issue_type),
        tags=_tags(fields, mapping),
        collaborators=[],
    )


@dataclass(frozen=True)
class _IssueFields:
    key: str
    labels: tuple[str, ...]
    components: tuple[str, ...]
    issuetype: str | None


def map_issue(
    issue: JiraIssueLike,
    mapping: JiraMapping,
    *,
    comments: Sequence[JiraCommentLike] | None = None,
    markup: Markup = "wiki",
) -> MappedIssue:
    """An issue (and all its comments) in case terms; JiraMappingError says what is wrong."""
    for attribute, reason in _REQUIRED:
        if not str(getattr(issue, attribute, "") or "").strip():
            raise JiraMappingError(issue.key, reason)
    assert issue.status is not None
    status = mapping.status_for(issue.status)
    if status is None:
        known = ", ".join(sorted(mapping.status_map))
        raise JiraMappingError(
            issue.key,
            f"unknown status {issue.status!r}: add it to jira.mapping.status_map (known: {known})",
        )
    custom = issue.custom

    def text_field(name: str | None) -> str | None:
        return (rich_text(custom.get(name), markup) or None) if name else None

    submitter_email = text_field(mapping.customer_email_field)
    reporter = issue.reporter
    submitter = Person(
        name=(reporter.display_name or reporter.name or "") if reporter else "",
        email=submitter_email or (reporter.email if reporter else None),
    )
    snapshot = JiraSnapshot(
        key=issue.key,
        subject=subject_line(issue.summary),
        description=rich_text(issue.description_text, markup),
        status_name=issue.status,
        status=status,
        priority_name=issue.priority,
        priority=mapping.priority_for(issue.priority),
        problem_type=mapping.problem_type_for(issue.labels, issue.components, issue.issuetype),
        tags=_tags(issue, mapping),
        owner=person_id(issue.assignee),
        collaborators=_people(custom.get(mapping.collaborators_field))
        if mapping.collaborators_field
        else [],
        initial_analysis=text_field(mapping.initial_analysis_field),
        solution=text_field(mapping.solution_field),
        related_system=text_field(mapping.related_system_field),
    )
    mapped_comments: list[MappedComment] = []
    own = 0
    for comment in issue.comments if comments is None else comments:
        text = rich_text(comment.body_text, markup)
        # The connector flags our comments too; checking the marker here keeps the mapping
        # right whatever client produced the comment.
        if getattr(comment, "is_ours", False) or mapping.comment_marker in comment.body_text:
            own += 1
            continue
        if not text:
            continue
        mapped_comments.append(
            MappedComment(
                id=comment.id,
                actor=person_id(comment.author) or "unknown Jira user",
                at=comment.created,
                text=text,
            )
        )
    triage_labels = {label.casefold() for label in mapping.triaged_labels}
    return MappedIssue(
        key=issue.key,
        id=issue.id,
        updated=issue.updated,
        created=issue.created or issue.updated,
        snapshot=snapshot,
        submitter=submitter,
        labels=list(issue.labels),
        components=list(issue.components),
        priority_name=issue.priority,
        mapped_priority=mapping.mapped_priority(issue.priority),
        triaged_by_person=issue.assignee is not None
        or any(label.casefold() in triage_labels for label in issue.labels),
        comments=mapped_comments,
        own_comments_skipped=own,
    )


def new_case_from_issue(mapped: MappedIssue, *, now: datetime) -> Case:
    """A case for an issue first seen in Jira (status NEW: the caller routes, then walks)."""
    snap = mapped.snapshot
    subject = snap.subject or mapped.key
    description = snap.description or subject
    case = Case(
        subject=subject,
        submitter=mapped.submitter,
        description=description,
        environment=environment_from_text(f"{subject}\n{description}"),
        language=_language(f"{subject}\n{description}"),
        priority=snap.priority or Priority.P2,
        problem_type=snap.problem_type or ProblemType.UNTRIAGED,
        tags=list(snap.tags or []),
        owner=snap.owner,
        collaborators=list(snap.collaborators or []),
        initial_analysis=snap.initial_analysis,
        solution=snap.solution,
        related_system=snap.related_system,
        source=CaseSource(kind=SourceKind.JIRA, jira_key=mapped.key, jira_id=mapped.id),
        created_at=mapped.created,
        updated_at=max(mapped.created, now),
    )
    case.log(
        LogKind.INTAKE,
        f"reported in Jira as {mapped.key} at {mapped.created.isoformat()}",
        at=now,
        actor=JIRA_ACTOR,
        source_ref=f"jira:{mapped.key}",
    )
    return case


def add_comments(case: Case, comments: Sequence[MappedComment]) -> int:
    """Log the comments the case does not have yet (by comment id); returns how many."""
    known = {entry.source_ref for entry in case.process_log if entry.source_ref}
    added = 0
    for comment in sorted(comments, key=lambda c: (c.at, c.id)):
        if comment.source_ref in known:
            continue
        case.log(
            LogKind.COMMENT,
            comment.text,
            at=comment.at,
            actor=comment.actor,
            source_ref=comment.source_ref,
        )
        known.add(comment.source_ref)
        added += 1
    return added


# -- status ------------------------------------------------------------------------------------


class StatusWalk(BaseModel):
    """What happened when a Jira status was applied to a case."""

    model_config = ConfigDict(frozen=True)

    target: CaseStatus
    path: list[CaseStatus] = Field(default_factory=list, description="States entered, in order.")
    note: str | None = Field(default=None, description="Why the case kept its status.")

    @property
    def moved(self) -> bool:
        return bool(self.path)


#: Statuses that already satisfy a target, and targets that mean something else from a status:
#: Jira's "To Do" on a case being worked on says nothing new; on a resolved or closed case it
#: means the issue was reopened.
_SATISFIED_BY: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.NEW: frozenset(
        {
            CaseStatus.TRIAGE,
            CaseStatus.ASSIGNED,
            CaseStatus.IN_PROGRESS,
            CaseStatus.PENDING_FOLLOW_UP,
            CaseStatus.ESCALATED,
            CaseStatus.REOPENED,
        }
    ),
    CaseStatus.REOPENED: frozenset(
        {CaseStatus.ASSIGNED, CaseStatus.IN_PROGRESS, CaseStatus.PENDING_FOLLOW_UP}
    ),
}
_MEANS_INSTEAD: dict[tuple[CaseStatus, CaseStatus], CaseStatus] = {
    (CaseStatus.RESOLVED, CaseStatus.NEW): CaseStatus.REOPENED,
    (CaseStatus.CLOSED, CaseStatus.NEW): CaseStatus.REOPENED,
}
#: The order intermediate states are tried in: a resolved case that Jira puts back in progress
#: goes through "reopened", not "pending follow-up".
_WALK_PREFERENCE: tuple[CaseStatus, ...] = (
    CaseStatus.REOPENED,
    CaseStatus.ASSIGNED,
    CaseStatus.IN_PROGRESS,
    CaseStatus.PENDING_FOLLOW_UP,
    CaseStatus.ESCALATED,
    CaseStatus.TRIAGE,
    CaseStatus.RESOLVED,
    CaseStatus.CLOSED,
    CaseStatus.NEW,
)


def _shortest_walk(start: CaseStatus, target: CaseStatus) -> list[CaseStatus] | None:
    previous: dict[CaseStatus, CaseStatus | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == target:
            path: list[CaseStatus] = []
            step: CaseStatus | None = here
            while step is not None and step != start:
                path.append(step)
                step = previous[step]
            return path[::-1]
        for step in _WALK_PREFERENCE:
            if step in ALLOWED_TRANSITIONS[here] and step not in previous:
                previous[step] = here
                queue.append(step)
    return None


def walk_status(
    case: Case, target: CaseStatus, *, at: datetime, actor: str = JIRA_ACTOR, reason: str = ""
) -> StatusWalk:
    """Bring the case to ``target`` through legal moves; never raises IllegalTransition."""
    current = case.status
    if current == target or current in _SATISFIED_BY.get(target, frozenset()):
        return StatusWalk(target=target)
    target = _MEANS_INSTEAD.get((current, target), target)
    path = _shortest_walk(current, target)
    if path is None:
        note = (
            f"{reason}: would move {current.value} -> {target.value}, which the process does "
            f"not allow by any route; status kept"
        )
        case.log(LogKind.NOTE, note, at=at, actor=actor)
        return StatusWalk(target=target, note=note)
    for index, step in enumerate(path):
        via = f"on the way to {target.value}" if index < len(path) - 1 else ""
        why = "; ".join(part for part in (reason, via) if part)
        case.move_to(step, at=at, actor=actor, reason=why)
    return StatusWalk(target=target, path=path)


# -- a known issue changed ---------------------------------------------------------------------


def apply_snapshot(
    case: Case,
    snapshot: JiraSnapshot,
    previous: JiraSnapshot | None,
    *,
    at: datetime,
    actor: str = JIRA_ACTOR,
) -> list[str]:
    """Apply what changed in Jira since ``previous`` to the case; returns what changed.

    Without a previous version every Jira value counts as new. A field equal to its previous
    Jira value is left alone, so a decision casedesk made (the rules' owner) stays.
    """
    changed: list[str] = []
    for name in _SNAPSHOT_FIELDS:
        value = getattr(snapshot, name)
        if previous is not None and getattr(previous, name) == value:
            continue
        if value is None or value == getattr(case, name):
            continue
        if name in ("subject", "description") and not value:
            continue
        if isinstance(value, list):
            # Lists merge: what Jira added is added, what Jira removed is removed, and what
            # casedesk added itself (the rules' tags) stays.
            before = set(getattr(previous, name) or []) if previous is not None else set()
            current: list[str] = getattr(case, name)
            merged = [item for item in current if item in value or item not in before]
            merged += [item for item in value if item not in merged]
            if merged == current:
                continue
            value = merged
        setattr(case, name, value)
        changed.append(name)
    if changed:
        case.log(
            LogKind.NOTE,
            f"changed in Jira {snapshot.key}: {', '.join(changed)}",
            at=at,
            actor=actor,
        )
    if snapshot.status is not None and (previous is None or previous.status != snapshot.status):
        walk = walk_status(
            case, snapshot.status, at=at, actor=actor, reason=f"Jira status {snapshot.status_name}"
        )
        if walk.moved:
            changed.append("status")
    return changed
