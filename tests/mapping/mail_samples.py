"""Case records and a sender identity for the outgoing-mail tests: one full, one minimal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from mapping.case import (
    Case,
    CaseSource,
    CaseStatus,
    Language,
    LogKind,
    Person,
    Priority,
    ProblemType,
    SourceKind,
)
from mapping.outgoing_mail import SenderIdentity

NOW = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
SUBMITTER_NAME = "张三丰"
USER_MESSAGE_ID = "CAF+original-report.1234@mail.example.cn"

IDENTITY = SenderIdentity(
    from_address="support@example.cn",
    from_name="技术支持 Support",
    message_id_domain="casedesk.example.cn",
    signing_secret=SecretStr("test-signing-secret"),
)


def full_case(language: str = "zh", number: str = "202405-001") -> Case:
    """Every field of the case record filled, with markup and quotes to escape."""
    case = Case(
        number=number,
        subject="登录提示'验证码失效' <b>urgent</b> & more",
        problem_type=ProblemType.SYSTEM_FAULT,
        priority=Priority.P1,
        status=CaseStatus.IN_PROGRESS,
        submitter=Person(name=SUBMITTER_NAME, department="销售部", email="zhang.sf@example.cn"),
        description=(
            "登录系统时提示'验证码失效'，重试3次仍无法进入。\n"
            "使用Chrome浏览器，系统版本V2.1 <script>alert(1)</script>"
        ),
        environment={"浏览器": "Chrome 124", "系统版本": "V2.1"},
        initial_analysis="疑似验证码服务接口超时",
        owner="李工",
        collaborators=["研发王*", "运维赵*"],
        solution="运维清理服务器缓存后，验证码接口响应时间降至1秒内",
        related_knowledge=["知识库-系统故障-验证码模块问题处理指南"],
        tags=["登录故障"],
        related_system="统一登录",
        due_at=NOW + timedelta(hours=20),
        language=Language(language),
        source=CaseSource(kind=SourceKind.EMAIL, message_id=USER_MESSAGE_ID),
        created_at=NOW - timedelta(hours=5),
        updated_at=NOW,
    )
    case.log(
        LogKind.FINDING, "查看验证码服务日志，发觉接口响应时间超5秒", at=NOW - timedelta(hours=4)
    )
    case.log(
        LogKind.PLAN, "临时：重启验证码服务；长期：增加缓存清理任务", at=NOW - timedelta(hours=3)
    )
    return case


def minimal_case(language: str = "zh", number: str = "202405-002") -> Case:
    """Only what a case must have."""
    return Case(
        number=number,
        subject="x",
        submitter=Person(),
        description="",
        language=Language(language),
        source=CaseSource(kind=SourceKind.JIRA),
        created_at=NOW,
        updated_at=NOW,
    )
