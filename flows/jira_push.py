"""Pushing cases to Jira, as plain Python: new issues, users' replies, users' feedback.

Every step is safe to repeat after a crash at any point:

- An email-born case gets an issue labelled with its case number (`casedesk-202405-001`) and an
  issue property. Before creating, we search for that label: a run that died between creating
  the issue and storing its key finds the issue instead of creating a second one.
- A user's reply (a process-log entry of kind EMAIL_IN) becomes a comment ending with our marker
  and a reference to the entry. How many replies were pushed is kept per case (a watermark row);
  before posting, the reference is written there as pending, so a run that died after posting
  but before recording looks at the issue's comments once instead of posting twice.
- The user's feedback moves the issue by the configured transition names (close; reopen when
  unresolved). The feedback's time is recorded once the transition is done; a transition Jira
  no longer offers (the issue already moved) is reported, not retried forever.
- The owner casedesk chose (the rules' assignment, process step 2) becomes the issue's
  assignee, found among the users Jira lets the issue be assigned to by the owner's address
  (or by the account `[jira.accounts]` names for it): an email-born case's issue is created
  with it; an issue without an assignee gets it. Jira's assignee always stands (a person's, or
  the project's default): the issue is read first, and an assignee that already is our owner
  (a run that died after assigning) is only recorded. What we wrote is recorded as the issue's
  last known version, so the next pull does not read our own assignment back as a person's
  change. An owner Jira cannot assign (no such user, a 400, the issue gone) is a note on the
  case and a problem line, once; the other cases go on. A 403 stops the run's assignments and
  the next run tries those cases again. Resolved and closed cases, the history of a first
  import (`flows/jira_sync.py`) and Jira issues older than the first push that assigned are
  left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from pydantic import BaseModel, Field

from connectors.jira_client import (
    JiraClient,
    JiraForbiddenError,
    JiraIssueRef,
    JiraNotFoundError,
    JiraRequestError,
    JiraTransitionError,
    JiraUser,
)
from connectors.store import CaseStore, LedgerDecision, LedgerEntry
from flows.jira_push_state import PushState, push_state_name, settle_owner
from flows.jira_sync import SOURCE, issue_identity, previous_snapshot, watermark_name
from mapping.case import (
    Case,
    CaseStatus,
    FeedbackOutcome,
    LogEntry,
    LogKind,
    Priority,
    SourceKind,
)
from mapping.errors import JiraError
from mapping.jira_issue import (
    JiraMapping,
    case_label,
    created_issue_snapshot,
    map_issue,
    markup_for,
    person_id,
)

__all__ = [
    "JiraPushContext",
    "JiraPushReport",
    "PushState",
    "assign_owners",
    "by_address",
    "push",
    "push_state_name",
]

logger = logging.getLogger(__name__)
ISSUE_PROPERTY = "casedesk"
SCAN_WATERMARK = "jira-push-scan:{project}"
ASSIGN_SINCE = "jira-assign-since:{project}"


@dataclass
class JiraPushContext:
    project: str
    mapping: JiraMapping
    push_email_cases: bool = True
    issue_type: str = "Task"
    create_labels: list[str] = field(default_factory=lambda: ["casedesk"])
    create_components: list[str] = field(default_factory=list)
    priority_names: Mapping[Priority, str] = field(default_factory=dict)
    #: Feedback outcome -> transition name; an outcome not listed moves nothing.
    feedback_transitions: Mapping[FeedbackOutcome, str] = field(default_factory=dict)
    #: Make the owner casedesk chose the issue's assignee.
    push_assignments: bool = True
    #: Owner email (case-folded) -> Jira account (Cloud account id, Data Center username).
    accounts: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class JiraPushReport(BaseModel):
    created: list[str] = Field(default_factory=list, description="'202405-001 -> SUP-12'")
    found_existing: list[str] = Field(default_factory=list)
    comments: int = 0
    transitions: list[str] = Field(default_factory=list)
    assigned: list[str] = Field(default_factory=list, description="'SUP-12 -> 王芳 (by rule)'")
    problems: list[str] = Field(default_factory=list)
    requests: int = 0


def push(store: CaseStore, client: JiraClient, context: JiraPushContext) -> JiraPushReport:
    """Push whatever is pending: new issues, replies, feedback. Idempotent across crashes.

    A case Jira refuses something this run (a 403 or 400 to a reply or a transition, a 403
    that stops the run's assignments) is scanned again by the next run: the scan's watermark
    stays at it."""
    report = JiraPushReport()
    before = client.request_count
    assigning = _Assigning.of(store, context)
    if context.push_email_cases:
        for number in _cases_without_issue(store):
            _create_issue(store, client, context, number, report, assigning)
    scan_name = SCAN_WATERMARK.format(project=context.project)
    scan_from = store.watermark(scan_name)
    started = context.clock()
    again: list[datetime] = []  # when the cases to scan again next run were last updated
    for case in _cases_with_issue_changed_since(store, scan_from):
        owned = assigning.on and case.owner is not None
        if owned and not _push_owner(store, client, context, case, report, assigning):
            again.append(case.updated_at)  # a 403 stopped this run's assignments
        if case.feedback is None and not any(e.kind is LogKind.EMAIL_IN for e in case.process_log):
            continue  # nothing of the user's to push: no state to read
        for step in (_push_replies, _push_feedback):  # the feedback even if a reply failed
            try:
                step(store, client, context, case, report)
            except JiraNotFoundError as error:  # the issue is gone: nothing to try again
                _problem(report, case.number, error)
            except (JiraForbiddenError, JiraRequestError) as error:
                _problem(report, case.number, error)
                again.append(case.updated_at)
    scanned = min([started, *again])
    with store.transaction() as tx:
        tx.set_watermark(scan_name, scanned.isoformat(), now=started)
    report.requests = client.request_count - before
    return report


def _problem(report: JiraPushReport, number: str | None, what: object) -> None:
    """A `problem` line of the run's report, and the same in the log."""
    report.problems.append(f"{number}: {what}")
    logger.warning("case %s: %s", number, what)


def assign_owners(
    store: CaseStore, client: JiraClient, context: JiraPushContext, numbers: Sequence[str]
) -> JiraPushReport:
    """Make the owners of these cases (the new ones a pull just routed) their issues'
    assignees now, not at the next run's push (which then finds them done, or tries again
    one this step could not do)."""
    report = JiraPushReport()
    before = client.request_count
    assigning = _Assigning.of(store, context)
    for number in numbers:
        if not assigning.on or assigning.stopped:
            break
        case = store.get_case(number)
        if case.source.jira_key and case.owner is not None:
            _push_owner(store, client, context, case, report, assigning)
    report.requests = client.request_count - before
    return report


@dataclass
class _Assigning:
    """Whether this run writes assignees (`push_assignments`), for the Jira issues created
    after when, and whether a 403 stopped it."""

    since: datetime | None
    stopped: bool = False

    @classmethod
    def of(cls, store: CaseStore, context: JiraPushContext) -> _Assigning:
        """From casedesk's first push with `push_assignments` on (kept per project): the
        issues of an upgraded installation's history keep their owners in casedesk only."""
        if not context.push_assignments:
            return cls(None)
        name = ASSIGN_SINCE.format(project=context.project)
        stored = store.watermark(name)
        if stored is None:
            # The pull's watermark is the newest `updated` read, in Jira's time: the issues
            # created after it (strictly: the issue that set it is old) are new to casedesk
            # whatever our clock says. None: nothing pulled yet, a new installation, so from
            # now on.
            stored = store.watermark(watermark_name(context.project))
            stored = stored or context.clock().isoformat()
            with store.transaction() as tx:
                tx.set_watermark(name, stored, now=context.clock())
        return cls(datetime.fromisoformat(stored))

    @property
    def on(self) -> bool:
        return self.since is not None

    def wants(self, case: Case, state: PushState) -> bool:
        """Whether the case's owner is to be written: its issue is one casedesk created
        (an email case's), or a Jira issue created after `since`."""
        if state.new_issue:
            return True
        return (
            self.since is not None
            and case.source.kind is SourceKind.JIRA
            and case.created_at > self.since
        )

    def stopped_by(self, error: Exception) -> bool:
        """Whether `error` stops this run's assignments (and then stops them): a 403 may be a
        permission casedesk's account lacks for every issue, or the site refusing it for a
        while (a lock-out, an IP allow-list): nothing is noted or settled, and the next cases
        are not tried."""
        if isinstance(error, JiraForbiddenError):
            self.stopped = True
            return True
        return False


# -- which cases -------------------------------------------------------------------------------


def _cases_without_issue(store: CaseStore) -> list[str]:
    with store.transaction() as tx:
        return tx.email_case_numbers_without_jira_key()


def _cases_with_issue_changed_since(store: CaseStore, since: str | None) -> list[Case]:
    with store.transaction() as tx:
        return tx.jira_cases_updated_since(None if since is None else datetime.fromisoformat(since))


# -- new issues --------------------------------------------------------------------------------


def issue_description(case: Case) -> str:
    """The issue body: the report, who sent it (masked) and the case number."""
    return (
        f"{case.description}\n\n"
        f"Case {case.number} · reported by email by {case.submitter.masked} · "
        f"{case.problem_type.label_en}, {case.priority.value}"
    )


def _create_issue(
    store: CaseStore,
    client: JiraClient,
    context: JiraPushContext,
    number: str,
    report: JiraPushReport,
    assigning: _Assigning,
) -> None:
    case = store.get_case(number)
    label = case_label(number, context.mapping.case_label_prefix)
    labels = list(dict.fromkeys([*context.create_labels, label]))
    priority_name = context.priority_names.get(case.priority)
    description = issue_description(case)
    existing = client.find_issue_by_label(label)
    assignee: JiraUser | None = None
    problem = None  # why the owner is not the new issue's assignee
    settled = False  # whether that is final (else the push tries again)
    if existing is not None:
        ref = JiraIssueRef(key=existing.key, id=existing.id)
        report.found_existing.append(f"{number} -> {ref.key}")
        how = f"found Jira issue {ref.key} by its label {label} (created by an earlier run)"
        jira_owner = person_id(existing.assignee)  # whatever an earlier run left
    else:
        if assigning.on and not assigning.stopped and case.owner is not None:
            # Created with its assignee (whenever the case was made: the issue is new), else
            # Jira gives it the project's default assignee.
            try:
                assignee, why = _find_assignee(client, context, case.owner, project=context.project)
                settled = assignee is None
            except _REFUSALS as error:
                why, settled = _refusal(error, "the project"), not assigning.stopped_by(error)
            if assignee is None:
                problem = f"owner {case.owner} is not the assignee of the new Jira issue: {why}"
        create = partial(
            client.create_issue,
            case.subject,
            description,
            priority=priority_name,
            labels=labels,
            components=context.create_components,
            issue_type=context.issue_type,
        )
        try:
            ref = create(assignee=None if assignee is None else client.account(assignee))
        except JiraRequestError as error:
            if assignee is None:
                raise
            # e.g. the assignee field is not on the create screen: created without it (Jira
            # refused before creating anything).
            problem = f"owner {case.owner} is not the assignee of the new Jira issue: {error}"
            assignee, settled = None, True
            ref = create(assignee=None)
        report.created.append(f"{number} -> {ref.key}")
        how = f"created Jira issue {ref.key}"
        jira_owner = None
        if assignee is not None:
            jira_owner = person_id(assignee)
            how += f" assigned to {assignee.display_name or jira_owner} ({case.owner})"
            report.assigned.append(f"{ref.key} -> {jira_owner} ({number})")
            settled = True
        elif case.owner is not None and assigning.on:
            # Jira gave the issue the project's default assignee, if it has one: that is the
            # baseline, so the next pull does not take it for a person's choice over the owner.
            try:
                jira_owner = person_id(client.get_issue(ref.key).assignee)
            except _REFUSALS as error:
                logger.warning("case %s: %s", number, error)
    client.set_property(ref.key, ISSUE_PROPERTY, {"case": number})
    snapshot = created_issue_snapshot(
        ref.key,
        summary=case.subject,
        description=description,
        priority_name=priority_name,
        labels=labels,
        components=context.create_components,
        issue_type=context.issue_type,
        mapping=context.mapping,
    )
    snapshot = snapshot.model_copy(update={"owner": jira_owner})
    now = context.clock()
    with store.transaction() as tx:
        case = tx.get_case(number)
        case.source = case.source.model_copy(update={"jira_key": ref.key, "jira_id": ref.id})
        case.log(LogKind.NOTE, how, at=now, source_ref=issue_identity(ref.key))
        if problem is not None and settled:
            case.log(LogKind.NOTE, problem, at=now)
        tx.save_case(case)
        if existing is None:
            # Our issue: its owner is written whenever the case was made; once settled here,
            # with the issue's creation, or else by the push that can (a 403 stopped this one).
            settled_owner = case.owner if settled else None
            settle_owner(tx, number, settled_owner, now, new_issue=True)
        tx.record(
            LedgerEntry(
                source=SOURCE,
                location=f"jira-push:{ref.key}",
                identity=issue_identity(ref.key),
                decision=LedgerDecision.JIRA_ISSUE,
                reason=how,
                case_number=number,
                recorded_at=now,
                # What we sent: the next pull tells a person's edits in Jira apart from it.
                detail={"snapshot": snapshot.model_dump(mode="json")},
            )
        )
    logger.info("case %s: %s", number, how)
    if problem is not None:
        _problem(report, number, problem)


# -- replies and feedback ----------------------------------------------------------------------


def _state(store: CaseStore, number: str) -> PushState:
    stored = store.watermark(push_state_name(number))
    return PushState.model_validate_json(stored) if stored else PushState()


def _save_state(store: CaseStore, number: str, state: PushState, now: datetime) -> None:
    with store.transaction() as tx:
        tx.set_watermark(push_state_name(number), state.model_dump_json(), now=now)


def reply_ref(case_number: str, index: int) -> str:
    """A stable reference to the case's index-th reply (the log is append-only)."""
    return f"casedesk-reply:{case_number}:{index + 1}"


def reply_comment(entry: LogEntry) -> str:
    when = entry.at.isoformat(timespec="minutes")
    return f"用户邮件回复 / Reply by email from {entry.actor} ({when}):\n\n{entry.text}"


def _push_replies(
    store: CaseStore,
    client: JiraClient,
    context: JiraPushContext,
    case: Case,
    report: JiraPushReport,
) -> None:
    assert case.number is not None and case.source.jira_key is not None
    key, number = case.source.jira_key, case.number
    replies = [entry for entry in case.process_log if entry.kind is LogKind.EMAIL_IN]
    state = _state(store, number)
    for index in range(state.replies, len(replies)):
        ref = reply_ref(number, index)
        already = state.pending == ref and any(ref in c.body_text for c in client.comments(key))
        if not already:
            state.pending = ref
            _save_state(store, number, state, context.clock())
            client.add_comment(
                key, reply_comment(replies[index]), marker=f"{client.comment_marker} {ref}"
            )
            report.comments += 1
        state.replies, state.pending = index + 1, None
        _save_state(store, number, state, context.clock())


def _push_feedback(
    store: CaseStore,
    client: JiraClient,
    context: JiraPushContext,
    case: Case,
    report: JiraPushReport,
) -> None:
    feedback = case.feedback
    if feedback is None or case.source.jira_key is None or case.number is None:
        return
    state = _state(store, case.number)
    if state.feedback_at == feedback.at.isoformat():
        return
    name = context.feedback_transitions.get(feedback.outcome)
    key = case.source.jira_key
    if name is not None:
        try:
            client.transition(key, name)
            report.transitions.append(f"{key}: {name} ({feedback.outcome.value})")
        except JiraTransitionError as error:
            # Usually the issue already moved (a person did it, or an earlier run that died
            # before recording); nothing to retry.
            _problem(report, case.number, error)
    state.feedback_at = feedback.at.isoformat()
    _save_state(store, case.number, state, context.clock())


# -- the owner ----------------------------------------------------------------------------------


def _push_owner(
    store: CaseStore,
    client: JiraClient,
    context: JiraPushContext,
    case: Case,
    report: JiraPushReport,
    assigning: _Assigning,
) -> bool:
    """Make the case's owner the assignee of its issue when the issue has none; False when a
    403 stopped it (the next run tries again). Jira's assignee always stands: a person's
    (before the rules ran, with an `override_manual` rule too, or since we last read the
    issue) or the project's default; the next pull brings a change of it to the case."""
    owner, number, key = case.owner, case.number, case.source.jira_key
    assert owner is not None and number is not None and key is not None
    if case.status in _FINISHED:
        return True  # resolved or closed: nobody works on it any more
    state = _state(store, number)
    if state.owner == owner or not assigning.wants(case, state):
        return True  # done (or not assignable, or left to Jira's assignee), or history
    with store.transaction() as tx:
        previous = previous_snapshot(tx, case)
    if previous is not None and previous.owner == owner:
        return True  # the owner came from Jira's assignee
    if assigning.stopped:
        return False  # a 403 earlier in this run: the next run tries again
    now = context.clock()
    try:
        issue = client.get_issue(key)
        current = person_id(issue.assignee)
        user, why = _find_assignee(client, context, owner, key=key)
        shown = None if user is None else person_id(user)
        if current is not None and current != shown:
            left = f"Jira issue {key} is assigned to {current}, not the owner {owner}: left so"
            _settle_with_note(store, number, owner, left, now, source_ref=issue_identity(key))
            logger.info("case %s: %s", number, left)
            return True
        if user is None:
            raise _Unassignable(why)
        if current is None:  # else a run assigned it and died before recording it
            client.assign(key, client.account(user) or "")
    except _NOT_ASSIGNED as error:
        problem = f"owner {owner} is not the assignee of Jira issue {key}: {_refusal(error)}"
        _problem(report, number, problem)
        if assigning.stopped_by(error):
            return False  # not noted, not settled: the next run tries again
        _settle_with_note(store, number, owner, problem, now)
        return True
    markup = markup_for(client.connection.flavor)
    base = previous or map_issue(issue, context.mapping, markup=markup).snapshot
    how = f"assigned Jira issue {key} to {user.display_name or shown} ({owner})"
    with store.transaction() as tx:
        case = tx.get_case(number)
        case.log(LogKind.ASSIGNMENT, how, at=now, source_ref=issue_identity(key))
        tx.save_case(case)
        tx.record(
            LedgerEntry(
                source=SOURCE,
                location=f"jira-assign:{key}:{now.isoformat()}",
                identity=issue_identity(key),
                decision=LedgerDecision.JIRA_ISSUE,
                reason=how,
                case_number=number,
                recorded_at=now,
                # The issue as we left it: the next pull reads this assignee as ours.
                detail={
                    "snapshot": base.model_copy(update={"owner": shown}).model_dump(mode="json")
                },
            )
        )
        settle_owner(tx, number, owner, now)
    report.assigned.append(f"{key} -> {shown} ({number})")
    logger.info("case %s: %s", number, how)
    return True


def _settle_with_note(
    store: CaseStore,
    number: str,
    owner: str,
    note: str,
    now: datetime,
    *,
    source_ref: str | None = None,
) -> None:
    """The owner done with (`settle_owner`), and why on the case, in one transaction."""
    with store.transaction() as tx:
        case = tx.get_case(number)
        case.log(LogKind.NOTE, note, at=now, source_ref=source_ref)
        tx.save_case(case)
        settle_owner(tx, number, owner, now)


#: A case in these states is history: its owner is not written to Jira.
_FINISHED = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED})


class _Unassignable(Exception):
    """Jira has no user (or several) to assign for the owner; the message says why."""


#: What Jira may answer an assignment with, without stopping the rest of the push: the issue
#: gone (404) or a refusal (400), noted on that case; a 403, which stops the run's assignments
#: (`_Assigning.stopped_by`). A 401 (credentials Jira does not accept) stops the run.
_REFUSALS: tuple[type[JiraError], ...] = (
    JiraNotFoundError,
    JiraForbiddenError,
    JiraRequestError,
)
_NOT_ASSIGNED: tuple[type[Exception], ...] = (_Unassignable, *_REFUSALS)


def _refusal(error: Exception, what: str = "the issue") -> str:
    if isinstance(error, JiraNotFoundError):
        return f"Jira does not show {what} to casedesk's account (deleted, or moved)"
    if isinstance(error, JiraForbiddenError):
        return (
            "Jira refused casedesk's account (it needs the Assign Issues and Browse users "
            "permissions in the project)"
        )
    return str(error)


def _find_assignee(
    client: JiraClient,
    context: JiraPushContext,
    owner: str,
    *,
    key: str | None = None,
    project: str | None = None,
) -> tuple[JiraUser | None, str]:
    """The user issue `key` (or a new issue of `project`) can be assigned to for `owner`:
    by the account `[jira.accounts]` names for them, else by their address; or None, and
    why."""
    where = key or f"issues of project {project}"
    account = context.accounts.get(owner.casefold())
    if account is not None:
        found = client.assignable_users(key, project=project, account=account)
        wanted = account.casefold()  # Data Center usernames are case-insensitive
        user = next((u for u in found if (client.account(u) or "").casefold() == wanted), None)
        why = f"the Jira account {account!r} that [jira.accounts] names for {owner} cannot be "
        return user, f"{why}assigned {where}"
    users = client.assignable_users(key, project=project, address=owner)
    user, why = by_address(owner, where, users)
    return user, f"{why}; name their Jira account under [jira.accounts]"


def by_address(address: str, where: str, users: list[JiraUser]) -> tuple[JiraUser | None, str]:
    """The user of `users` (those an issue can be assigned to, found by `address`) with that
    address, or None and why (`where`: the issue, for the message). Where Jira hides or masks
    addresses (privacy settings), a search that found exactly one user found them by their
    address."""
    wanted = address.casefold()
    exact = [user for user in users if user.email and user.email.casefold() == wanted]
    # Cloud leaves a hidden address out; Data Center may mask it ("mia at example dot com").
    hidden = [user for user in users if not user.email or "@" not in user.email]
    if len(exact) == 1:
        return exact[0], ""
    if not exact and len(users) == 1 and hidden:
        return users[0], ""
    if len(exact) > 1:
        return None, f"{len(exact)} Jira users have the address {address}"
    if hidden:
        return None, f"Jira finds {len(users)} users for {address} and shows not all addresses"
    return None, f"Jira finds no user with the address {address} who can be assigned {where}"
