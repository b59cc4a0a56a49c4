"""Reading a rules file: TOML, validated whole before anything uses it.

Every problem is a `RulesError` naming the file, the line of the `[[rule]]` it is in (when the
rule is written as a `[[rule]]` table) and the rule id, with the reason; a run never starts with
a rules file that does not load completely.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mapping.errors import RulesError
from mapping.rules.model import Rule, RuleSet

__all__ = ["DEFAULT_RULES_PATH", "load_rules", "parse_rules"]

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")
_RULE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*rule[ \t]*\]\]", re.MULTILINE)


def load_rules(path: Path | None = None) -> RuleSet:
    """The rule set in `path` (the shipped default set when None); RulesError if it is bad."""
    source = path or DEFAULT_RULES_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise RulesError("the rules file does not exist", source=str(source)) from error
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError(f"cannot read it: {error}", source=str(source)) from error
    return parse_rules(text, source=str(source))


def parse_rules(text: str, *, source: str) -> RuleSet:
    """Validate the text of a rules file; `source` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"not valid TOML: {error}", source=source) from error
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RulesError("'rule' must be a list of [[rule]] tables", source=source)
    lines = [text.count("\n", 0, m.start()) + 1 for m in _RULE_HEADER.finditer(text)]
    rules = [_rule(raw, index, lines, source) for index, raw in enumerate(raw_rules)]
    try:
        rule_set = RuleSet.model_validate({**data, "rule": rules})
    except ValidationError as error:
        raise RulesError(_reason(error), source=source) from error
    _check_across_rules(rule_set, lines, source)
    return rule_set


def _where(source: str, lines: list[int], index: int) -> str:
    # Only when every rule is a [[rule]] table do the headers line up with the rules.
    return f"{source}:{lines[index]}" if index < len(lines) else source


def _rule(raw: Any, index: int, lines: list[int], source: str) -> Rule:
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    name = rule_id if isinstance(rule_id, str) else f"#{index + 1}"
    if not isinstance(raw, dict):
        raise RulesError(
            "a rule must be a table", source=_where(source, lines, index), rule_id=name
        )
    try:
        return Rule.model_validate(raw)
    except ValidationError as error:
        raise RulesError(
            _reason(error), source=_where(source, lines, index), rule_id=name
        ) from error


def _reason(error: ValidationError) -> str:
    """The first problem, as `then.priority: Input should be 'P0', 'P1' or 'P2'`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def _check_across_rules(rule_set: RuleSet, lines: list[int], source: str) -> None:
    seen: dict[str, int] = {}
    for index, rule in enumerate(rule_set.rules):
        where = _where(source, lines, index)
        if rule.id in seen:
            raise RulesError(
                f"the id is used twice (first by rule #{seen[rule.id] + 1}); ids must be unique "
                "because every log entry names its rule",
                source=where,
                rule_id=rule.id,
            )
        seen[rule.id] = index
        specs = [rule.then.owner, *rule.then.collaborators]
        for spec in specs:
            if spec is not None and spec.group is not None and spec.group not in rule_set.groups:
                known = ", ".join(sorted(rule_set.groups)) or "none"
                raise RulesError(
                    f"group {spec.group!r} is not defined under [groups] (defined: {known})",
                    source=where,
                    rule_id=rule.id,
                )
