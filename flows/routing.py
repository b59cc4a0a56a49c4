"""Routing a new case by the rules: the intake hook that applies them and tells people.

`make_router(settings)` reads the rules file once per run (an edit takes effect at the next run,
no restart) and refuses a bad one with RulesError before any mail is read. The router it returns
is `IntakeContext.route_new_case`: it evaluates the rules, writes the decisions to the case,
assigns (round-robin state and open-case counts come from the same transaction as the case), and
queues a notice to the lead (triage) or to the owner and collaborators (assignment). Without
`outgoing.lead_address` a triage notice goes to nobody: `make_router` warns of that each run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from connectors.store import StoreTransaction
from flows.parse_ahead import Prematch
from flows.settings import Settings
from mapping.case import Case
from mapping.outgoing_mail import SenderIdentity, compose
from mapping.parsed_email import ParsedEmail
from mapping.rules import (
    Prematched,
    ReportFacts,
    Routing,
    RuleEngine,
    RuleSet,
    Verdict,
    apply_outcome,
    facts_from_email,
    load_rules,
)

__all__ = ["ASSIGNMENT_NOTICE", "NO_LEAD_WARNING", "TRIAGE_NOTICE", "CaseRouter", "make_router"]

logger = logging.getLogger(__name__)

TRIAGE_NOTICE = "triage_notice"
ASSIGNMENT_NOTICE = "assignment"
NO_LEAD_WARNING = (
    "no lead address is set, so cases sent to triage will not be mailed to anyone (they wait "
    "in the triage queue): set outgoing.lead_address in the settings "
    "(or CASEDESK_OUTGOING__LEAD_ADDRESS)"
)


@dataclass
class CaseRouter:
    """Applies one loaded rule set to each new case of a run."""

    rules: RuleSet
    engine: RuleEngine
    zone: ZoneInfo
    identity: SenderIdentity
    lead_address: str | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def prematch(self) -> Prematch:
        """`IntakeContext.prematch`: the rules' content conditions checked, and what they
        decide but the due time, where mail is parsed (pickled to a parse worker as the rules,
        compiled there again)."""
        return self.engine.prematch_email

    def __call__(
        self,
        tx: StoreTransaction,
        case: Case,
        parsed: ParsedEmail,
        prematched: Prematched | None = None,
    ) -> None:
        """The intake hook: route a new email case before it is stored.

        `prematched` is what `prematch` found where the mail was parsed; without it (or from
        other rules, e.g. a worker of an earlier run) the rules are matched here."""
        if prematched is not None and prematched.token == self.engine.conditions.token:
            verdict = self.engine.decide_prematched(prematched, received_at=case.created_at)
        else:
            verdict = self.engine.decide(facts_from_email(case, parsed))
        # Decided as part of the case's intake: logged at its time (one time a batch, so the
        # entries repeat and are validated once, see mapping.rules.apply).
        self._apply(tx, case, verdict, notify=True, triaged=False, at=case.created_at)

    def route(
        self, tx: StoreTransaction, case: Case, facts: ReportFacts, *, notify: bool = True
    ) -> Routing:
        """Route any case by its facts (the Jira intake calls this with `facts_from_case`).

        With `notify=False` the decisions are made and logged but nobody is mailed (a first
        import of a Jira project's history)."""
        verdict = self.engine.decide(facts)
        triaged = facts.manual is not None
        return self._apply(tx, case, verdict, notify=notify, triaged=triaged, at=self.clock())

    def _apply(
        self,
        tx: StoreTransaction,
        case: Case,
        verdict: Verdict,
        *,
        notify: bool,
        triaged: bool,
        at: datetime,
    ) -> Routing:
        # A person's triage, in Jira (only such a case needs it: not every new mail).
        earlier = (case.owner, *case.collaborators) if triaged else ()
        routing = apply_outcome(case, verdict, groups=self.rules.groups, state=tx, at=at)
        if not notify:
            return routing
        if routing.needs_triage:
            self._notify(tx, case, TRIAGE_NOTICE, [self.lead_address] if self.lead_address else [])
        elif routing.owner is not None:
            people = [routing.owner, *routing.collaborators]
            if triaged:
                # A person's own triage is not news to them: only whoever a rule put on the
                # case (`override_manual`) is told.
                people = [person for person in people if person not in earlier]
                if not people:
                    return routing
            self._notify(tx, case, ASSIGNMENT_NOTICE, [p for p in people if "@" in p])
        return routing

    def _notify(self, tx: StoreTransaction, case: Case, kind: str, recipients: list[str]) -> None:
        if not recipients:
            logger.info("case %s: %s has nobody to go to (no address)", case.subject, kind)
            return
        if case.number is None:
            # The notice names the case, so number it now, as the store would when adding it:
            # by the team's local month of intake (add_case keeps a number already set).
            case.number = tx.allocate_case_number(case.created_at.astimezone(self.zone).date())
        now = self.clock()
        mail = compose(kind, case, recipients=recipients, identity=self.identity, now=now)
        tx.queue(mail, now=now)


def make_router(settings: Settings) -> CaseRouter:
    """Load the rules named by the settings (or the shipped set); RulesError if they are bad."""
    from flows.runtime import sender_identity  # runtime builds the context that holds us

    rules = load_rules(settings.rules_path)
    logger.info("rules: %d loaded from %s", len(rules.rules), settings.rules_path or "defaults")
    if not settings.outgoing.lead_address:
        # Once per run (a router is made once per run): otherwise triage is silent.
        logger.warning(NO_LEAD_WARNING)
    return CaseRouter(
        rules=rules,
        engine=RuleEngine(rules, settings.zone),
        zone=settings.zone,
        identity=sender_identity(settings),
        lead_address=settings.outgoing.lead_address,
    )
