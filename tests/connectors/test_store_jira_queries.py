"""The store's reads for the Jira push, on SQLite and PostgreSQL: which email-born cases still
need an issue, and which linked cases changed since the last scan."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.store import CaseStore
from mapping.case import Case, CaseSource, CaseStatus, SourceKind
from tests.mapping.test_case import make_case

T0 = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
MAY = date(2024, 5, 1)


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


def email_case(
    number: str,
    *,
    status: CaseStatus = CaseStatus.NEW,
    jira_key: str | None = None,
    updated_at: datetime = T0,
) -> Case:
    source = CaseSource(kind=SourceKind.EMAIL, mailbox="support", jira_key=jira_key)
    return make_case(number=number, status=status, source=source, updated_at=updated_at)


def jira_case(number: str, key: str, *, updated_at: datetime = T0) -> Case:
    source = CaseSource(kind=SourceKind.JIRA, jira_key=key, jira_id=key.split("-")[1])
    return make_case(number=number, source=source, updated_at=updated_at)


def add(store: CaseStore, *cases: Case) -> None:
    with store.transaction() as tx:
        for case in cases:
            tx.add_case(case, month=MAY)


def test_email_cases_without_a_jira_key_are_listed_oldest_first_unless_closed(
    store: CaseStore,
) -> None:
    add(
        store,
        # Added before 202405-002: "oldest" is the order cases arrived, not their numbers.
        email_case("202405-009"),
        email_case("202405-002", status=CaseStatus.RESOLVED),
        email_case("202405-003", status=CaseStatus.CLOSED),
        email_case("202405-004", jira_key="SUP-4"),
        jira_case("202405-005", "SUP-5"),
        email_case("202405-006", status=CaseStatus.IN_PROGRESS),
    )
    with store.transaction() as tx:
        found = tx.email_case_numbers_without_jira_key()
    assert found == ["202405-009", "202405-002", "202405-006"]


def test_no_email_case_without_a_key_is_an_empty_list(store: CaseStore) -> None:
    add(store, jira_case("202405-001", "SUP-1"))
    with store.transaction() as tx:
        assert tx.email_case_numbers_without_jira_key() == []


def test_a_case_drops_out_once_its_issue_key_is_saved(store: CaseStore) -> None:
    add(store, email_case("202405-001"))
    with store.transaction() as tx:
        case = tx.get_case("202405-001")
        case.source = case.source.model_copy(update={"jira_key": "SUP-1", "jira_id": "10001"})
        tx.save_case(case)
    with store.transaction() as tx:
        assert tx.email_case_numbers_without_jira_key() == []
        assert [c.number for c in tx.jira_cases_updated_since(None)] == ["202405-001"]


def test_jira_cases_updated_since_is_inclusive_and_skips_unlinked_cases(
    store: CaseStore,
) -> None:
    add(
        store,
        jira_case("202405-001", "SUP-1", updated_at=T0),
        email_case("202405-002", jira_key="SUP-2", updated_at=T0 + timedelta(hours=2)),
        email_case("202405-003", updated_at=T0 + timedelta(hours=3)),  # no issue: not pushed
        jira_case("202405-004", "SUP-4", updated_at=T0 + timedelta(hours=1)),
    )
    with store.transaction() as tx:
        everything = tx.jira_cases_updated_since(None)
        since_one_hour = tx.jira_cases_updated_since(T0 + timedelta(hours=1))
        after_all = tx.jira_cases_updated_since(T0 + timedelta(hours=2, seconds=1))
    assert [c.number for c in everything] == ["202405-001", "202405-002", "202405-004"]
    assert [c.number for c in since_one_hour] == ["202405-002", "202405-004"]
    assert after_all == []


def test_jira_cases_updated_since_compares_instants_not_wall_clocks(store: CaseStore) -> None:
    add(store, jira_case("202405-001", "SUP-1", updated_at=T0))
    shanghai = ZoneInfo("Asia/Shanghai")
    with store.transaction() as tx:
        # 14:00 in Shanghai is T0 (06:00 UTC): included; one second later it is not.
        at_t0 = tx.jira_cases_updated_since(T0.astimezone(shanghai))
        later = tx.jira_cases_updated_since((T0 + timedelta(seconds=1)).astimezone(shanghai))
    assert [c.number for c in at_t0] == ["202405-001"]
    assert later == []


def test_jira_cases_come_back_whole_with_their_version(store: CaseStore) -> None:
    add(store, jira_case("202405-001", "SUP-1"))
    with store.transaction() as tx:
        case = tx.get_case("202405-001")
        case.tags = ["登录故障"]
        tx.save_case(case)
    with store.transaction() as tx:
        [found] = tx.jira_cases_updated_since(None)
    assert found == store.get_case("202405-001")
    assert found.version == 2 and found.tags == ["登录故障"]
