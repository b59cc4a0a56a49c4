"""`casedesk rules explain KEY`: an issue read from Jira (the fake Jira on loopback, every request
and answer checked against Atlassian's OpenAPI descriptions), explained; nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from flows.cli import main
from tests.support.fake_jira import FakeJira

Flavor = Literal["cloud", "dc"]

JIRA_RULES = """
[[rule]]
id = "billing-highest"
when.jira_component = ["Billing"]
when.jira_priority = ["Highest"]
then.related_system = "billing"
then.priority = "P1"
then.problem_type = "data_anomaly"

[[rule]]
id = "vip"
when.jira_label = ["vip"]
then.raise_priority = true

[[rule]]
id = "other-project"
when.jira_project = ["OPS"]
then.tags = ["ops"]
"""


@pytest.fixture(params=["cloud", "dc"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    flavor: Flavor = request.param
    with FakeJira(flavor, validate=True, time_zone="Asia/Shanghai") as served:
        yield served
        assert served.contract_violations == []
        assert served.request_violations == []


@pytest.fixture
def folder(fake: FakeJira, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A team's folder: casedesk.toml naming the fake Jira (the token from the environment, as
    docs/jira.md advises) and a rules file for Jira's fields."""
    user = f'user = "{fake.user}"\n' if fake.flavor == "cloud" else ""
    (tmp_path / "casedesk.toml").write_text(
        f'[jira]\nenabled = true\nurl = "{fake.url}"\nflavor = "{fake.flavor}"\n{user}'
        'project = "SUP"\ntime_zone = "Asia/Shanghai"\n',
        encoding="utf-8",
    )
    (tmp_path / "jira-rules.toml").write_text(JIRA_RULES, encoding="utf-8")
    monkeypatch.setenv("CASEDESK_JIRA__TOKEN", fake.token)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rules", "explain", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_issue_is_explained_by_the_shipped_rules_and_nothing_is_written(
    fake: FakeJira, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issue = fake.add_issue(
        "生产环境宕机",
        description="今天上午生产环境宕机，所有用户无法登录",
        components=["Web"],
        labels=["customer"],
    )
    before = sorted(path.name for path in folder.iterdir())
    fake.reset_counts()

    code, out, err = explain(capsys, issue.key)

    assert (code, err) == (0, "")
    assert "subject: 生产环境宕机" in out
    assert "jira: project SUP, components Web, labels customer, priority Medium" in out
    assert "  outage-keywords: matched '宕机' and '所有用户'" in out
    assert "  P0 by rule outage-keywords: matched '宕机' and '所有用户'" in out
    assert "  type: 系统故障 (system_fault)" in out
    assert "  priority: P0" in out
    # Read, never written: no store, no file, and only reads of Jira (the issue, its fields).
    assert sorted(path.name for path in folder.iterdir()) == before
    assert dict(fake.requests) == {("GET", f"/rest/api/{fake.api_version}/issue/{issue.key}"): 1}


def test_jira_fields_decide_and_a_persons_triage_is_kept(
    fake: FakeJira, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = fake.add_issue(
        "Invoice totals differ", priority="Highest", components=["Billing"], labels=["vip"]
    )
    code, out, _ = explain(capsys, fresh.key, "--rules", "jira-rules.toml")
    assert code == 0
    why = "matched Jira component 'Billing' and Jira priority 'Highest'"
    # Each matching rule says what it decided.
    assert (
        f"  billing-highest: {why} -> type, priority, related system\n"
        "  vip: matched Jira label 'vip' -> priority raised\n\n"
    ) in out
    assert f"  type 数据异常 (data_anomaly) by rule billing-highest: {why}" in out
    assert f"  related system billing by rule billing-highest: {why}" in out
    assert "  P0 by rule vip: raised from P1; matched Jira label 'vip'" in out
    assert "  priority: P0\n" in out and "  related system: billing\n" in out
    assert "other-project" not in out  # an OPS rule, and this is SUP

    mia = fake.people[1]
    triaged = fake.add_issue(
        "Invoice totals differ", priority="Highest", components=["Billing"], assignee=mia
    )
    code, out, _ = explain(capsys, triaged.key, "--rules", "jira-rules.toml")
    assert code == 0
    assert "priority Highest, triaged by a person (what they decided stands)" in out
    # Mia's triage stands: Jira's Highest is P0 (the default priority map), she owns it, no
    # rule's P1 or related system; a Task maps to no type, so the rule's type fills it in.
    note = "type only: triaged by a person in Jira, who set no type"
    assert f"  billing-highest: {why}  [{note}]" in out
    assert "  owner: mia@example.com (triaged by a person in Jira)" in out
    assert "  P0 (triaged by a person in Jira)" in out
    assert "  type: 数据异常 (data_anomaly)\n  priority: P0\n" in out
    assert "  related system: -\n" in out
    assert "  status: new (waiting for the dispatcher)" in out  # not triage: Mia owns it


def test_an_unknown_key_is_a_clear_error(
    fake: FakeJira, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = explain(capsys, "SUP-999")
    assert code == 1 and out == ""
    assert err == (
        f"error: Jira at {fake.url}: GET issue/SUP-999 not found: Issue does not exist or you do "
        "not have permission to see it.\n"
    )
    assert fake.token not in err


def test_without_jira_the_error_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = explain(capsys, "SUP-12")
    assert code == 1 and out == ""
    assert err == (
        "error: invalid settings at 'jira': Jira is not enabled, so SUP-12 cannot be read: set "
        "enabled = true and the connection under [jira] (docs/jira.md), or pass an .eml file\n"
    )
