"""Reading a rules file: TOML in UTF-8 (a byte-order mark allowed), validated whole before
anything uses it.

Every problem is a `RulesError` naming the file, the line of the key that is wrong (when it can
be told for sure, else the line of the `[[rule]]` or `[table]` it is in), the rule id and the
reason. A file with several problems gets one error listing them, one a line, in the file's
order (a rule's groups are looked up only once the rule and `[groups]` load). A run never
starts with a rules file that does not load completely.
"""

from __future__ import annotations

import codecs
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mapping.errors import RulesError
from mapping.rules.model import AssignSpec, Rule, RuleSet

__all__ = ["DEFAULT_RULES_PATH", "load_rules", "parse_rules"]

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")
_YAML_SUFFIXES = (".yaml", ".yml")
_NOT_YAML = "rules files are TOML; YAML is not supported"
_HOW_TOML = (
    "write the rules in TOML, as docs/rules.md shows (`key = value`, a `[[rule]]` table for "
    "each rule)"
)
# The first statement of a YAML file: a document start or directive, a `key:` or a `- ` item;
# none of them is TOML (checked only once the text has failed as TOML).
_YAML_START = re.compile(r"[ \t]*(?:---|%YAML|-[ \t]|[\w.\"'-]+[ \t]*:(?:[ \t\r]|$))")
_SAVE_AS_UTF8 = (
    'and rules files must be UTF-8; save it as UTF-8 (in Notepad: "Save As", Encoding "UTF-8")'
)
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
        data = source.read_bytes()
    except FileNotFoundError as error:
        raise RulesError("the rules file does not exist", source=str(source)) from error
    except OSError as error:
        raise RulesError(f"cannot read it: {error}", source=str(source)) from error
    if source.suffix.lower() in _YAML_SUFFIXES:
        raise RulesError(f"{_NOT_YAML}: {_HOW_TOML}, in a file named .toml", source=str(source))
    return parse_rules(_decoded(data, str(source)), source=str(source))


def parse_rules(text: str, *, source: str) -> RuleSet:
    """Validate the text of a rules file; `source` names it in errors."""
    text = text.removeprefix("\ufeff")  # a byte-order mark, as Windows Notepad writes
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        yaml_line = _yaml_line(text)
        if yaml_line is not None:
            number, statement = yaml_line
            raise RulesError(
                f"{_NOT_YAML}: {statement!r} is YAML; {_HOW_TOML}",
                source=_where(source, number),
            ) from error
        raise RulesError(f"not valid TOML: {error}", source=source) from error
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RulesError("'rule' must be a list of [[rule]] tables", source=source)
    problems = _Problems(text, source)
    rules: list[tuple[int, Rule]] = []
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, index, problems)
        if rule is not None:
            rules.append((index, rule))
    rule_set: RuleSet | None = None
    groups: dict[str, list[str]] | None = None
    try:
        rule_set = RuleSet.model_validate({**data, "rule": [rule for _, rule in rules]})
        groups = rule_set.groups
    except ValidationError as error:
        problems.add_all(error, (), at_least=1)
        if not any(detail["loc"][:1] == ("groups",) for detail in error.errors()):
            groups = data.get("groups", {})  # nothing wrong in it: the groups are known
    _check_ids(raw_rules, problems)
    _check_groups(rules, groups, problems)
    problems.raise_any()
    assert rule_set is not None  # else a problem was raised
    return rule_set


def _decoded(data: bytes, source: str) -> str:
    """The text of a file that must be UTF-8 (a byte-order mark allowed); else a RulesError
    with the line and column where it stops being UTF-8 and what it looks like instead."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise RulesError(
            f'the file is saved as UTF-16 (Notepad\'s "Unicode"), {_SAVE_AS_UTF8}', source=source
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # The decoder counts from after a byte-order mark.
        bad = error.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        # Another encoding's bytes can pass for UTF-8 for a character or two before the
        # decoder stops: the text that is not UTF-8 starts where that run of non-ASCII bytes does.
        line_start = data.rfind(b"\n", 0, bad) + 1
        start = bad
        while start > line_start and data[start - 1] >= 0x80:
            start -= 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8-sig", errors="replace")) + 1
        looks = _looks_like(data.removeprefix(codecs.BOM_UTF8))
        guess = f": the file looks saved as {looks}," if looks else ","
        raise RulesError(
            f"column {column} is not UTF-8 (byte 0x{data[start]:02x}){guess} {_SAVE_AS_UTF8}",
            source=_where(source, line),
        ) from error


def _looks_like(data: bytes) -> str | None:
    """GBK or Big5, the encodings Chinese editors save in, when the file reads as one of them.

    Big5 bytes mostly read as GBK too, but as rare characters, kana, bopomofo or box drawing:
    GBK is taken when every character it gives is in GB2312's punctuation or Chinese characters.
    """
    as_gbk = _decodes(data, "gb18030")
    if as_gbk is not None and all(_gb2312_text(char) for char in as_gbk if ord(char) >= 0x80):
        return "GBK (GB18030)"
    if _decodes(data, "big5") is not None:
        return "Big5"
    return "GBK (GB18030)" if as_gbk is not None else None


def _decodes(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _gb2312_text(char: str) -> bool:
    """In GB2312's rows of punctuation and full-width forms (1-3) or Chinese characters (16-87)."""
    try:
        lead = char.encode("gb2312")[0]
    except UnicodeEncodeError:
        return False
    return 0xA1 <= lead <= 0xA3 or 0xB0 <= lead <= 0xF7


def _yaml_line(text: str) -> tuple[int, str] | None:
    """The first statement (line number, text) when it looks like YAML, else None."""
    for number, line in enumerate(text.split("\n"), 1):
        statement = line.strip()
        if not statement or statement.startswith("#"):
            continue
        return (number, statement) if _YAML_START.match(line) else None
    return None


def _where(source: str, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else source


class _Problems:
    """Every problem of one file, each with its line (when it can be told) and rule id."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source = text, source
        self.found: list[tuple[int | None, str | None, str]] = []
        self._paths: list[tuple[int, _Loc]] | None = None

    def add(self, reason: str, loc: _Loc, *, at_least: int, rule_id: str | None = None) -> None:
        """A problem at the key `loc` names (see `_line_of`)."""
        if self._paths is None:  # worked out once, and only for a file with a problem
            self._paths = _key_paths(self.text)
        self.found.append((_line_of(self._paths, loc, at_least=at_least), rule_id, reason))

    def add_all(
        self, error: ValidationError, at: _Loc, *, at_least: int, rule_id: str | None = None
    ) -> None:
        """Every error pydantic found, at the keys below `at`."""
        for detail in error.errors():
            loc = tuple(detail["loc"])
            where = ".".join(str(part) for part in loc)
            message = str(detail["msg"]).removeprefix("Value error, ")
            reason = f"{where}: {message}" if where else message
            self.add(reason, (*at, *loc), at_least=at_least, rule_id=rule_id)

    def raise_any(self) -> None:
        """A RulesError with the problem, or with all of them, one a line, in the file's order."""
        if len(self.found) == 1:
            line, rule_id, reason = self.found[0]
            raise RulesError(reason, source=_where(self.source, line), rule_id=rule_id)
        if self.found:
            ordered = sorted(self.found, key=lambda found: (found[0] is None, found[0] or 0))
            each = [
                f"  {RulesError(reason, source=_where(self.source, line), rule_id=rule_id)}"
                for line, rule_id, reason in ordered
            ]
            rule_ids = {rule_id for _, rule_id, _ in self.found}
            raise RulesError(
                "\n".join([f"{len(each)} problems:", *each]),
                source=self.source,
                rule_id=rule_ids.pop() if len(rule_ids) == 1 else None,
            )


def _key_paths(text: str) -> list[tuple[int, _Loc]]:
    """Each line (from 1) that starts a statement, with the full path of the key it sets.

    Only lines that start a statement count: not a comment, not inside a multi-line string or
    array. Each table header and each `key =` line gets the full path it sets: the last header
    before it (the n-th `[[rule]]` is `('rule', n - 1)`, a `[rule.then]` below it is
    `('rule', n - 1, 'then')`) and its own dotted key, quoted or not.
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
    paths: list[tuple[int, _Loc]] = []
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
        paths.append((number, path))
    return paths


def _line_of(paths: list[tuple[int, _Loc]], loc: _Loc, *, at_least: int) -> int | None:
    """The line of the key that pydantic's error `loc` names (`('rule', 2, 'then',
    'priority')`, `('defaults', 'priority')`), from `_key_paths`; None if unsure.

    The line whose path is the longest prefix of `loc` is the answer (the first of equals), so
    a key inside an inline table or a multi-line array gets the line of the key its value
    belongs to, and a value set by a header alone gets that header's line. It gives up (None)
    when no path matches at least `at_least` parts of `loc`: a rule written as
    `rule = [{ ... }]` has no line of its own.
    """
    best, best_length = None, at_least - 1
    for number, path in paths:
        if len(path) > best_length and loc[: len(path)] == path:
            best, best_length = number, len(path)
    return best


def _rule(raw: Any, index: int, problems: _Problems) -> Rule | None:
    """The index-th rule, or None when it has problems (added to `problems`)."""
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    name = rule_id if isinstance(rule_id, str) else f"#{index + 1}"
    if not isinstance(raw, dict):
        problems.add("a rule must be a table", ("rule", index), at_least=2, rule_id=name)
        return None
    try:
        return Rule.model_validate(raw)
    except ValidationError as error:
        problems.add_all(error, ("rule", index), at_least=2, rule_id=name)
        return None


def _check_ids(raw_rules: list[Any], problems: _Problems) -> None:
    """Every id used a second time (also by a rule that has other problems)."""
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(rule_id, str):
            continue
        if rule_id in seen:
            problems.add(
                f"the id is used twice (first by rule #{seen[rule_id] + 1}); ids must be unique "
                "because every log entry names its rule",
                ("rule", index, "id"),
                at_least=2,
                rule_id=rule_id,
            )
        else:
            seen[rule_id] = index


def _check_groups(
    rules: list[tuple[int, Rule]], groups: dict[str, list[str]] | None, problems: _Problems
) -> None:
    """Every group a rule names and [groups] does not define (None: [groups] is wrong itself)."""
    if groups is None:
        return
    known = ", ".join(sorted(groups)) or "none"
    for index, rule in rules:
        specs: list[tuple[_Loc, AssignSpec | None]] = [(("then", "owner"), rule.then.owner)]
        specs += [(("then", "collaborators", n), c) for n, c in enumerate(rule.then.collaborators)]
        for loc, spec in specs:
            if spec is not None and spec.group is not None and spec.group not in groups:
                problems.add(
                    f"group {spec.group!r} is not defined under [groups] (defined: {known})",
                    ("rule", index, *loc),
                    at_least=2,
                    rule_id=rule.id,
                )
