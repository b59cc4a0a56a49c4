"""`casedesk rules check [FILE]` and `casedesk rules explain FILE.eml`: look, never write.

`explain` takes a target and finds its facts through `TARGET_SOURCES`, a table of (recognise,
load) pairs: today an .eml file; a Jira issue key joins the table once the Jira intake exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_support import ConfigOption, load
from mapping.errors import CasedeskError

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


def _actions(rule: Any) -> str:
    decided = rule.then.model_dump(exclude_defaults=True, mode="json")
    flags = [flag for flag in ("override", "override_manual") if getattr(rule, flag)]
    return ", ".join([*(f"{k}={v}" for k, v in decided.items()), *flags])


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
    # Received "now" unless the mail says when it was sent: weekday/hour rules need a time.
    case = case_from_email(parsed, mailbox=mailbox, now=parsed.date or datetime.now(UTC))
    return facts_from_email(case, parsed)


def _is_jira_key(target: str) -> bool:
    return bool(JIRA_KEY.match(target))


def _facts_from_jira(target: str, settings: Any) -> Any:
    # Extension point: fetch the issue, map it to a case, then
    # `facts_from_case(case, jira_components=..., jira_labels=..., jira_priority=...,
    # triaged_by_person=...)`, and replace this error.
    raise CasedeskError(
        f"{target} looks like a Jira issue key; explaining Jira issues comes with the Jira intake. "
        "For now pass an .eml file."
    )


#: How `explain` turns a target into facts: the first entry that recognises it wins.
TARGET_SOURCES: list[tuple[Callable[[str], bool], Callable[[str, Any], Any]]] = [
    (_is_eml, _facts_from_eml),
    (_is_jira_key, _facts_from_jira),
]


def explain_text(facts: Any, rules: Any, zone: Any) -> str:
    """What the rules make of `facts`: rules that matched, decisions, outcome. Writes nothing."""
    from mapping.rules import RuleEngine

    outcome = RuleEngine(rules, zone).evaluate(facts)
    lines = [f"subject: {facts.subject}", f"from: {facts.sender or '-'}", "", "matched rules:"]
    for match in outcome.matches or []:
        note = f"  [{match.note}]" if match.note else ""
        lines.append(f"  {match.rule_id}: {match.because}{note}")
    if not outcome.matches:
        lines.append("  (none)")
    lines += ["", "decisions:", *(f"  {d.text}" for d in outcome.decisions)]
    if outcome.owner is not None:
        pick = outcome.owner
        lines.append(f"  owner: {pick.spec.describe()} by rule {pick.rule_id} (picked when stored)")
    for pick in outcome.collaborators:
        lines.append(f"  collaborator: {pick.spec.describe()} by rule {pick.rule_id}")
    if outcome.needs_triage:
        status = "triage (the lead is told)"
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


@rules_app.command("explain")
def rules_explain(
    target: Annotated[str, typer.Argument(help="An .eml file (a Jira key once Jira exists).")],
    config: ConfigOption = None,
    rules_file: RulesOption = None,
) -> None:
    """Show which rules match a report and what they decide, without writing anything."""
    from mapping.rules import load_rules

    settings = load(config)
    rules = load_rules(rules_file if rules_file is not None else settings.rules_path)
    for recognises, facts_of in TARGET_SOURCES:
        if recognises(target):
            facts = facts_of(target, settings)
            break
    else:
        raise CasedeskError(f"{target}: no such file (and not a Jira issue key)")
    typer.echo(explain_text(facts, rules, settings.zone))
