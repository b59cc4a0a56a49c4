"""The shipped rule set (`mapping/rules/default_rules.toml`) over reports in Simplified Chinese,
Traditional Chinese and English: the type, priority and tags of each, the rules that decide
them, and each keyword."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mapping.case import Priority, ProblemType
from mapping.rules import ReportFacts, RuleEngine, load_rules

ZONE = ZoneInfo("Asia/Shanghai")
# A Monday, 14:00 in Shanghai.
MONDAY_2PM = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


def facts(subject: str = "", body: str = "", **more: object) -> ReportFacts:
    return ReportFacts.model_validate(
        {"subject": subject, "body": body, "received_at": MONDAY_2PM, **more}
    )


@pytest.fixture(scope="module")
def default_engine() -> RuleEngine:
    return RuleEngine(load_rules(), ZONE)


# The default rule set over sample reports --------------------------------------------------
SAMPLES = [
    # (subject, body, type, priority, tags)
    (
        "登录提示验证码失效",
        "登录系统时提示'验证码失效'，重试3次仍无法进入，使用Chrome浏览器，系统版本V2.1",
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        ["登录故障"],
    ),
    (
        "生产环境宕机",
        "今天上午生产环境宕机，所有用户都进不去",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        [],
    ),
    (
        "报表没有入口",
        "我没有权限，看不到报表的入口",
        ProblemType.PERMISSION,
        Priority.P2,
        ["权限配置"],
    ),
    (
        "订单数据不一致",
        "ERP 和 CRM 的订单数据不一致，同步延迟大概两小时",
        ProblemType.DATA_ANOMALY,
        Priority.P2,
        ["数据同步"],
    ),
    ("请问如何导出报表", "怎么把月报导出成 Excel？", ProblemType.HOW_TO, Priority.P2, []),
    ("功能建议", "建议增加批量导入功能，希望能支持 CSV", ProblemType.IMPROVEMENT, Priority.P2, []),
    (
        "Cannot log in",
        "Login fails with error 'captcha expired' after 3 tries.",
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        ["登录故障"],
    ),
    (
        "Production outage",
        "The order service is down for all users since 9:00.",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        [],
    ),
    (
        "Access denied on reports",
        "I get access denied.",
        ProblemType.PERMISSION,
        Priority.P2,
        ["权限配置"],
    ),
    ("How to export?", "How do I export the monthly report?", ProblemType.HOW_TO, Priority.P2, []),
    (
        "Feature request",
        "It would be nice to filter by region.",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        [],
    ),
    ("URGENT: question", "How can I change my signature?", ProblemType.HOW_TO, Priority.P1, []),
    ("你好", "麻烦看一下附件", ProblemType.UNTRIAGED, Priority.P2, []),
    ("Hello", "See attached.", ProblemType.UNTRIAGED, Priority.P2, []),
]


@pytest.mark.parametrize(("subject", "body", "problem_type", "priority", "tags"), SAMPLES)
def test_default_rules_over_sample_reports(
    default_engine: RuleEngine,
    subject: str,
    body: str,
    problem_type: ProblemType,
    priority: Priority,
    tags: list[str],
) -> None:
    outcome = default_engine.evaluate(facts(subject, body))
    assert (outcome.problem_type, outcome.priority, outcome.tags) == (problem_type, priority, tags)
    assert outcome.needs_triage is (problem_type is ProblemType.UNTRIAGED)


# Traditional Chinese (Big5 mail, Taiwan and Hong Kong users), the bare 建议 / 优化, and a fault
# that also suggests something. Each row names the rules that decide its type and priority
# (None: the default), so a missing or mistyped keyword fails it.
TRADITIONAL_AND_BARE = [
    # (subject, body, type, priority, type decided by, priority decided by, tags)
    (
        "生產環境當機",
        "生產環境當機，所有用戶無法登錄",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        "outage-keywords",
        "outage-keywords",
        ["登录故障"],
    ),
    (
        "系統癱瘓",
        "全部使用者都進不去",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        "outage-keywords",
        "outage-keywords",
        [],
    ),
    (
        "大面積故障",
        "服務不可用",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        "outage-keywords",
        "outage-keywords",
        [],
    ),
    (
        "生產環境報錯",
        "生產環境的訂單頁面打不開",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        "fault-keywords",
        "production-fault-traditional",
        [],
    ),
    (
        "生產環境",
        "生產環境無法存取，服務中斷",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        "fault-keywords",
        "production-fault-traditional",
        [],
    ),
    (
        "登入提示驗證碼失效",
        "登入系統時提示「驗證碼失效」，重試3次仍無法進入，使用Chrome瀏覽器",
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        "fault-keywords",
        "partial-fault",
        ["登录故障"],
    ),
    (
        "連線逾時",
        "打開頁面時連線逾時",
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        "fault-keywords",
        "partial-fault",
        [],
    ),
    ("App 閃退", "一打開就閃退", ProblemType.SYSTEM_FAULT, Priority.P2, "fault-keywords", None, []),
    (
        "伺服器當機",
        "早上九點起伺服器當機",
        ProblemType.SYSTEM_FAULT,
        Priority.P0,
        "outage-keywords",
        "outage-keywords",
        [],
    ),
    (
        "部分使用者",
        "部分使用者看不到訂單",
        ProblemType.UNTRIAGED,
        Priority.P1,
        None,
        "partial-fault",
        [],
    ),
    (
        "報表沒有入口",
        "我沒有權限，看不到報表的入口",
        ProblemType.PERMISSION,
        Priority.P2,
        "permission-keywords",
        None,
        ["权限配置"],
    ),
    (
        "開啟報表",
        "開啟報表時顯示拒絕存取",
        ProblemType.PERMISSION,
        Priority.P2,
        "permission-keywords",
        None,
        [],
    ),
    (
        "新同事",
        "請幫新同事開通帳號",
        ProblemType.PERMISSION,
        Priority.P2,
        "permission-keywords",
        None,
        [],
    ),
    (
        "訂單數據不一致",
        "ERP 和 CRM 的訂單數據不一致，同步延遲大概兩小時",
        ProblemType.DATA_ANOMALY,
        Priority.P2,
        "data-anomaly-keywords",
        None,
        ["数据同步"],
    ),
    (
        "報表資料不一致",
        "月報和日報的金額對不上",
        ProblemType.DATA_ANOMALY,
        Priority.P2,
        "data-anomaly-keywords",
        None,
        [],
    ),
    (
        "客戶資料",
        "昨天匯入的客戶資料遺失了",
        ProblemType.DATA_ANOMALY,
        Priority.P2,
        "data-anomaly-keywords",
        None,
        [],
    ),
    (
        "請問如何匯出報表",
        "怎麼把月報匯出成 Excel？",
        ProblemType.HOW_TO,
        Priority.P2,
        "how-to-keywords",
        None,
        [],
    ),
    (
        "怎麼設定",
        "郵件簽名要怎麼設定？",
        ProblemType.HOW_TO,
        Priority.P2,
        "how-to-keywords",
        None,
        [],
    ),
    ("簽名", "簽名在哪裡設定", ProblemType.HOW_TO, Priority.P2, "how-to-keywords", None, []),
    (
        "緊急：問題",
        "怎麼修改簽名？",
        ProblemType.HOW_TO,
        Priority.P1,
        "how-to-keywords",
        "urgent-in-subject",
        [],
    ),
    (
        "功能建議",
        "建議增加匯出功能，希望能支援 CSV",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-keywords",
        None,
        [],
    ),
    ("你好", "麻煩看一下附件", ProblemType.UNTRIAGED, Priority.P2, None, None, []),
    # The bare 建议 / 优化 (Simplified and Traditional).
    (
        "我有个建议",
        "导出的文件名最好带上日期",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-words",
        None,
        [],
    ),
    (
        "导出",
        "能否优化一下导出速度",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-words",
        None,
        [],
    ),
    (
        "改进建议",
        "首页的菜单层级太深",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-words",
        None,
        [],
    ),
    (
        "我有個建議",
        "匯出的檔名最好帶上日期",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-words",
        None,
        [],
    ),
    (
        "匯出",
        "能否優化一下匯出速度",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-words",
        None,
        [],
    ),
    # A fault report that also suggests something is still a fault: the fault words come
    # before the bare 建议 / 优化.
    (
        "登录报错",
        "登录时报错 500，建议尽快修复",
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        "fault-keywords",
        "partial-fault",
        ["登录故障"],
    ),
    (
        "登入報錯",
        "登入時報錯 500，建議盡快修復",
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        "fault-keywords",
        "partial-fault",
        ["登录故障"],
    ),
    (
        "App",
        "上次优化之后一打开就闪退",
        ProblemType.SYSTEM_FAULT,
        Priority.P2,
        "fault-keywords",
        None,
        [],
    ),
]


# Every Traditional (and Taiwan) keyword of the default set, written out again by hand: each
# one alone (with 生產環境 for the production rule) must trigger its rule.
TRADITIONAL_KEYWORDS = {
    "outage-keywords": "宕機 當機 癱瘓 全部用戶 全部使用者 所有用戶 所有使用者 核心業務 "
    "服務不可用 大面積",
    "production-fault-traditional": "故障 無法訪問 無法存取 打不開 報錯 中斷",
    "partial-fault": "部分用戶 部分使用者 無法 失敗 報錯 錯誤 異常 超時 逾時 打不開 登不進去 "
    "進不去 刷不出來 加載不出來 載入不出來 一直轉圈 一直在轉圈 沒反應 沒有反應 無反應",
    "urgent-in-subject": "緊急",
    "permission-keywords": "權限 沒有入口 無權 沒有訪問 沒有存取 拒絕訪問 拒絕存取 開通賬號 "
    "開通帳號 授權",
    "data-anomaly-keywords": "數據不一致 資料不一致 同步延遲 數據丟失 資料丟失 資料遺失 數據錯誤 "
    "資料錯誤 數據異常 資料異常 對不上 數據缺失 資料缺失 重複數據 重複資料",
    "improvement-keywords": "建議增加 建議新增 建議優化 優化建議 功能建議",
    "fault-keywords": "登錄 登入 驗證碼 報錯 無法訪問 無法存取 打不開 崩潰 閃退 錯誤 失敗 異常 "
    "超時 逾時 宕機 當機 登不進去 進不去 刷不出來 加載不出來 載入不出來 一直轉圈 一直在轉圈 沒反應 "
    "沒有反應 無反應 死機 當掉",
    "improvement-words": "建議 優化",
    "how-to-keywords": "怎麼 怎樣 請問 在哪裡 在哪裏 怎麼辦 操作步驟",
    "tag-login": "登錄 登入 驗證碼 密碼 登不進去",
    "tag-permission": "權限 授權",
}


@pytest.mark.parametrize(
    ("rule_id", "keyword"),
    [(rule_id, word) for rule_id, words in TRADITIONAL_KEYWORDS.items() for word in words.split()],
)
def test_each_traditional_keyword_triggers_its_rule(
    default_engine: RuleEngine, rule_id: str, keyword: str
) -> None:
    if rule_id == "urgent-in-subject":
        report = facts(keyword, "")
    elif rule_id == "production-fault-traditional":
        report = facts("", f"生產環境{keyword}")
    else:
        report = facts("", keyword)
    assert rule_id in [match.rule_id for match in default_engine.evaluate(report).matches]


# Colloquial ways to say a function is broken (登不上, 进不去, 用不了, 没反应, doesn't work…):
# system fault, and P1 when the words are of partial-fault's kind (can't, won't load, no
# response); the crash and freeze words (卡死, 死机, 當掉, crashing) are P2 like 闪退 and crash.
# "The site is down" is P0 with "system down". Left out on purpose: 看不到 (as often permission,
# missing data or a how-to: "怎么设置让别人看不到") and "blank page" ("How can I add a blank
# page?"). Each row names the rules that decide its type and priority (None: the default).
FAULT, P0, P1, P2 = ProblemType.SYSTEM_FAULT, Priority.P0, Priority.P1, Priority.P2
FK, PF, OUT = "fault-keywords", "partial-fault", "outage-keywords"
COLLOQUIAL_FAULTS = [
    # (subject, body, type, priority, type decided by, priority decided by, tags)
    # 登不上 / 登不上去 / 登不进去 (and the login tag)
    ("登不上系统", "从早上开始就登不上去了", FAULT, P1, FK, PF, ["登录故障"]),
    ("登不进去", "换了浏览器还是登不进去", FAULT, P1, FK, PF, ["登录故障"]),
    ("登不進去", "換了瀏覽器還是登不進去", FAULT, P1, FK, PF, ["登录故障"]),
    # 进不去 / 進不去, can't get in
    ("审批页面", "审批页面进不去", FAULT, P1, FK, PF, []),
    ("審批頁面", "審批頁面進不去", FAULT, P1, FK, PF, []),
    ("Can't get in", "I can't get in since this morning.", FAULT, P1, FK, PF, []),
    ("Portal", "We cannot get in to the portal.", FAULT, P1, FK, PF, []),
    # 用不了, doesn't work
    ("导出", "导出功能用不了了", FAULT, P1, FK, PF, []),
    ("匯出", "匯出功能用不了了", FAULT, P1, FK, PF, []),
    ("Export", "The export button doesn't work.", FAULT, P1, FK, PF, []),
    ("Export", "The export button does not work.", FAULT, P1, FK, PF, []),
    # 刷不出来, 加载不出来 / 載入不出來, 一直转圈, won't load
    ("月报", "月报页面刷不出来", FAULT, P1, FK, PF, []),
    ("月報", "月報頁面刷不出來", FAULT, P1, FK, PF, []),
    ("订单列表", "订单列表加载不出来", FAULT, P1, FK, PF, []),
    ("訂單列表", "訂單列表加載不出來", FAULT, P1, FK, PF, []),
    ("訂單列表", "訂單列表載入不出來", FAULT, P1, FK, PF, []),
    ("审批", "提交后页面一直在转圈", FAULT, P1, FK, PF, []),
    ("審批", "提交後頁面一直轉圈", FAULT, P1, FK, PF, []),
    ("Reports", "The monthly report won't load.", FAULT, P1, FK, PF, []),
    # 白屏 (a fault already, now P1 as well)
    ("首页白屏", "升级后首页白屏", FAULT, P1, FK, PF, []),
    # 没反应 / 没有反应 / 沒反應 / 無反應
    ("提交", "点提交按钮没反应", FAULT, P1, FK, PF, []),
    ("提交", "点提交按钮没有反应", FAULT, P1, FK, PF, []),
    ("提交", "點提交按鈕沒反應", FAULT, P1, FK, PF, []),
    ("提交", "點了提交之後無反應", FAULT, P1, FK, PF, []),
    # 卡死, 死机 / 死機, 當掉, keeps crashing: a fault, P2 like 闪退 and crash
    ("App", "一打开就卡死", FAULT, P2, FK, None, []),
    ("客户端", "导出时客户端死机", FAULT, P2, FK, None, []),
    ("用戶端", "匯出時用戶端死機", FAULT, P2, FK, None, []),
    ("系統", "匯出時系統當掉了", FAULT, P2, FK, None, []),
    ("App", "The app keeps crashing on start.", FAULT, P2, FK, None, []),
    # The site is down: the whole system, P0 like "system down"
    ("The site is down", "Since 9:00.", FAULT, P0, OUT, OUT, []),
    ("Site down", "Since 9:00, for everyone here.", FAULT, P0, OUT, OUT, []),
]
# The order still holds with the new words, and what was left out stays out.
COLLOQUIAL_PRECEDENCE = [
    (
        "看不到入口",
        "看不到报表入口，是不是没有开通权限？",
        ProblemType.PERMISSION,
        Priority.P2,
        "permission-keywords",
        None,
        ["权限配置"],
    ),
    (
        "看不到菜单",
        "没有权限，看不到审批菜单，页面也进不去",
        ProblemType.PERMISSION,
        Priority.P1,
        "permission-keywords",
        "partial-fault",
        ["权限配置"],
    ),
    (
        "看不到入口",
        "看不到報表入口，沒有入口可以進",
        ProblemType.PERMISSION,
        Priority.P2,
        "permission-keywords",
        None,
        [],
    ),
    (
        "審批頁面",
        "沒有權限，審批頁面進不去",
        ProblemType.PERMISSION,
        Priority.P1,
        "permission-keywords",
        "partial-fault",
        ["权限配置"],
    ),
    ("请问怎么导出报表", "", ProblemType.HOW_TO, Priority.P2, "how-to-keywords", None, []),
    (
        "建议增加导出按钮",
        "",
        ProblemType.IMPROVEMENT,
        Priority.P2,
        "improvement-keywords",
        None,
        [],
    ),
    # Left out: 看不到 alone and "blank page".
    ("看不到菜单", "首页看不到审批菜单", ProblemType.UNTRIAGED, Priority.P2, None, None, []),
    (
        "PDF export",
        "How can I add a blank page to the PDF?",
        ProblemType.HOW_TO,
        Priority.P2,
        "how-to-keywords",
        None,
        [],
    ),
]


@pytest.mark.parametrize(
    ("subject", "body", "problem_type", "priority", "type_rule", "priority_rule", "tags"),
    [*TRADITIONAL_AND_BARE, *COLLOQUIAL_FAULTS, *COLLOQUIAL_PRECEDENCE],
)
def test_default_rules_over_traditional_bare_and_colloquial_reports(
    default_engine: RuleEngine,
    subject: str,
    body: str,
    problem_type: ProblemType,
    priority: Priority,
    type_rule: str | None,
    priority_rule: str | None,
    tags: list[str],
) -> None:
    outcome = default_engine.evaluate(facts(subject, body))
    assert (outcome.problem_type, outcome.priority, outcome.tags) == (problem_type, priority, tags)
    decided = {d.attribute: d.rule_id for d in outcome.decisions}  # the last one of each
    assert (decided["problem_type"], decided["priority"]) == (type_rule, priority_rule)


# Each colloquial keyword added (Simplified, Traditional and English), alone, triggers each
# rule it is in, written out again by hand.
COLLOQUIAL_KEYWORDS = {
    "partial-fault": "登不上 登不进去 进不去 用不了 刷不出来 加载不出来 一直转圈 一直在转圈 白屏 "
    "没反应 没有反应 无反应 登不進去 進不去 刷不出來 加載不出來 載入不出來 一直轉圈 一直在轉圈 "
    "沒反應 沒有反應 無反應",
    "fault-keywords": "登不上 登不进去 进不去 用不了 刷不出来 加载不出来 一直转圈 一直在转圈 "
    "没反应 没有反应 无反应 卡死 死机 登不進去 進不去 刷不出來 加載不出來 載入不出來 一直轉圈 "
    "一直在轉圈 沒反應 沒有反應 無反應 死機 當掉",
    "tag-login": "登不上 登不进去 登不進去",
}
COLLOQUIAL_ENGLISH = {
    "outage-keywords": ["site down", "site is down"],
    "partial-fault": ["doesn't work", "does not work", "won't load"],
    "fault-keywords": [
        *["crashing", "crashed", "doesn't work", "does not work", "won't load"],
        *["can't get in", "cannot get in"],
    ],
}


@pytest.mark.parametrize(
    ("rule_id", "keyword"),
    [(rule_id, word) for rule_id, words in COLLOQUIAL_KEYWORDS.items() for word in words.split()]
    + [(rule_id, words) for rule_id, phrases in COLLOQUIAL_ENGLISH.items() for words in phrases],
)
def test_each_colloquial_fault_keyword_triggers_its_rule(
    default_engine: RuleEngine, rule_id: str, keyword: str
) -> None:
    matched = [match.rule_id for match in default_engine.evaluate(facts("", keyword)).matches]
    assert rule_id in matched


def test_every_decision_names_its_rule_and_what_matched(default_engine: RuleEngine) -> None:
    outcome = default_engine.evaluate(facts("生产环境宕机", "核心业务全部中断"))
    texts = [decision.text for decision in outcome.decisions]
    assert "P0 by rule outage-keywords: matched '宕机' and '核心业务'" in texts
    assert (
        "type 系统故障 (system_fault) by rule outage-keywords: matched '宕机' and '核心业务'"
        in (texts)
    )
    assert "due 2024-05-20 18:00 CST (P0: 4h)" in texts


def test_an_unmatched_report_gets_the_defaults_and_goes_to_triage(
    default_engine: RuleEngine,
) -> None:
    outcome = default_engine.evaluate(facts("Hello", "Nothing to see."))
    assert outcome.matches == []
    assert [d.text for d in outcome.decisions] == [
        "type 待分类 (untriaged) (no rule decided it); sent to triage for the lead to judge",
        "P2 (no rule decided it)",
        "due 2024-05-23 14:00 CST (P2: 3d)",
    ]
    assert outcome.needs_triage
