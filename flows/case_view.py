"""A case record as a person reads it: the fields of the team's record, in its order."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from mapping.case import Case

__all__ = ["render_case"]


def render_case(case: Case, zone: ZoneInfo) -> str:
    """Every field of the team's case record, times in the team's time zone."""

    def when(value: object) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "-"  # type: ignore[attr-defined]

    feedback = "-"
    if case.feedback:
        outcome = case.feedback.outcome
        feedback = f"{outcome.label_zh} / {outcome.label_en}: {case.feedback.words}"
    rows = [
        ("案例编号 case number", case.number or "-"),
        ("问题类型 problem type", f"{case.problem_type.label_zh} / {case.problem_type.label_en}"),
        ("优先级 priority", f"{case.priority.label_zh} / {case.priority.label_en}"),
        ("处理状态 status", f"{case.status.label_zh} / {case.status.label_en}"),
        (
            "提交人 submitter",
            f"{case.submitter.masked} {case.submitter.masked_email or ''}".strip(),
        ),
        ("主题 subject", case.subject),
        ("问题描述 description", case.description),
        ("初步分析 initial analysis", case.initial_analysis_text),
        ("处理负责人 owner", case.owner or "-"),
        ("协作成员 collaborators", ", ".join(case.collaborators) or "-"),
        ("解决方案 solution", case.solution or "-"),
        ("用户反馈 user feedback", feedback),
        ("归档日期 archive date", case.archive_date.isoformat() if case.archive_date else "-"),
        ("关联知识库 related knowledge", ", ".join(case.related_knowledge) or "-"),
        ("标签 tags", ", ".join(case.tags) or "-"),
        ("关联系统 related system", case.related_system or "-"),
        ("预计解决 due", when(case.due_at)),
        (
            "来源 source",
            f"{case.source.kind.value} {case.source.mailbox or case.source.jira_key or ''}",
        ),
        ("语言 language", case.language.value),
        ("创建 created", when(case.created_at)),
        ("更新 updated", when(case.updated_at)),
    ]
    lines = [f"{label}: {value}" for label, value in rows]
    if case.attachments:
        lines.append("附件 attachments:")
        lines += [f"  {a.filename} ({a.content_type}, {a.size} bytes)" for a in case.attachments]
    lines.append("处理过程记录 process log:")
    for number, entry in enumerate(case.process_log, start=1):
        lines.append(
            f"  {number}. {when(entry.at)} [{entry.kind.value}] {entry.actor}: {entry.text}"
        )
    return "\n".join(lines)
