"""Reading a rules file: TOML, validated whole before anything uses it.

Every problem is a `RulesError` naming the file, the line of the key that is wrong (when it can
be told for sure, else the line of the `[[rule]]` or `[table]` it is in), the rule id and the
reason; a run never starts with a rules file that does not load completely.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mapping.errors import RulesError
from mapping.rules.model import AssignSpec, Rule, RuleSet

__all__ = ["DEFAULT_RULES_PATH", "load_rules", "parse_rules"]

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")
# A bare or quoted key; a dotted key is these joined by dots (spaces around them allowed).
_KEY = r"""[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*'"""
_DOTTED = rf"(?:{_KEY})(?:[ \t]*\.[ \t]*(?:{_KEY}))*"
# A line that is a table header (`[a.b]`, `[[rule]]`) or starts with `key =`.
_STATEMENT = re.compile(rf"[ \t]*(?:(\[\[?)[ \t]*({_DOTTED})[ \t]*\]|({_DOTTED})[ \t]*=)")
# What can hide brackets or line ends from a line scan: strings (multi-line ones first) and
# comments; then the brackets and line ends themselves.
_TOKEN = re.compile(
    r'"""(?:\\.|[^\\])*?"""(?!")'
    r"|'''.*?'''(?!')"
    r'|"(?:\\.|[^"\\\n])*"'
    r"|'[^'\n]*'"
    r"|#[^\n]*"
    r"|[\[\]{}\n]",
    re.DOTALL,
)
_Loc = tuple[int | str, ...]


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
    rules = [_rule(raw, index, text, source) for index, raw in enumerate(raw_rules)]
    try:
        rule_set = RuleSet.model_validate({**data, "rule": rules})
    except ValidationError as error:
        line = _line_of(text, tuple(error.errors()[0]["loc"]), at_least=1)
        raise RulesError(_reason(error), source=_where(source, line)) from error
    _check_across_rules(rule_set, text, source)
    return rule_set


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else source


def _line_of(text: str, loc: _Loc, *, at_least: int) -> int | None:
    """The line (from 1) of the key that pydantic's error `loc` names, counted from the top of
    the file (`('rule', 2, 'then', 'priority')`, `('defaults', 'priority')`); None if unsure.

    Only lines that start a statement count: not a comment, not inside a multi-line string or
    array. Each table header and each `key =` line gets the full path it sets: the last header
    before it (the n-th `[[rule]]` is `('rule', n - 1)`, a `[rule.then]` below it is
    `('rule', n - 1, 'then')`) and its own dotted key, quoted or not. The line whose path is the
    longest prefix of `loc` is the answer (the first of equals), so a key inside an inline table
    or a multi-line array gets the line of the key its value belongs to, and a value set by a
    header alone gets that header's line. It gives up (None) when no path matches at least
    `at_least` parts of `loc`: a rule written as `rule = [{ ... }]` has no line of its own.
    """
    starts, depth, line = {1}, 0, 1
    for token in _TOKEN.finditer(text):
        piece = token.group()
        line += piece.count("\n")
        if piece in ("[", "{"):
            depth += 1
        elif piece in ("]", "}"):
            depth -= 1
        elif piece == "\n" and depth == 0:
            starts.add(line)
    lines = text.split("\n")
    arrays: dict[_Loc, int] = {}  # path of each array of tables -> its elements so far
    context: _Loc = ()
    best, best_length = None, at_least - 1
    for number in sorted(starts):
        match = _STATEMENT.match(lines[number - 1])
        if match is None:
            continue
        brackets, header, key = match.groups()
        parts = tuple(
            tomllib.loads(f"k = {part}")["k"] if part[0] in "\"'" else part
            for part in re.findall(_KEY, header or key)
        )
        if brackets:
            path: _Loc = ()
            for count, part in enumerate(parts, 1):
                path += (part,)
                if brackets == "[[" and count == len(parts):
                    arrays[path] = arrays.get(path, 0) + 1
                if path in arrays:
                    path += (arrays[path] - 1,)
            context = path
        else:
            path = context + parts
        if len(path) > best_length and loc[: len(path)] == path:
            best, best_length = number, len(path)
    return best


def _rule(raw: Any, index: int, text: str, source: str) -> Rule:
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    name = rule_id if isinstance(rule_id, str) else f"#{index + 1}"
    if not isinstance(raw, dict):
        line = _line_of(text, ("rule", index), at_least=2)
        raise RulesError("a rule must be a table", source=_where(source, line), rule_id=name)
    try:
        return Rule.model_validate(raw)
    except ValidationError as error:
        line = _line_of(text, ("rule", index, *error.errors()[0]["loc"]), at_least=2)
        raise RulesError(_reason(error), source=_where(source, line), rule_id=name) from error


def _reason(error: ValidationError) -> str:
    """The first problem, as `then.priority: Input should be 'P0', 'P1' or 'P2'`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def _check_across_rules(rule_set: RuleSet, text: str, source: str) -> None:
    seen: dict[str, int] = {}
    for index, rule in enumerate(rule_set.rules):
        if rule.id in seen:
            line = _line_of(text, ("rule", index, "id"), at_least=2)
            raise RulesError(
                f"the id is used twice (first by rule #{seen[rule.id] + 1}); ids must be unique "
                "because every log entry names its rule",
                source=_where(source, line),
                rule_id=rule.id,
            )
        seen[rule.id] = index
        specs: list[tuple[_Loc, AssignSpec | None]] = [(("then", "owner"), rule.then.owner)]
        specs += [(("then", "collaborators", n), c) for n, c in enumerate(rule.then.collaborators)]
        for loc, spec in specs:
            if spec is not None and spec.group is not None and spec.group not in rule_set.groups:
                known = ", ".join(sorted(rule_set.groups)) or "none"
                line = _line_of(text, ("rule", index, *loc), at_least=2)
                raise RulesError(
                    f"group {spec.group!r} is not defined under [groups] (defined: {known})",
                    source=_where(source, line),
                    rule_id=rule.id,
                )
