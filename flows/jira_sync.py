"""Pulling Jira into cases, as plain Python: pages of issues updated since the watermark.

The flow in `jira_flow.py` only orchestrates this. Each page is applied in one database
transaction, with a savepoint per issue, together with the project's watermark, so a crash or a
rate limit leaves the store at a page boundary and the next run resumes there.

Per issue version (key and `updated`), one ledger row, `jira:KEY@updated`: a version already in
the ledger is not applied again, so the overlap window and re-runs cost no writes. A new issue
becomes a numbered case, routed by the rules (which keep what a person triaged in Jira); a known
one takes what changed in Jira since the version we saw last (the snapshot kept on that version's
ledger row), its new comments, and its status, walked through legal moves. A case that becomes
resolved here queues the feedback request in the same transaction, once per resolution round.
A malformed issue is recorded as SKIPPED with its reason and the others go on; so is a search
result the connector could not read at all (no key, id or `updated`), as
`jira:KEY@unreadable-<hash of what Jira sent>`, once however often later runs read it again.

Paging. Data Center pages by offset, and the connector survives issues moving mid-sync. Cloud's
`nextPageToken` is opaque: when an issue already read is edited mid-sync, it moves to the end of
`ORDER BY updated` and a later page boundary can skip another issue. So on Cloud we page by key
set instead: every page is a fresh search from the last `updated` we read (JQL rounds it down to
the minute; what comes again is dropped), and a token is followed only when more than a page of
issues share one minute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, ValidationError

from connectors.jira_client import (
    JiraClient,
    JiraIssue,
    JiraNotFoundError,
    JiraSearchResult,
    MalformedJiraIssue,
)
from connectors.store import CaseStore, LedgerDecision, LedgerEntry, StoreTransaction
from flows.intake import may_write_to
from flows.jira_push_state import settle_owner
from mapping.case import Case, CaseStatus, LogKind
from mapping.errors import CasedeskError, ConcurrentUpdate, JiraError
from mapping.jira_issue import (
    JiraMapping,
    JiraSnapshot,
    Markup,
    add_comments,
    apply_snapshot,
    map_issue,
    markup_for,
    new_case_from_issue,
    walk_status,
)
from mapping.outgoing_mail import ComposeError, SenderIdentity, compose
from mapping.rules import ReportFacts, facts_from_issue

__all__ = [
    "SOURCE",
    "JiraPull",
    "JiraSyncContext",
    "JiraSyncReport",
    "issue_identity",
    "issue_location",
    "previous_snapshot",
    "pull",
    "resolution_round",
    "result_location",
    "watermark_name",
]

logger = logging.getLogger(__name__)
SOURCE = "jira"
FEEDBACK_REQUEST = "feedback_request"


class RouteHook(Protocol):
    """Applies the rules to a new Jira-born case (flows.routing.CaseRouter.route fits)."""

    def __call__(
        self, tx: StoreTransaction, case: Case, facts: ReportFacts, *, notify: bool = True
    ) -> object: ...


#: A first import's state (see `JiraPull.incremental`); installations from before it was kept
#: have none, and their pulls are incremental once they have a watermark.
IMPORT_RUNNING, IMPORT_DONE = "running", "done"


def import_name(project: str) -> str:
    return f"jira-import:{project}"


def watermark_name(project: str) -> str:
    return f"jira:{project}"


def issue_identity(key: str) -> str:
    return f"jira:{key}"


def issue_location(key: str, updated: datetime) -> str:
    """One version of an issue: the ledger's dedupe key."""
    return f"jira:{key}@{updated.astimezone(UTC).isoformat()}"


def result_location(result: JiraSearchResult) -> str:
    """The ledger's dedupe key for anything a search page holds, readable or not."""
    if isinstance(result, MalformedJiraIssue):
        # No `updated` to name a version by: what Jira sent names it, so the same broken
        # answer is recorded once and a changed one (perhaps fixed) is looked at again.
        name = result.key or result.id or "unidentified"
        return f"jira:{name}@unreadable-{result.fingerprint}"
    return issue_location(result.key, result.updated)


def _newest_update(page: list[JiraSearchResult]) -> datetime | None:
    """The latest `updated` among the page's readable issues (None: none could be read)."""
    return max((r.updated for r in page if isinstance(r, JiraIssue)), default=None)


@dataclass
class JiraSyncContext:
    """What the pull needs besides the client and the store."""

    project: str
    mapping: JiraMapping
    identity: SenderIdentity
    zone: ZoneInfo
    flavor: str = "cloud"
    overlap: timedelta = timedelta(minutes=2)
    page_size: int = 100
    #: The rules, for new Jira-born cases. None: no routing (the case keeps Jira's triage).
    route: RouteHook | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def markup(self) -> Markup:
        return markup_for(self.flavor)


class JiraSyncReport(BaseModel):
    """What one pull did; shown by the CLI and in the run summary."""

    pages: int = 0
    issues_read: int = 0
    already_seen: int = 0
    new_cases: list[str] = Field(default_factory=list)
    updated_cases: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    feedback_requests: list[str] = Field(default_factory=list)
    comment_fetches: int = Field(default=0, description="Issues with more than 20 comments.")
    requests: int = 0
    watermark: str | None = None

    def merge(self, other: JiraSyncReport) -> None:
        for name in ("pages", "issues_read", "already_seen", "comment_fetches", "requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("new_cases", "updated_cases", "skipped", "feedback_requests"):
            getattr(self, name).extend(getattr(other, name))
        self.watermark = other.watermark or self.watermark


def resolution_round(case: Case) -> int:
    """How many times the case has become resolved (the feedback request's round number)."""
    arrow = f"-> {CaseStatus.RESOLVED.value}"
    return sum(
        1
        for entry in case.process_log
        if entry.kind is LogKind.STATUS and entry.text.split(":", 1)[0].endswith(arrow)
    )


def previous_snapshot(tx: StoreTransaction, case: Case) -> JiraSnapshot | None:
    """The last Jira version of this case we applied (or created), from the ledger."""
    assert case.number is not None
    for entry in reversed(tx.ledger_entries(case_number=case.number)):
        if entry.source == SOURCE and entry.detail and "snapshot" in entry.detail:
            return JiraSnapshot.model_validate(entry.detail["snapshot"])
    return None


class JiraPull:
    """One run's pull of one project: `pages()` reads, `apply_page()` writes one transaction."""

    def __init__(self, store: CaseStore, client: JiraClient, context: JiraSyncContext) -> None:
        self.store, self.client, self.context = store, client, context
        stored = store.watermark(watermark_name(context.project))
        self.start_watermark = datetime.fromisoformat(stored) if stored else None
        self._high = self.start_watermark
        self._read: set[str] = set()  # locations of the versions read in this run
        # An initial import brings in history: issues resolved long ago get no feedback request,
        # and nobody is mailed (the owners the rules give old issues are not written to Jira
        # either: they are older than the push's `jira-assign-since`).
        # It lasts until a pull reads its last page (`finish`): one stopped by a rate limit
        # goes on as an import in the next run, though the watermark moved with each page.
        importing = store.watermark(import_name(context.project)) == IMPORT_RUNNING
        self.incremental = self.start_watermark is not None and not importing

    # -- reading -----------------------------------------------------------------------------

    def pages(self) -> Iterator[list[JiraSearchResult]]:
        """Pages of issue versions not yet read in this run, oldest first."""
        if self.context.flavor != "cloud":
            yield from self._fresh_pages(
                self.client.search_updated_since(
                    self.start_watermark, self.context.overlap, self.context.page_size
                )
            )
            return
        yield from self._keyset_pages()

    def _fresh_pages(
        self, pages: Iterator[list[JiraSearchResult]]
    ) -> Iterator[list[JiraSearchResult]]:
        for page in pages:
            fresh = self._fresh(page)
            if fresh:
                yield fresh

    def _fresh(self, page: list[JiraSearchResult]) -> list[JiraSearchResult]:
        fresh = [result for result in page if result_location(result) not in self._read]
        self._read.update(result_location(result) for result in fresh)
        return fresh

    def _keyset_pages(self) -> Iterator[list[JiraSearchResult]]:
        """Cloud: each page a new search from the last `updated` read (see the module doc)."""
        since, overlap = self.start_watermark, self.context.overlap
        size = self.context.page_size
        while True:
            search = self.client.search_updated_since(since, overlap, size)
            try:
                page = next(search, [])
                fresh = self._fresh(page)
                while not fresh and len(page) >= size:
                    # A full page of versions already read: more than a page of issues share
                    # one minute. Follow the token through that minute.
                    page = next(search, [])
                    fresh = self._fresh(page)
            finally:
                search.close()
            if fresh:
                yield fresh
            if len(page) < size:
                return  # a short page is the last one: no request just to learn that
            newest = _newest_update(page)
            if newest is not None:  # else search the same window again and page past it
                since, overlap = newest, timedelta(0)

    # -- writing -----------------------------------------------------------------------------

    def apply_page(self, page: list[JiraSearchResult]) -> JiraSyncReport:
        """Apply one page and move the watermark, in one transaction."""
        report = JiraSyncReport(pages=1, issues_read=len(page))
        before = self.client.request_count
        top = _newest_update(page)
        high = max((t for t in (self._high, top) if t is not None), default=None)
        with self.store.transaction() as tx:
            locations = [result_location(result) for result in page]
            seen = tx.seen_locations(SOURCE, locations)
            for result, location in zip(page, locations, strict=True):
                if location in seen:
                    report.already_seen += 1
                elif isinstance(result, MalformedJiraIssue):
                    self._skip(tx, result, report, result.reason)
                else:
                    self._apply_safely(tx, result, report)
                seen.add(location)  # the ledger takes one row per location
            if high is not None:  # a first page of only unreadable results moves nothing
                now = self.context.clock()
                tx.set_watermark(watermark_name(self.context.project), high.isoformat(), now=now)
                if not self.incremental:
                    tx.set_watermark(import_name(self.context.project), IMPORT_RUNNING, now=now)
        self._high = high
        report.watermark = None if high is None else high.isoformat()
        report.requests = self.client.request_count - before
        return report

    def finish(self) -> None:
        """The pull read its last page: a first import is done, and later pulls are
        incremental. Call it only after `pages()` ran out."""
        if not self.incremental and self._high is not None:
            with self.store.transaction() as tx:
                tx.set_watermark(
                    import_name(self.context.project), IMPORT_DONE, now=self.context.clock()
                )

    def _apply_safely(self, tx: StoreTransaction, issue: JiraIssue, report: JiraSyncReport) -> None:
        savepoint = tx.connection.begin_nested()
        try:
            self._apply(tx, issue, report)
            savepoint.commit()
        except JiraNotFoundError as error:
            savepoint.rollback()  # deleted (or hidden from us) between the search and now
            self._skip(tx, issue, report, f"gone from Jira while syncing: {error}")
        except (JiraError, ConcurrentUpdate):
            savepoint.rollback()
            raise  # the batch fails; the watermark stays and the next run tries again
        except (CasedeskError, ValidationError) as error:
            savepoint.rollback()
            self._skip(tx, issue, report, str(error))

    def _skip(
        self, tx: StoreTransaction, result: JiraSearchResult, report: JiraSyncReport, reason: str
    ) -> None:
        name = result.key if isinstance(result, JiraIssue) else result.ref
        logger.warning("Jira issue %s skipped: %s", name, reason)
        tx.record(
            LedgerEntry(
                source=SOURCE,
                location=result_location(result),
                identity=issue_identity(result.key or result.id or "unidentified"),
                decision=LedgerDecision.SKIPPED,
                reason=reason,
                received_at=result.updated if isinstance(result, JiraIssue) else None,
                recorded_at=self.context.clock(),
            )
        )
        report.skipped.append(f"{name}: {reason}")

    def _apply(self, tx: StoreTransaction, issue: JiraIssue, report: JiraSyncReport) -> None:
        context, now = self.context, self.context.clock()
        comments = None
        if not issue.has_all_comments:
            comments = self.client.comments(issue)  # search embeds at most 20
            report.comment_fetches += 1
        mapped = map_issue(issue, context.mapping, comments=comments, markup=context.markup)
        case = tx.case_by_jira_key(issue.key)
        is_new = case is None
        if case is None:
            case = new_case_from_issue(mapped, now=now)
            if context.route is not None:
                facts = facts_from_issue(case, mapped)
                # The first import brings in a project's history: route it, but tell nobody
                # about hundreds of old issues at once.
                context.route(tx, case, facts, notify=self.incremental)
            add_comments(case, mapped.comments)
            assert mapped.snapshot.status is not None
            walk_status(
                case,
                mapped.snapshot.status,
                at=now,
                reason=f"Jira status {mapped.snapshot.status_name}",
            )
            tx.add_case(case, month=case.created_at.astimezone(context.zone).date())
            reason = f"new case from Jira {issue.key}"
            if self.incremental and case.owner is not None and case.owner == mapped.snapshot.owner:
                # Jira's own assignee is never written back, not even after Jira clears it.
                # (A first import's history is older than the push's `jira-assign-since`, so
                # its owners are not written either: no row per imported case.)
                assert case.number is not None
                settle_owner(tx, case.number, case.owner, now)
        else:
            rounds = resolution_round(case)
            changed = apply_snapshot(case, mapped.snapshot, previous_snapshot(tx, case), at=now)
            if "owner" in changed:
                # Jira's assignee: never written back (not even after Jira clears it).
                assert case.number is not None
                settle_owner(tx, case.number, case.owner, now)
            added = add_comments(case, mapped.comments)
            if added:
                changed.append(f"{added} comment(s)")
            if changed:
                tx.save_case(case)
            reason = f"updated: {', '.join(changed)}" if changed else "no change for the case"
            if resolution_round(case) > rounds:
                self._request_feedback(tx, case, report)
        assert case.number is not None
        if is_new:
            report.new_cases.append(case.number)
            if self.incremental and case.status is CaseStatus.RESOLVED:
                self._request_feedback(tx, case, report)
        elif reason.startswith("updated"):
            report.updated_cases.append(case.number)
        tx.record(
            LedgerEntry(
                source=SOURCE,
                location=issue_location(issue.key, issue.updated),
                identity=issue_identity(issue.key),
                decision=LedgerDecision.JIRA_ISSUE,
                reason=reason,
                case_number=case.number,
                received_at=issue.updated,
                recorded_at=now,
                detail={"snapshot": mapped.snapshot.model_dump(mode="json")},
            )
        )

    def _request_feedback(self, tx: StoreTransaction, case: Case, report: JiraSyncReport) -> None:
        """Ask the user whether it is fixed; the outbox key makes it once per round."""
        now, recipient = self.context.clock(), case.submitter.email
        if not recipient or not may_write_to(recipient) or tx.suppressed([recipient]):
            logger.info("case %s resolved in Jira; nobody to ask for feedback", case.number)
            return
        try:
            mail = compose(
                FEEDBACK_REQUEST,
                case,
                recipients=[recipient],
                identity=self.context.identity,
                now=now,
                round_number=max(1, resolution_round(case)),
            )
        except ComposeError as error:
            # The case is still synced; a person can follow up by hand.
            logger.warning("case %s: no feedback request: %s", case.number, error)
            return
        if tx.queue(mail, now=now) is not None:
            assert case.number is not None
            report.feedback_requests.append(case.number)


def pull(store: CaseStore, client: JiraClient, context: JiraSyncContext) -> JiraSyncReport:
    """Pull every page since the watermark (the plain-Python loop the flow and bench share)."""
    puller = JiraPull(store, client, context)
    report = JiraSyncReport()
    before = client.request_count
    for page in puller.pages():
        report.merge(puller.apply_page(page))
    puller.finish()
    report.requests = client.request_count - before
    return report
