"""`casedesk cases list|show`: the record as a person reads it, names masked, local times."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.store import CaseStore
from flows.case_view import render_case
from flows.cli import main
from mapping.case import CaseStatus, Feedback, FeedbackOutcome, LogKind
from tests.mapping.test_case import make_case

T0 = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


def full_case():  # type: ignore[no-untyped-def]
    case = make_case(
        owner="技术支持工程师A",
        collaborators=["研发工程师", "运维专员"],
        initial_analysis="疑似验证码服务接口超时",
        solution="清理服务器缓存后，验证码接口响应时间降至1秒内",
        feedback=Feedback(outcome=FeedbackOutcome.RESOLVED, words="已确认登录正常", at=T0),
        archive_date=date(2024, 5, 20),
        related_knowledge=["知识库-系统故障-验证码模块问题处理指南"],
        tags=["登录故障"],
        status=CaseStatus.RESOLVED,
    )
    case.log(LogKind.FINDING, "查看验证码服务日志，发觉接口响应时间超5秒", at=T0, actor="A")
    return case


def test_every_field_of_the_record_in_the_teams_time() -> None:
    text = render_case(full_case(), ZoneInfo("Asia/Shanghai"))
    for expected in (
        "案例编号 case number: 202405-001",
        "处理状态 status: 已解决 / resolved, awaiting feedback",
        "提交人 submitter: 张* (销售部) z***@example.com",
        "初步分析 initial analysis: 疑似验证码服务接口超时",
        "协作成员 collaborators: 研发工程师, 运维专员",
        "用户反馈 user feedback: 已解决 / resolved: 已确认登录正常",
        "归档日期 archive date: 2024-05-20",
        "1. 2024-05-20 14:00 [finding] A: 查看验证码服务日志",
    ):
        assert expected in text
    assert "张伟" not in text and "zhang.wei@" not in text
    assert "2024-05-20 08:00" in render_case(full_case(), ZoneInfo("Europe/Berlin"))


def test_cases_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "casedesk.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path}/cases.db"\ntimezone = "Asia/Shanghai"\n',
        encoding="utf-8",
    )
    with CaseStore.open(f"sqlite:///{tmp_path}/cases.db") as store, store.transaction() as tx:
        case = full_case()
        case.number = None
        tx.add_case(case, month=date(2024, 5, 1))
    assert main(["cases", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == [
        "number",
        "status",
        "priority",
        "type",
        "owner",
        "submitter",
        "subject",
    ]
    assert listed[2].split()[:3] == ["202405-001", "已解决", "P2"]
    assert main(["cases", "show", "202405-001", "--config", str(config)]) == 0
    assert "1. 2024-05-20 14:00 [finding]" in capsys.readouterr().out
