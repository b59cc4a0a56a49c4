"""Loading rules files: a bad one is refused with its file, line, rule id and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapping.errors import RulesError
from mapping.rules import DEFAULT_RULES_PATH, load_rules, parse_rules
from mapping.rules.model import Strategy


def refusal(text: str) -> str:
    """The error a rules file of this text is refused with (as `rules.toml`)."""
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source="rules.toml")
    return str(caught.value)


def test_the_shipped_rule_set_loads() -> None:
    rules = load_rules()
    assert len(rules.rules) >= 10
    assert load_rules(DEFAULT_RULES_PATH) == rules


def test_a_full_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[due]
P0 = "2h"
P1 = "1d 4h"
[due.business_hours]
start = "09:00"
end = "18:00"
holidays = ["2024-10-01"]

[groups]
l1 = ["a@example.com", "b@example.com"]

[[rule]]
id = "assign"
when.keywords = "故障"
then.owner = { group = "l1", strategy = "round_robin" }
then.collaborators = ["ops@example.com", { group = "l1", strategy = "fewest_open" }]
then.problem_type = "系统故障"
""",
        encoding="utf-8",
    )
    rules = load_rules(path)
    rule = rules.rules[0]
    assert rule.when.keywords == ["故障"]
    assert rule.then.owner is not None and rule.then.owner.strategy is Strategy.ROUND_ROBIN
    assert [c.person or c.group for c in rule.then.collaborators] == ["ops@example.com", "l1"]
    assert rule.then.problem_type == "system_fault"
    assert rules.due.P1.total_seconds() == 28 * 3600


BAD_FILES = [
    (
        '[[rule]]\nid = "a"\nthen.priority = "P3"\n',
        "rules.toml:3 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (
        '[[rule]]\nid = "a"\nthen.priority = "P1"\n\n[[rule]]\nid = "b"\nwhen.regex = ["("]\n'
        'then.priority = "P1"\n',
        "rules.toml:7 rule 'b': when.regex: regular expression '(' does not compile: "
        "missing ), unterminated subpattern at position 0",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.keywords = ["x"]\n',
        "rules.toml:1 rule 'a': then: Field required",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.keywords = ["x"]\nthen.tags = []\n',
        "rules.toml:1 rule 'a': the rule decides nothing: give [rule.then] at least one action",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.keyword = ["x"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.keyword: Extra inputs are not permitted",
    ),
    (
        '[[rule]]\nid = "a"\nthen.tags = ["t"]\n[[rule]]\nid = "a"\nthen.tags = ["u"]\n',
        "rules.toml:5 rule 'a': the id is used twice (first by rule #1); ids must be unique "
        "because every log entry names its rule",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = { group = "l2", strategy = "round_robin" }\n',
        "rules.toml:3 rule 'a': group 'l2' is not defined under [groups] (defined: none)",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = { group = "l1" }\n',
        "rules.toml:3 rule 'a': then.owner: a group needs strategy 'round_robin' or 'fewest_open'",
    ),
    (
        '[[rule]]\nthen.tags = ["t"]\n',
        "rules.toml:1 rule '#1': id: Field required",
    ),
    (
        '[[rule]]\nid = "Bad Id"\nthen.tags = ["t"]\n',
        "rules.toml:2 rule 'Bad Id': id: rule id 'Bad Id' must be lower-case letters, digits, "
        "'-', '_' or '.'",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.keywords = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.keywords: an empty keyword would match everything; remove it",
    ),
    # No value may be empty (or only spaces): refused with why, never dropped.
    (
        '[[rule]]\nid = "a"\nthen.owner = { person = "" }\n',
        "rules.toml:3 rule 'a': then.owner.person: an empty person names no one; give an "
        "address ('li@example.com') or remove it",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = " "\n',
        "rules.toml:3 rule 'a': then.owner.person: an empty person names no one; give an "
        "address ('li@example.com') or remove it",
    ),
    (
        '[[rule]]\nid = "a"\nthen.collaborators = ["ops@example.com", ""]\n',
        "rules.toml:3 rule 'a': then.collaborators.1.person: an empty person names no one; "
        "give an address ('li@example.com') or remove it",
    ),
    (
        '[groups]\nl1 = ["a@example.com", ""]\n',
        "rules.toml:2: groups.l1.1: an empty person names no one; remove it",
    ),
    (
        '[groups]\n"" = ["a@example.com"]\n',
        "rules.toml:1: groups: a group needs a name: one of [groups] has an empty one",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.sender = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.sender: an empty sender is no address or domain; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.sender = ["vip"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.sender: sender 'vip' must be an address "
        "('li@example.com'), a domain with a leading '@' ('@example.com') or a bare domain "
        "('example.com')",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.sender = ["ceo@example"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.sender: sender 'ceo@example' must be an address "
        "('li@example.com'), a domain with a leading '@' ('@example.com') or a bare domain "
        "('example.com')",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.sender = ["*.example.com"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.sender: sender '*.example.com' must be an address "
        "('li@example.com'), a domain with a leading '@' ('@example.com') or a bare domain "
        "('example.com')",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.mailbox = ""\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.mailbox: an empty mailbox name matches no mailbox; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.jira_project = [" "]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.jira_project: an empty Jira project matches no issue; "
        "remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.jira_component = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.jira_component: an empty Jira component matches no issue; "
        "remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.jira_label = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.jira_label: an empty Jira label matches no issue; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.jira_priority = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.jira_priority: an empty Jira priority matches no issue; "
        "remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.subject_keywords = ["x", " "]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.subject_keywords: an empty keyword would match "
        "everything; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.regex = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.regex: an empty regular expression would match "
        "everything; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.attachment_types = [""]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.attachment_types: an empty attachment type matches no "
        "attachment; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nthen.tags = [""]\n',
        "rules.toml:3 rule 'a': then.tags: an empty tag is no tag; remove it",
    ),
    (
        '[[rule]]\nid = "a"\nthen.related_system = ""\n',
        "rules.toml:3 rule 'a': then.related_system: an empty related system names nothing; "
        "remove it",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.hours = ["25-3"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.hours.0: hours '25-3': a range starts at an hour from 0 "
        "to 23 and ends at one from 0 to 24 ('18-9', '9-18', '0-24')",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.attachment_types = ["log"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.attachment_types: attachment type 'log' must be an "
        "extension ('.log') or a MIME type ('image/png', 'image/*')",
    ),
    (
        '[due]\nP1 = "one day"\n',
        "rules.toml:2: due.P1: duration 'one day' is not like '4h', '1d', '3d' or '1d 4h'",
    ),
    (
        '[due.business_hours]\nstart = "18:00"\nend = "09:00"\n',
        "rules.toml:1: due.business_hours: business hours end (09:00:00) must be after start "
        "(18:00:00)",
    ),
    (
        "[groups]\nl1 = []\n",
        "rules.toml:2: groups.l1: the group has no members; list at least one address",
    ),
    (
        "version = 2\n",
        "rules.toml:1: version: Input should be 1",
    ),
    (
        '[[rule]\nid = "a"\n',
        "rules.toml: not valid TOML: Expected ']]' at the end of an array declaration "
        "(at line 1, column 7)",
    ),
]


#: The line is the one of the key that is wrong, however the key is written; the rule's (or the
#: table's) header when no key line names it; none when the rule has no line of its own.
WHERE_THE_KEY_IS = [
    (  # a dotted key; a comment that mentions the key is not it
        '[[rule]]\nid = "a"\n# then.priority = "P1" was the old one\nthen.tags = ["t"]\n'
        'then.priority = "P9"\n',
        "rules.toml:5 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (  # under [rule.then], in the second rule
        '[[rule]]\nid = "a"\n[rule.then]\ntags = ["t"]\n\n[[rule]]\nid = "b"\n[rule.when]\n'
        'keywords = ["x"]\n[rule.then]\ntags = ["t"]\npriority = "P9"\n',
        "rules.toml:12 rule 'b': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (  # in an inline table
        '[[rule]]\nid = "a"\nthen = { tags = ["t"], priority = "P9" }\n',
        "rules.toml:3 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (  # quoted keys, spaces around the dot
        '[[rule]]\nid = "a"\n"then" . \'priority\' = "P9"\n',
        "rules.toml:3 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (  # the 3rd element of a multi-line array: the line where the array starts
        '[[rule]]\nid = "a"\nthen.tags = ["t"]\nwhen.keywords = [\n  "x",\n  "y",\n  "",\n]\n',
        "rules.toml:4 rule 'a': when.keywords: an empty keyword would match everything; remove it",
    ),
    (  # `=` and `[` inside strings, key-like lines inside a multi-line string
        '[[rule]]\nid = "a"\ndescription = """\nthen.priority = "P1"\n[rule.when]\n"""\n'
        'then.related_system = "a = [b"\nthen.priority = "P9"\n',
        "rules.toml:8 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (  # the second of an array of tables
        '[[rule]]\nid = "a"\n[[rule.then.collaborators]]\nperson = "ops@example.com"\n'
        '[[rule.then.collaborators]]\nperson = ""\n',
        "rules.toml:6 rule 'a': then.collaborators.1.person: an empty person names no one; "
        "give an address ('li@example.com') or remove it",
    ),
    (
        '[groups]\nl1 = ["a@example.com"]\n\n[[rule]]\nid = "a"\nthen.tags = ["t"]\n'
        'then.collaborators = [\n  "x@example.com",\n  { group = "l9", strategy = "round_robin" },'
        "\n]\n",
        "rules.toml:7 rule 'a': group 'l9' is not defined under [groups] (defined: l1)",
    ),
    (
        'version = 1\n\n[defaults]\nproblem_type = "untriaged"\npriority = "P9"\n',
        "rules.toml:5: defaults.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (
        'defaults.priority = "P9"\n\n[[rule]]\nid = "a"\nthen.tags = ["t"]\n',
        "rules.toml:1: defaults.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (
        '[due.business_hours]\nstart = "09:00"\n[defaults]\npriority = "P9"\n',
        "rules.toml:4: defaults.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (
        'due = { P1 = "one day" }\n',
        "rules.toml:1: due.P1: duration 'one day' is not like '4h', '1d', '3d' or '1d 4h'",
    ),
    (
        '[due]\nP0 = "2h"\n\n[due.business_hours]\nend = "18:00"\nstart = "nine"\n',
        "rules.toml:6: due.business_hours.start: Input should be in a valid time format, input "
        "is too short",
    ),
    (
        '[groups]\nl1 = ["a@example.com"]\nl2 = "b@example.com"\n',
        "rules.toml:3: groups.l2: Input should be a valid list",
    ),
    (  # the reason is about one group: its line
        '[groups]\nl1 = ["a@example.com"]\nl2 = []\n',
        "rules.toml:3: groups.l2: the group has no members; list at least one address",
    ),
    (  # rules as an array of inline tables: no line can be told
        'rule = [{ id = "a", then = { priority = "P9" } }]\n',
        "rules.toml rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
    (
        'rule = [\n  { id = "a", then = { tags = ["t"] } },\n'
        '  { id = "a", then = { tags = ["u"] } },\n]\n',
        "rules.toml rule 'a': the id is used twice (first by rule #1); ids must be unique "
        "because every log entry names its rule",
    ),
]


def test_every_form_of_sender_loads() -> None:
    rules = parse_rules(
        '[[rule]]\nid = "a"\nwhen.sender = ["ceo@example.com", "@vip.example.com", '
        '"partner.org", "李@例子.中国"]\nthen.tags = ["t"]\n',
        source="rules.toml",
    )
    assert rules.rules[0].when.sender == [
        "ceo@example.com",
        "@vip.example.com",
        "partner.org",
        "李@例子.中国",
    ]


@pytest.mark.parametrize(("text", "message"), [*BAD_FILES, *WHERE_THE_KEY_IS])
def test_a_bad_file_is_refused_with_the_exact_reason_and_the_keys_line(
    text: str, message: str
) -> None:
    assert refusal(text) == message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: the rules file does not exist"


# Encodings: rules files are UTF-8 TOML ------------------------------------------------------
SIMPLIFIED = (
    '# 规则\nversion = 1\n\n[[rule]]\nid = "outage"\nwhen.keywords = ["宕机", "瘫痪"]\n'
    'then.priority = "P0"\n'
)
TRADITIONAL = (
    'version = 1\n\n[[rule]]\nid = "outage"\n'
    'when.keywords = ["當機", "資料不一致", "帳號無法登入"]\nthen.priority = "P0"\n'
)
SAVE_AS_UTF8 = (
    'and rules files must be UTF-8; save it as UTF-8 (in Notepad: "Save As", Encoding "UTF-8")'
)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_utf8_file_with_a_byte_order_mark_loads(tmp_path: Path, newline: str) -> None:
    # Windows Notepad saves UTF-8 with a byte-order mark (and CRLF line ends).
    path = tmp_path / "rules.toml"
    path.write_bytes(SIMPLIFIED.replace("\n", newline).encode("utf-8-sig"))
    assert load_rules(path).rules[0].when.keywords == ["宕机", "瘫痪"]
    assert parse_rules("\ufeff" + SIMPLIFIED, source="rules.toml").rules[0].id == "outage"


def test_a_byte_order_mark_does_not_move_the_lines_of_errors(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes('[[rule]]\nid = "a"\nthen.priority = "P3"\n'.encode("utf-8-sig"))
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value) == (
        f"{path}:3 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (  # the keywords' line: column 19 is the first Chinese character
            SIMPLIFIED.replace("# 规则\n", "").encode("gbk"),
            "5: column 19 is not UTF-8 (byte 0xe5): the file looks saved as GBK (GB18030), ",
        ),
        (  # a comment is text too
            SIMPLIFIED.encode("gb18030"),
            "1: column 3 is not UTF-8 (byte 0xb9): the file looks saved as GBK (GB18030), ",
        ),
        (  # Traditional characters in GBK are GBK still
            TRADITIONAL.encode("gbk"),
            "5: column 19 is not UTF-8 (byte 0xae): the file looks saved as GBK (GB18030), ",
        ),
        (
            TRADITIONAL.encode("big5"),
            "5: column 19 is not UTF-8 (byte 0xb7): the file looks saved as Big5, ",
        ),
        (  # a byte-order mark, then GBK
            b"\xef\xbb\xbf" + SIMPLIFIED.encode("gbk"),
            "1: column 3 is not UTF-8 (byte 0xb9): the file looks saved as GBK (GB18030), ",
        ),
        (  # neither: no guess
            '[[rule]]\nid = "a"\nwhen.keywords = ["café"]\nthen.tags = ["t"]\n'.encode("latin-1"),
            "3: column 22 is not UTF-8 (byte 0xe9), ",
        ),
        (  # Notepad's "Unicode"
            SIMPLIFIED.encode("utf-16"),
            ': the file is saved as UTF-16 (Notepad\'s "Unicode"), ',
        ),
    ],
    ids=["gbk", "gbk-comment", "gbk-traditional", "big5", "bom-then-gbk", "latin-1", "utf-16"],
)
def test_a_file_not_in_utf8_is_refused_with_where_and_what_it_looks_like(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(data)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    where = "" if message.startswith(":") else ":"
    assert str(caught.value) == f"{path}{where}{message}{SAVE_AS_UTF8}"


def test_the_column_is_where_the_other_encoding_starts_not_where_utf8_gave_up(
    tmp_path: Path,
) -> None:
    # 宕 in GBK is e5 b4 and 机 bb fa: e5 b4 bb passes for one UTF-8 character, the decoder
    # stops at fa (column 7); the text that is not UTF-8 starts at e5, column 6.
    path = tmp_path / "rules.toml"
    path.write_bytes('x = "宕机"\n'.encode("gbk"))
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}:1: column 6 is not UTF-8 (byte 0xe5)")


YAML_RULES = "# our rules\nversion: 1\nrule:\n  - id: outage\n    then:\n      priority: P0\n"
HOW_TOML = (
    "write the rules in TOML, as docs/rules.md shows (`key = value`, a `[[rule]]` table for "
    "each rule)"
)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_a_yaml_file_is_refused_as_yaml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"rules{suffix}"
    path.write_text(YAML_RULES, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(caught.value) == (
        f"{path}: rules files are TOML; YAML is not supported: {HOW_TOML}, in a file named .toml"
    )


@pytest.mark.parametrize(
    ("text", "line", "statement"),
    [
        (YAML_RULES, 2, "version: 1"),
        ("---\nrule:\n  - id: a\n", 1, "---"),
        ("\nrule:\n  - id: a\n", 2, "rule:"),
        ("- id: a\n  then: {priority: P0}\n", 1, "- id: a"),
        ("version: 1\r\nrule:\r\n", 1, "version: 1"),
    ],
)
def test_yaml_content_is_refused_as_yaml_whatever_the_files_name(
    text: str, line: int, statement: str
) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source="rules.toml")
    assert str(caught.value) == (
        f"rules.toml:{line}: rules files are TOML; YAML is not supported: {statement!r} is YAML; "
        f"{HOW_TOML}"
    )


def test_toml_with_a_mistake_further_down_is_not_taken_for_yaml() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules("version = 1\nrule: x\n", source="rules.toml")
    assert str(caught.value) == (
        "rules.toml: not valid TOML: Expected '=' after a key in a key/value pair "
        "(at line 2, column 5)"
    )


# Every problem of a file is shown, each with its line ----------------------------------------
ALL_PROBLEMS = [
    (  # three in one rule, in the file's order
        '[[rule]]\nid = "a"\nthen.priority = "P3"\nwhen.keywords = ["x", ""]\nwhen.regex = ["("]\n',
        "rules.toml rule 'a': 3 problems:\n"
        "  rules.toml:3 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'\n"
        "  rules.toml:4 rule 'a': when.keywords: an empty keyword would match everything; "
        "remove it\n"
        "  rules.toml:5 rule 'a': when.regex: regular expression '(' does not compile: "
        "missing ), unterminated subpattern at position 0",
    ),
    (  # in [defaults], two rules, an id used twice by a rule with its own problem
        '[defaults]\npriority = "P9"\n\n[[rule]]\nid = "a"\nthen.priority = "P3"\n\n'
        '[[rule]]\nid = "a"\nthen.tags = ["t"]\n\n[[rule]]\nid = "b"\nthen.tags = [""]\n',
        "rules.toml: 4 problems:\n"
        "  rules.toml:2: defaults.priority: Input should be 'P0', 'P1' or 'P2'\n"
        "  rules.toml:6 rule 'a': then.priority: Input should be 'P0', 'P1' or 'P2'\n"
        "  rules.toml:9 rule 'a': the id is used twice (first by rule #1); ids must be unique "
        "because every log entry names its rule\n"
        "  rules.toml:14 rule 'b': then.tags: an empty tag is no tag; remove it",
    ),
    (  # an unknown group beside another problem of the file
        '[defaults]\npriority = "P9"\n[groups]\nl1 = ["a@example.com"]\n[[rule]]\nid = "a"\n'
        'then.owner = { group = "l9", strategy = "round_robin" }\n',
        "rules.toml: 2 problems:\n"
        "  rules.toml:2: defaults.priority: Input should be 'P0', 'P1' or 'P2'\n"
        "  rules.toml:7 rule 'a': group 'l9' is not defined under [groups] (defined: l1)",
    ),
    (  # a problem with no line of its own comes last
        'rule = [{ id = "x", then = { priority = "P9" } }]\n[defaults]\npriority = "P9"\n',
        "rules.toml: 2 problems:\n"
        "  rules.toml:3: defaults.priority: Input should be 'P0', 'P1' or 'P2'\n"
        "  rules.toml rule 'x': then.priority: Input should be 'P0', 'P1' or 'P2'",
    ),
]


@pytest.mark.parametrize(("text", "message"), ALL_PROBLEMS)
def test_every_problem_is_shown_each_with_its_line(text: str, message: str) -> None:
    assert refusal(text) == message


def test_an_unknown_group_is_not_reported_when_groups_itself_is_wrong() -> None:
    # Which groups exist cannot be told: only the problem of [groups] is shown.
    with pytest.raises(RulesError) as caught:
        parse_rules(
            '[groups]\nl1 = []\n[[rule]]\nid = "a"\n'
            'then.owner = { group = "l9", strategy = "round_robin" }\n',
            source="rules.toml",
        )
    assert str(caught.value) == (
        "rules.toml:2: groups.l1: the group has no members; list at least one address"
    )


# People a rule assigns are told by mail: each is an email address ------------------------------
NOT_AN_ADDRESS = (
    "is not an email address: people are told of their cases by mail, so write their address, "
    "like 'li@example.com' (ASCII, no display name)"
)
PEOPLE_WHO_ARE_NOT_ADDRESSES = [
    (
        '[groups]\nl1 = ["li@example.com", "not an address"]\n',
        f"rules.toml:2: groups.l1.1: 'not an address' {NOT_AN_ADDRESS}",
    ),
    (
        '[groups]\nl1 = ["li@example.com"]\nops = [\n  "ops@example.com",\n  "wang",\n]\n',
        f"rules.toml:3: groups.ops.1: 'wang' {NOT_AN_ADDRESS}",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = "li"\n',
        f"rules.toml:3 rule 'a': then.owner.person: 'li' {NOT_AN_ADDRESS}",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = { person = "li@example" }\n',
        f"rules.toml:3 rule 'a': then.owner.person: 'li@example' {NOT_AN_ADDRESS}",
    ),
    (
        '[[rule]]\nid = "a"\nthen.collaborators = ["ops@example.com", "运维值班"]\n',
        f"rules.toml:3 rule 'a': then.collaborators.1.person: '运维值班' {NOT_AN_ADDRESS}",
    ),
    (  # the notices' mailer writes to ASCII addresses only
        '[[rule]]\nid = "a"\nthen.owner = "李@例子.中国"\n',
        f"rules.toml:3 rule 'a': then.owner.person: '李@例子.中国' {NOT_AN_ADDRESS}",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = " li@example.com"\n',
        "rules.toml:3 rule 'a': then.owner.person: ' li@example.com' is not a plain email "
        "address: write the address alone, 'li@example.com'",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = "Li Lei <li@example.com>"\n',
        "rules.toml:3 rule 'a': then.owner.person: 'Li Lei <li@example.com>' is not a plain "
        "email address: write the address alone, 'li@example.com'",
    ),
    (
        '[groups]\nl1 = ["li@example.com", "Li@Example.com"]\n',
        "rules.toml:2: groups.l1: the group lists 'Li@Example.com' twice; list each person once",
    ),
]


@pytest.mark.parametrize(("text", "message"), PEOPLE_WHO_ARE_NOT_ADDRESSES)
def test_a_person_who_is_not_an_email_address_is_refused(text: str, message: str) -> None:
    assert refusal(text) == message


GOOD_ADDRESSES = [
    "li@example.com",
    "li.lei+support@mail.example.com.cn",
    "ops-oncall@example-corp.io",
    "o'brien@example.com",
]
BAD_ADDRESSES = [
    "li",
    "li@example",
    "li@@example.com",
    "li lei@example.com",
    "li@example..com",
    "li@-example.com",
    "li@example.com.",
    ".li@example.com",
    "Li <li@example.com>",
    "李@例子.中国",
    "li@example.com\n",
]


@pytest.mark.parametrize("address", [*GOOD_ADDRESSES, *BAD_ADDRESSES])
def test_a_person_is_whatever_the_notices_mailer_writes_to(address: str) -> None:
    from mapping.outgoing_mail import InvalidAddress, validate_address

    try:
        validate_address(address)
        writable = address == address.strip()
    except InvalidAddress:
        writable = False
    text = f"[groups]\nl1 = [{json.dumps(address)}]\n"  # a JSON string is a TOML one
    try:
        parse_rules(text, source="rules.toml")
        loads = True
    except RulesError:
        loads = False
    assert loads == writable == (address in GOOD_ADDRESSES)


# Rules that would not do what they seem to ------------------------------------------------------
def _same_hour(start: int) -> str:
    return (
        f"hours '{start}-{start}' starts and ends at {start}:00, so whether it means no hour or "
        f"every hour cannot be told: write '0-24' for the whole day (or leave hours out), "
        f"'{start}-{start + 1}' for the hour from {start}:00"
    )


UNCLEAR_RULES = [
    (
        '[[rule]]\nid = "a"\nwhen.hours = ["18-9", "9-9"]\nthen.tags = ["t"]\n',
        f"rules.toml:3 rule 'a': when.hours.1: {_same_hour(9)}",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.hours = "0-0"\nthen.tags = ["t"]\n',
        f"rules.toml:3 rule 'a': when.hours.0: {_same_hour(0)}",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.hours = ["23 - 23"]\nthen.tags = ["t"]\n',
        f"rules.toml:3 rule 'a': when.hours.0: {_same_hour(23)}",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.hours = ["9-25"]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.hours.0: hours '9-25': a range starts at an hour from 0 "
        "to 23 and ends at one from 0 to 24 ('18-9', '9-18', '0-24')",
    ),
    (
        '[[rule]]\nid = "a"\nwhen.hours = [9]\nthen.tags = ["t"]\n',
        "rules.toml:3 rule 'a': when.hours.0: hours 9 is not like '9-18' or '18-9' (a string)",
    ),
    (  # the line of the second of the two keys
        '[[rule]]\nid = "a"\nwhen.keywords = ["x"]\nthen.priority = "P1"\n'
        "then.raise_priority = true\n",
        "rules.toml:5 rule 'a': then.raise_priority: the rule sets both priority = \"P1\" and "
        "raise_priority = true: keep priority to set P1, or raise_priority to raise the "
        "priority the other rules decide by one level; not both",
    ),
    (
        '[[rule]]\nid = "a"\n[rule.then]\nraise_priority = true\npriority = "P0"\n',
        "rules.toml:4 rule 'a': then.raise_priority: the rule sets both priority = \"P0\" and "
        "raise_priority = true: keep priority to set P0, or raise_priority to raise the "
        "priority the other rules decide by one level; not both",
    ),
    (
        '[[rule]]\nid = "a"\nthen.owner = "li@example.com"\noverride = true\n',
        "rules.toml:4 rule 'a': override: override = true on a rule with no conditions replaces "
        "what every earlier rule decided, for every report: remove override (a rule without "
        "conditions then decides only what no earlier rule did), or give the rule a condition "
        "under [rule.when]",
    ),
    (  # disabled or not, and however few it decides
        '[[rule]]\nid = "a"\nenabled = false\noverride = true\noverride_manual = true\n'
        'then.tags = ["t"]\n',
        "rules.toml:4 rule 'a': override: override = true on a rule with no conditions replaces "
        "what every earlier rule decided, for every report: remove override (a rule without "
        "conditions then decides only what no earlier rule did), or give the rule a condition "
        "under [rule.when]",
    ),
]


@pytest.mark.parametrize(("text", "message"), UNCLEAR_RULES)
def test_a_rule_that_would_not_do_what_it_seems_is_refused(text: str, message: str) -> None:
    assert refusal(text) == message


def test_what_stays_allowed() -> None:
    rules = parse_rules(
        '[[rule]]\nid = "whole-day"\nwhen.hours = ["0-24"]\nthen.tags = ["t"]\n'
        '[[rule]]\nid = "to-midnight"\nwhen.hours = ["18-0", "18-24"]\nthen.tags = ["t"]\n'
        '[[rule]]\nid = "catch-all"\nthen.owner = "li@example.com"\n'
        '[[rule]]\nid = "vip"\nwhen.sender = ["@vip.example.com"]\nthen.raise_priority = true\n'
        "override = true\n"
        '[[rule]]\nid = "fixed"\nwhen.keywords = ["x"]\nthen.priority = "P1"\n'
        "then.raise_priority = false\n",
        source="rules.toml",
    )
    whole_day, to_midnight = rules.rules[0].when.hours[0], rules.rules[1].when.hours
    assert all(whole_day.contains(hour) for hour in range(24))
    assert [hour for hour in range(24) if to_midnight[0].contains(hour)] == [18, 19, 20, 21, 22, 23]
    assert [hour for hour in range(24) if to_midnight[1].contains(hour)] == [18, 19, 20, 21, 22, 23]
    assert rules.rules[2].when.is_empty and not rules.rules[3].when.is_empty
