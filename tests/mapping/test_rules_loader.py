"""Loading rules files: a bad one is refused with its file, line, rule id and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapping.errors import RulesError
from mapping.rules import DEFAULT_RULES_PATH, load_rules, parse_rules
from mapping.rules.model import Strategy


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
        "rules.toml:1: groups: group 'l1' lists an empty person, who names no one; remove it",
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
        "rules.toml:3 rule 'a': when.hours.start: Input should be less than or equal to 23",
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
        "rules.toml:1: groups: group 'l1' has no members",
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
    (  # the reason is about [groups] as a whole: its header
        '[groups]\nl1 = ["a@example.com"]\nl2 = []\n',
        "rules.toml:1: groups: group 'l2' has no members",
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
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source="rules.toml")
    assert str(caught.value) == message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: the rules file does not exist"
