"""`casedesk rules check [FILE]` and `casedesk rules explain FILE.eml|KEY`: look, never write.

`explain` takes a target and finds its facts through `TARGET_SOURCES`, a table of (recognise,
load) pairs: an .eml file, or a Jira issue key (read from the Jira the settings name, as the
sync would read it the first time; nothing is written, here or in Jira).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli_support import ConfigOption, load
from mapping.errors import CasedeskError, ConfigError

if TYPE_CHECKING:  # the CLI imports the rules when a command runs, not when it starts
    from mapping.rules import Rule, RuleOutcome

__all__ = ["TARGET_SOURCES", "explain_text", "rules_app"]

rules_app = typer.Typer(help="Check and explain the routing rules.", no_args_is_help=True)

RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules", help="Rules file (default: rules_path of the settings, or the shipped set)."
    ),
]
JIRA_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-\d+$")


@rules_app.command("check")
def rules_check(
    file: Annotated[Path | None, typer.Argument(help="Rules file to validate.")] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a rules file (default: the one the settings name) and list its rules."""
    from mapping.rules import DEFAULT_RULES_PATH, load_rules

    path = file if file is not None else load(config).rules_path
    rules = load_rules(path)
    typer.echo(f"rules: {path or DEFAULT_RULES_PATH}")
    for name, members in rules.groups.items():
        typer.echo(f"  group {name}: {', '.join(members)}")
    for position, rule in enumerate(rules.rules, start=1):
        state = "" if rule.enabled else " (disabled)"
        typer.echo(f"  {position:3d}. {rule.id}{state}: {_actions(rule)}")
    typer.echo(f"ok: {len(rules.rules)} rules")


#: A rule's single-valued decisions: its `then` field, how people call it, and the attribute
#: its log entry (`Decision.attribute`) names; the owner is not a logged decision.
_SINGLE = (
    ("problem_type", "type", "problem_type"),
    ("priority", "priority", "priority"),
    ("related_system", "related system", "related_system"),
    ("due_in", "due time", "due"),
    ("owner", "owner", None),
)


def _actions(rule: Rule) -> str:
    """What a rule decides, as people read it: `type=permission, owner=round robin in group l1`."""
    from mapping.rules.engine import plain_value

    then = rule.then
    parts = [
        f"{label}={plain_value(value)}"
        for field, label, _ in _SINGLE
        if (value := getattr(then, field)) is not None
    ]
    if then.raise_priority:
        parts.append("raise priority by one level")
    if then.tags:
        parts.append(f"tags={', '.join(then.tags)}")
    if then.collaborators:
        parts.append(f"collaborators={'; '.join(pick.describe() for pick in then.collaborators)}")
    flags = [flag for flag in ("override", "override_manual") if getattr(rule, flag)]
    return ", ".join([*parts, *flags]) or "(decides nothing)"


def _effect(rule: Rule, outcome: RuleOutcome) -> str:
    """What a matching rule did to the outcome, and what it wanted that another decided (an
    earlier rule, or one that overrides): ` -> type` or ` -> nothing (owner from rule rr)`."""
    from mapping.rules.engine import and_list

    decisions = outcome.decisions
    done: list[str] = []
    lost: dict[str, list[str]] = {}  # who decided first -> what
    for field, label, attribute in _SINGLE:
        if getattr(rule.then, field) is None:
            continue
        if field == "owner":
            winner = outcome.owner.rule_id if outcome.owner is not None else None
        else:
            winner = next((d.rule_id for d in decisions if d.attribute == attribute), None)
        if winner == rule.id:
            done.append(label)
        else:
            lost.setdefault(f"rule {winner}" if winner else "a person", []).append(label)
    if rule.then.raise_priority:
        raised = [d for d in decisions if d.attribute == "priority" and d.rule_id == rule.id]
        if raised and "raised from" in raised[0].text:
            done.append("priority raised")
    for tag in rule.then.tags:
        # A tag a rule before it added already counts as that rule's.
        tagged_by = next(
            (d.rule_id for d in decisions if d.attribute == "tags" and d.value == tag), None
        )
        if tagged_by == rule.id:
            done.append(f"tag '{tag}'")
        else:
            lost.setdefault(f"rule {tagged_by}", []).append(f"tag '{tag}'")
    done += [
        f"collaborator ({pick.spec.describe()})"
        for pick in outcome.collaborators
        if pick.rule_id == rule.id
    ]
    firsts = "; ".join(f"{and_list(labels)} from {who}" for who, labels in lost.items())
    return f" -> {', '.join(done) or 'nothing'}" + (f" ({firsts})" if firsts else "")


def _explained_time(text: str, zone: Any) -> datetime:
    """`--at`: an ISO 8601 time, in the team's zone unless it gives an offset; in UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CasedeskError(
            f"--at {text!r} is not a time: write it as ISO 8601, e.g. 2024-05-18T10:00 or "
            "2024-05-18T10:00+08:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


# Targets of `explain` -------------------------------------------------------------------------
def _is_eml(target: str) -> bool:
    return Path(target).is_file()


def _facts_from_eml(target: str, settings: Any) -> Any:
    from mapping.email_to_case import case_from_email
    from mapping.parsed_email import parse_email
    from mapping.rules import facts_from_email

    try:
        raw = Path(target).read_bytes()
    except OSError as error:
        raise CasedeskError(f"cannot read {target}: {error}") from error
    parsed = parse_email(raw)
    mailbox = settings.mailboxes[0].name if settings.mailboxes else "support"
    # Received now, as intake would take it in now (`--at` says another time).
    case = case_from_email(parsed, mailbox=mailbox, now=datetime.now(UTC))
    return facts_from_email(case, parsed)


def _is_jira_key(target: str) -> bool:
    return bool(JIRA_KEY.match(target))


def _facts_from_jira(target: str, settings: Any) -> Any:
    """The facts of issue `target` as the Jira sync would route it if it were new: one GET of the
    issue (its comments are not needed), mapped by the settings' `[jira.mapping]`."""
    from flows.runtime import build_jira_client
    from mapping.jira_issue import map_issue, markup_for, new_case_from_issue
    from mapping.rules import facts_from_issue

    jira = settings.jira
    if not jira.enabled:
        raise ConfigError(
            f"Jira is not enabled, so {target} cannot be read: set enabled = true and the "
            "connection under [jira] (docs/jira.md), or pass an .eml file",
            key="jira",
        )
    with build_jira_client(settings) as client:
        issue = client.get_issue(target)
    # The rules read no comment: none is asked for beyond what the issue embeds, none mapped.
    mapped = map_issue(issue, jira.mapping, comments=[], markup=markup_for(jira.flavor))
    case = new_case_from_issue(mapped, now=datetime.now(UTC))
    return facts_from_issue(case, mapped)


#: How `explain` turns a target into facts: the first entry that recognises it wins.
TARGET_SOURCES: list[tuple[Callable[[str], bool], Callable[[str, Any], Any]]] = [
    (_is_eml, _facts_from_eml),
    (_is_jira_key, _facts_from_jira),
]


def explain_text(facts: Any, rules: Any, zone: Any, *, lead_address: str | None) -> str:
    """What the rules make of `facts`: rules that matched, decisions, outcome. Writes nothing.

    `lead_address` is the settings' `outgoing.lead_address`: whom a case sent to triage is
    mailed to (nobody when None)."""
    from mapping.rules import RuleEngine

    outcome = RuleEngine(rules, zone).evaluate(facts)
    lines = [f"subject: {facts.subject}", f"from: {facts.sender or '-'}"]
    if facts.jira_project is not None:
        lines.append(f"jira: {_jira_line(facts)}")
    lines += ["", "matched rules:"]
    by_id = {rule.id: rule for rule in rules.rules}
    for match in outcome.matches or []:
        note = f"  [{match.note}]" if match.note else ""
        # A note says why a rule did less than it says (a person's triage): no effect then.
        effect = _effect(by_id[match.rule_id], outcome) if match.applied and not match.note else ""
        lines.append(f"  {match.rule_id}: {match.because}{effect}{note}")
    if not outcome.matches:
        lines.append("  (none)")
    lines += ["", "decisions:", *(f"  {d.text}" for d in outcome.decisions)]
    if outcome.owner is not None:
        pick = outcome.owner
        lines.append(f"  owner: {pick.spec.describe()} by rule {pick.rule_id} (picked when stored)")
    elif outcome.manual_owner is not None:
        lines.append(f"  owner: {outcome.manual_owner} (triaged by a person in Jira)")
    for pick in outcome.collaborators:
        lines.append(f"  collaborator: {pick.spec.describe()} by rule {pick.rule_id}")
    if outcome.needs_triage:
        status = (
            f"triage (the lead is told: {lead_address})"
            if lead_address
            else "triage (no lead address is set: outgoing.lead_address; "
            "the case waits in the triage queue)"
        )
    elif outcome.owner is not None:
        status = "assigned"
    else:
        status = "new (waiting for the dispatcher)"
    lines += [
        "",
        "result:",
        f"  type: {outcome.problem_type.label_zh} ({outcome.problem_type.value})",
        f"  priority: {outcome.priority.value}",
        f"  tags: {', '.join(outcome.tags) or '-'}",
        f"  related system: {outcome.related_system or '-'}",
        f"  due: {outcome.due_at.astimezone(zone).strftime('%Y-%m-%d %H:%M %Z')}",
        f"  status: {status}",
    ]
    return "\n".join(lines)


def _jira_line(facts: Any) -> str:
    """`project SUP, components Web, labels -, priority High, triaged by a person`."""
    parts = [
        f"project {facts.jira_project}",
        f"components {', '.join(facts.jira_components) or '-'}",
        f"labels {', '.join(facts.jira_labels) or '-'}",
        f"priority {facts.jira_priority or '-'}",
    ]
    if facts.manual is not None:
        parts.append("triaged by a person (what they decided stands)")
    elif facts.from_source is not None:
        parts.append("not triaged by a person (its priority and type stand where no rule decides)")
    return ", ".join(parts)


@rules_app.command("explain")
def rules_explain(
    target: Annotated[str, typer.Argument(help="An .eml file, or a Jira issue key (SUP-12).")],
    config: ConfigOption = None,
    rules_file: RulesOption = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Explain as if received then, for weekday and hour rules: ISO 8601, e.g. "
            "2024-05-18T10:00 (in the team's time zone unless it gives an offset). Default: "
            "now for a mail, as intake would take it; the issue's creation for a Jira key, as "
            "the sync does.",
        ),
    ] = None,
    mailbox: Annotated[
        str | None,
        typer.Option(
            "--mailbox", help="The mailbox a mail arrived in (default: the first configured)."
        ),
    ] = None,
) -> None:
    """Show which rules match a report and what they decide, without writing anything."""
    from mapping.case import SourceKind
    from mapping.rules import load_rules

    settings = load(config)
    received_at = None if at is None else _explained_time(at, settings.zone)
    rules = load_rules(rules_file if rules_file is not None else settings.rules_path)
    for recognises, facts_of in TARGET_SOURCES:
        if recognises(target):
            facts = facts_of(target, settings)
            break
    else:
        raise CasedeskError(f"{target}: no such file (and not a Jira issue key)")
    if mailbox is not None:
        if facts.source is not SourceKind.EMAIL:
            raise CasedeskError(f"--mailbox is for a mail; {target} is not one")
        known = [box.name for box in settings.mailboxes]
        if known and mailbox not in known:
            raise CasedeskError(
                f"no mailbox {mailbox!r} in the settings (configured: {', '.join(known)})"
            )
        facts = facts.model_copy(update={"mailbox": mailbox})
    if received_at is not None:
        facts = facts.model_copy(update={"received_at": received_at})
    lead_address = settings.outgoing.lead_address
    typer.echo(explain_text(facts, rules, settings.zone, lead_address=lead_address))
