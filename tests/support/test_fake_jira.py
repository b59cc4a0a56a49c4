"""The fake Jira: it must answer as Atlassian documents, page both ways, keep state, fail on
demand, and carry our connector end to end (including a 10,000-issue sync, counted)."""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
import requests
from pydantic import SecretStr

from connectors.jira_client import (
    JiraAuthError,
    JiraClient,
    JiraConnection,
    JiraTransitionError,
)
from tests.support import jira_openapi
from tests.support.fake_jira import FakeJira, adf_to_text, text_to_adf

Flavor = Literal["cloud", "dc"]
log = logging.getLogger(__name__)
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _specs() -> None:
    jira_openapi.require_specs()


class Clock:
    """A controllable clock for the fake: time moves only when a test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(params=["cloud", "dc"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    value: Flavor = request.param
    return value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(flavor: Flavor, clock: Clock) -> Iterator[FakeJira]:
    with FakeJira(flavor, validate=True, clock=clock, time_zone="Asia/Shanghai") as server:
        yield server
        assert server.contract_violations == []


def session_for(fake: FakeJira) -> requests.Session:
    session = requests.Session()
    if fake.flavor == "cloud":
        session.auth = (fake.user, fake.token)
    else:
        session.headers["Authorization"] = f"Bearer {fake.token}"
    return session


@pytest.fixture
def http(fake: FakeJira) -> Iterator[requests.Session]:
    with session_for(fake) as session:
        yield session


def api(fake: FakeJira, path: str) -> str:
    return f"{fake.url}/rest/api/{fake.api_version}/{path}"


class Sleeper:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(fake: FakeJira, **kwargs: Any) -> JiraClient:
    conn = JiraConnection(
        url=fake.url,
        flavor=fake.flavor,
        user=fake.user,
        token=SecretStr(fake.token),
        project="SUP",
        timeout=10,
    )
    kwargs.setdefault("sleep", Sleeper())
    return JiraClient(conn, **kwargs)


# -- the contract checker itself --------------------------------------------------------------


@pytest.mark.parametrize("fix", jira_openapi.CORRECTIONS, ids=lambda f: f"{f.flavor}:{f.pointer}")
def test_every_schema_correction_is_still_needed(fix: jira_openapi.Correction) -> None:
    rejected_as_published, accepted_corrected = jira_openapi.correction_still_needed(fix)
    assert rejected_as_published, f"the published description now accepts it: {fix.reason}"
    assert accepted_corrected


def test_the_checker_rejects_what_jira_would_not_send() -> None:
    errors = jira_openapi.response_errors(
        "cloud", "GET", "/rest/api/3/search/jql", 200, {"issues": [], "total": 3}
    )
    assert errors and "total" in errors[0]  # /search/jql has no total
    with pytest.raises(jira_openapi.ContractViolation, match="not documented"):
        jira_openapi.validate_response("dc", "GET", "/rest/api/2/search", 418, None)
    with pytest.raises(jira_openapi.ContractViolation, match="no documented operation"):
        jira_openapi.find_operation("cloud", "GET", "/rest/api/3/nonsense")
    # The fake's, and Jira's, timestamps (+0000, no colon) pass the date-time check.
    assert not jira_openapi.response_errors(
        "cloud",
        "GET",
        "/rest/api/3/serverInfo",
        200,
        {"serverTime": "2025-03-01T08:00:00.000+0800"},
    )


# -- the fake answers as documented -----------------------------------------------------------


def test_every_endpoint_answers_as_documented(fake: FakeJira, http: requests.Session) -> None:
    fake.add_issues(30, comment_ratio=0.5)
    key = "SUP-3"
    fake.add_comment(key, "多语言评论 / a comment")
    search = "search/jql" if fake.flavor == "cloud" else "search"
    jql = 'project = SUP AND updated >= "2020-01-01 00:00" ORDER BY updated ASC, key ASC'
    answers = [
        http.get(api(fake, "serverInfo")),
        http.get(api(fake, "myself")),
        http.get(api(fake, "field")),
        http.get(api(fake, search), params={"jql": jql, "maxResults": 5, "fields": "*all"}),
        http.post(api(fake, search), json={"jql": jql, "maxResults": 5, "fields": ["summary"]}),
        http.get(api(fake, f"issue/{key}")),
        http.get(api(fake, f"issue/{key}/comment")),
        http.get(api(fake, f"issue/{key}/transitions")),
        http.put(api(fake, f"issue/{key}/properties/casedesk"), json={"case": "C-1"}),
        http.put(api(fake, f"issue/{key}/properties/casedesk"), json={"case": "C-2"}),
        http.get(api(fake, f"issue/{key}/properties")),
        http.get(api(fake, f"issue/{key}/properties/casedesk")),
        # and the ways Jira says no
        http.get(api(fake, "issue/SUP-999")),
        http.get(api(fake, search), params={"jql": "project = SUP OR labels = x"}),
        http.get(api(fake, f"issue/{key}/properties/none")),
        requests.get(api(fake, "myself"), auth=("someone@example.com", "wrong"), timeout=5),
    ]
    assert [a.status_code for a in answers] == [200] * 8 + [201, 200] + [200, 200] + [
        404,
        400,
        404,
        401,
    ]
    assert answers[-1].json()["errorMessages"]
    assert fake.contract_violations == []


def test_writes_answer_as_documented(fake: FakeJira, http: requests.Session) -> None:
    rich = text_to_adf("Hello\n\nWorld") if fake.flavor == "cloud" else "Hello\n\nWorld"
    created = http.post(
        api(fake, "issue"),
        json={
            "fields": {
                "project": {"key": "SUP"},
                "issuetype": {"name": "Bug"},
                "summary": "无法登录",
                "description": rich,
                "labels": ["casedesk-C-1"],
                "components": [{"name": "Login"}],
                "priority": {"name": "High"},
                fake.custom_field_id("Customer Email"): "a@example.cn",
            }
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert http.post(api(fake, f"issue/{key}/comment"), json={"body": rich}).status_code == 201
    assert (
        http.put(api(fake, f"issue/{key}"), json={"fields": {"summary": "改"}}).status_code == 204
    )
    wrong_rich = "plain" if fake.flavor == "cloud" else text_to_adf("adf")
    refused = http.put(api(fake, f"issue/{key}"), json={"fields": {"description": wrong_rich}})
    assert refused.status_code == 400
    spaced = http.put(api(fake, f"issue/{key}"), json={"fields": {"labels": ["a b"]}})
    assert spaced.status_code == 400 and "spaces" in spaced.text
    unknown = http.put(api(fake, f"issue/{key}"), json={"fields": {"nonsense": 1}})
    assert unknown.status_code == 400
    assert fake.issues[key].summary == "改"
    assert fake.request_violations == []


def test_cloud_removed_search_answers_410() -> None:
    with FakeJira("cloud", validate=True) as fake, session_for(fake) as http:
        for version in ("2", "3"):
            gone = http.get(
                f"{fake.url}/rest/api/{version}/search", params={"jql": "project = SUP"}
            )
            assert gone.status_code == 410 and "search/jql" in gone.text
        assert fake.contract_violations == []


def test_wrong_credentials_401_and_the_right_scheme_per_flavor(fake: FakeJira) -> None:
    basic = base64.b64encode(f"{fake.user}:{fake.token}".encode()).decode()
    wrong_scheme = (
        {"Authorization": f"Bearer {fake.token}"}
        if fake.flavor == "cloud"
        else {"Authorization": f"Basic {basic}"}
    )
    assert requests.get(api(fake, "myself"), headers=wrong_scheme, timeout=5).status_code == 401
    assert requests.get(api(fake, "myself"), timeout=5).status_code == 401


# -- search paging ----------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["cloud"])
def test_cloud_paging_by_token_honours_fields(fake: FakeJira, http: requests.Session) -> None:
    fake.add_issues(250)
    jql = "project = SUP ORDER BY key ASC"
    url = api(fake, "search/jql")

    default = http.get(url, params={"jql": jql, "maxResults": 3}).json()
    assert set(default["issues"][0]) == {"expand", "id", "self", "key", "fields"}
    assert default["issues"][0]["fields"] == {}  # Cloud's default is ids only

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"jql": jql, "maxResults": 1000, "fields": "summary,updated"}
        if token:
            params["nextPageToken"] = token
        page = http.get(url, params=params).json()
        pages += 1
        assert "total" not in page
        assert all(set(i["fields"]) == {"summary", "updated"} for i in page["issues"])
        seen += [i["key"] for i in page["issues"]]
        if page["isLast"]:
            assert "nextPageToken" not in page
            break
        token = page["nextPageToken"]
    assert pages == 3  # capped at 100 per page when fields are asked for
    assert seen == [f"SUP-{n}" for n in range(1, 251)]
    other = http.get(url, params={"jql": "project = SUP", "nextPageToken": token or "x"})
    assert other.status_code == 400  # a token belongs to its query


@pytest.mark.parametrize("flavor", ["dc"])
def test_dc_paging_by_start_at_with_total(fake: FakeJira, http: requests.Session) -> None:
    fake.add_issues(120)
    url = api(fake, "search")
    seen: list[str] = []
    start = 0
    while True:
        page = http.post(
            url,
            json={"jql": "project = SUP ORDER BY key ASC", "startAt": start, "maxResults": 50},
        ).json()
        assert page["total"] == 120 and page["startAt"] == start
        seen += [i["key"] for i in page["issues"]]
        start += len(page["issues"])
        if start >= page["total"]:
            break
    assert seen == [f"SUP-{n}" for n in range(1, 121)]
    assert "status" in page["issues"][0]["fields"]  # DC's default is the navigable fields


def test_jql_dates_are_read_in_the_users_zone(fake: FakeJira, http: requests.Session) -> None:
    fake.add_issue("early", updated=datetime(2025, 3, 1, 1, 59, tzinfo=UTC))
    fake.add_issue("late", updated=datetime(2025, 3, 1, 2, 0, 30, tzinfo=UTC))
    search = "search/jql" if fake.flavor == "cloud" else "search"
    # 10:00 in Shanghai is 02:00 UTC; the seconds after the minute still count.
    jql = 'project = SUP AND updated >= "2025-03-01 10:00" ORDER BY updated ASC'
    found = http.get(api(fake, search), params={"jql": jql, "fields": "summary"}).json()
    assert [i["fields"]["summary"] for i in found["issues"]] == ["late"]
    assert found["issues"][0]["key"] == "SUP-2"


@pytest.mark.parametrize(
    "jql",
    [
        "summary ~ login",
        "project = SUP OR project = OPS",
        "project = NOPE",
        'updated >= "yesterday"',
        "project = SUP ORDER BY priority",
        "project in (SUP)",
    ],
)
def test_jql_it_does_not_know_is_a_400(fake: FakeJira, http: requests.Session, jql: str) -> None:
    search = "search/jql" if fake.flavor == "cloud" else "search"
    answer = http.get(api(fake, search), params={"jql": jql})
    assert answer.status_code == 400, jql
    assert answer.json()["errorMessages"]


@pytest.mark.parametrize("flavor", ["cloud"])
def test_cloud_refuses_unbounded_jql(fake: FakeJira, http: requests.Session) -> None:
    answer = http.get(api(fake, "search/jql"), params={"jql": "ORDER BY key"})
    assert answer.status_code == 400 and "Unbounded" in answer.text


def test_search_embeds_at_most_20_comments(fake: FakeJira, http: requests.Session) -> None:
    issue = fake.add_issue("chatty")
    for n in range(25):
        fake.add_comment(issue.key, f"comment {n}")
    search = "search/jql" if fake.flavor == "cloud" else "search"
    found = http.get(api(fake, search), params={"jql": "project = SUP", "fields": "comment"}).json()
    page = found["issues"][0]["fields"]["comment"]
    assert len(page["comments"]) == 20 and page["total"] == 25
    full = http.get(api(fake, f"issue/{issue.key}/comment"), params={"maxResults": 1000}).json()
    assert len(full["comments"]) == 25


def test_an_issue_can_be_served_without_members_and_fields(
    fake: FakeJira, http: requests.Session
) -> None:
    fake.add_issue("whole")
    broken = fake.add_issue("broken")
    fake.withhold(broken.key, "updated", "key")
    search = "search/jql" if fake.flavor == "cloud" else "search"
    params = {"jql": "project = SUP ORDER BY created ASC", "fields": "summary,updated"}
    whole, served = http.get(api(fake, search), params=params).json()["issues"]
    assert set(whole) >= {"id", "key"} and set(whole["fields"]) == {"summary", "updated"}
    assert "key" not in served and served["id"] == str(broken.id)
    assert served["fields"] == {"summary": "broken"}
    # withheld only from what is served: the issue is still found and fetched by its key
    assert "updated" not in http.get(api(fake, f"issue/{broken.key}")).json()["fields"]
    fake.withhold(broken.key)
    restored = http.get(api(fake, f"issue/{broken.key}")).json()
    assert restored["key"] == broken.key and "updated" in restored["fields"]
    # the fixture asserts that every answer, the broken one too, was contract-valid


# -- state changes ----------------------------------------------------------------------------


def test_transitions_change_status_and_updated(
    fake: FakeJira, http: requests.Session, clock: Clock
) -> None:
    issue = fake.add_issue("to resolve")
    before = issue.updated
    offered = http.get(api(fake, f"issue/{issue.key}/transitions")).json()["transitions"]
    assert "Reopen" not in {t["name"] for t in offered}  # already in To Do
    resolve = next(t for t in offered if t["name"] == "Resolve")
    assert resolve["to"]["statusCategory"]["key"] == "done"

    later = clock.advance(minutes=5)
    done = http.post(
        api(fake, f"issue/{issue.key}/transitions"), json={"transition": {"id": resolve["id"]}}
    )
    assert done.status_code == 204
    assert fake.issues[issue.key].status == "Done"
    assert fake.issues[issue.key].updated == later > before
    shown = http.get(api(fake, f"issue/{issue.key}"), params={"fields": "status,resolution"}).json()
    assert shown["fields"]["status"]["name"] == "Done" and shown["fields"]["resolution"]
    again = http.post(
        api(fake, f"issue/{issue.key}/transitions"), json={"transition": {"id": resolve["id"]}}
    )
    assert again.status_code == 400  # not offered from Done


def test_configured_transitions(fake: FakeJira, http: requests.Session) -> None:
    fake.set_transitions({"Escalate": "Escalated", "Close": "Done"})
    issue = fake.add_issue("x")
    names = [
        t["name"]
        for t in http.get(api(fake, f"issue/{issue.key}/transitions")).json()["transitions"]
    ]
    assert names == ["Escalate", "Close"]


def test_injected_429_then_normal_service_and_counts(
    fake: FakeJira, http: requests.Session
) -> None:
    fake.inject(429, count=2, headers={"Retry-After": "1"})
    fake.inject(503, count=1, path=f"/rest/api/{fake.api_version}/field")
    first = http.get(api(fake, "myself"))
    assert first.status_code == 429 and first.headers["Retry-After"] == "1"
    assert http.get(api(fake, "myself")).status_code == 429
    assert http.get(api(fake, "myself")).status_code == 200
    assert http.get(api(fake, "field")).status_code == 503
    assert http.get(api(fake, "field")).status_code == 200
    assert fake.requests[("GET", f"/rest/api/{fake.api_version}/myself")] == 3
    assert fake.count("GET", f"/rest/api/{fake.api_version}/field") == 2
    assert fake.total_requests == 5


def test_bulk_loader_is_fast_and_varied(flavor: Flavor) -> None:
    fake = FakeJira(flavor)  # no server needed to load
    started = time.perf_counter()
    keys = fake.add_issues(10_000)
    elapsed = time.perf_counter() - started
    assert len(keys) == 10_000 and elapsed < 2.0
    summaries = [fake.issues[k].summary for k in keys[:500]]
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in s) for s in summaries)
    assert any(s.isascii() for s in summaries)
    assert len({fake.issues[k].status for k in keys}) > 1
    assert any(fake.issues[k].comments for k in keys)


def test_adf_helpers() -> None:
    assert adf_to_text(text_to_adf("a\nb\n\nc")) == "a\nb\n\nc"


# -- the connector end to end -----------------------------------------------------------------


def test_connector_end_to_end(fake: FakeJira, clock: Clock) -> None:
    fake.add_issues(40, end=clock.now)
    with client_for(fake, custom_fields=["Customer Email"]) as jira:
        first = [i for page in jira.search_updated_since(None, page_size=15) for i in page]
        assert len(first) == 40 and first[0].custom["Customer Email"]
        watermark = max(i.updated for i in first)

        clock.advance(minutes=10)
        ref = jira.create_issue(
            "无法导出报表",
            "导出时超时。\n\nExport times out.",
            priority="High",
            labels=["casedesk-C-9"],
            components=["Web"],
            custom={"Customer Email": "li@example.cn"},
        )
        found = jira.find_issue_by_label("casedesk-C-9")
        assert found is not None and found.key == ref.key
        assert found.description_text == "导出时超时。\n\nExport times out."
        assert found.custom["Customer Email"] == "li@example.cn"

        clock.advance(minutes=1)
        fake.add_comment(ref.key, "客户：还是不行")
        mine = jira.add_comment(ref.key, "我们正在处理。")
        assert mine.is_ours
        comments = jira.comments(ref.key)
        assert [c.is_ours for c in comments] == [False, True]

        clock.advance(minutes=1)
        jira.transition(ref.key, "start progress")
        with pytest.raises(JiraTransitionError, match="Resolve"):
            jira.transition(ref.key, "Teleport")
        jira.update_fields(ref.key, {"summary": "无法导出报表 (CSV)", "priority": "Highest"})
        jira.set_property(ref.key, "casedesk", {"case": "C-9"})
        assert jira.get_property(ref.key, "casedesk") == {"case": "C-9"}
        assert jira.get_property(ref.key, "nothing") is None

        since = [
            i for page in jira.search_updated_since(watermark, timedelta(minutes=2)) for i in page
        ]
        assert [i.key for i in since][-1] == ref.key
        assert {i.key for i in since} <= {first[-1].key, ref.key}  # overlap may re-read one
        latest = jira.get_issue(ref.key)
        assert latest.status == "In Progress" and latest.status_category == "indeterminate"
        assert latest.priority == "Highest" and latest.summary.endswith("(CSV)")
    assert fake.request_violations == []
    assert fake.contract_violations == []


def test_connector_waits_out_injected_rate_limits(fake: FakeJira) -> None:
    fake.add_issues(5)
    sleeper = Sleeper()
    fake.inject(429, count=2, headers={"Retry-After": "2"})
    with client_for(fake, sleep=sleeper) as jira:
        assert len(jira.myself()["displayName"]) > 0
        assert sleeper.waits == [2.0, 2.0] and jira.request_count == 3
        fake.inject(503, count=10)
        with pytest.raises(Exception, match="kept answering 503"):
            jira.myself()
        assert jira.request_count == 3 + 5  # one try and max_retries=4 retries


def test_connector_auth_error_against_the_fake(fake: FakeJira) -> None:
    conn = JiraConnection(
        url=fake.url,
        flavor=fake.flavor,
        user=fake.user,
        token=SecretStr("not-the-token"),
        project="SUP",
    )
    with JiraClient(conn) as jira, pytest.raises(JiraAuthError, match=fake.url):
        jira.myself()
    assert fake.total_requests == 1


@pytest.mark.parametrize("flavor", ["dc"])
def test_dc_sync_misses_nothing_when_issues_change_mid_sync(fake: FakeJira, clock: Clock) -> None:
    keys = fake.add_issues(300, end=clock.now)
    with client_for(fake) as jira:
        seen: list[str] = []
        for n, page in enumerate(jira.search_updated_since(None, page_size=50)):
            seen += [i.key for i in page]
            if n in (1, 3):
                # Someone edits issues we already read: they move to the end of the ordering.
                clock.advance(seconds=1)
                for key in seen[n * 10 : n * 10 + 3]:
                    fake.touch(key)
    assert set(seen) == set(keys)
    assert len(seen) == 300 + 6  # the six edited issues come again, with their new `updated`


@pytest.mark.parametrize("flavor", ["cloud"])
@pytest.mark.xfail(
    strict=True,
    reason="Cloud's nextPageToken is opaque: if issues already read are updated mid-sync, the "
    "fake (offset-encoding tokens, as we believe Jira does) shifts and one page boundary skips "
    "issues; the connector cannot re-read from an offset there. Known limitation.",
)
def test_cloud_sync_misses_nothing_when_issues_change_mid_sync(
    fake: FakeJira, clock: Clock
) -> None:
    keys = fake.add_issues(300, end=clock.now)
    with client_for(fake) as jira:
        seen: list[str] = []
        for n, page in enumerate(jira.search_updated_since(None, page_size=50)):
            seen += [i.key for i in page]
            if n == 1:
                clock.advance(seconds=1)
                for key in seen[:3]:
                    fake.touch(key)
    assert set(seen) == set(keys)


# -- a 10,000-issue sync, counted ---------------------------------------------------------------


def test_sync_of_10000_issues_request_counts(flavor: Flavor, clock: Clock) -> None:
    n, page_size = 10_000, 100
    with FakeJira(flavor, clock=clock, time_zone="Asia/Shanghai") as fake:
        fake.add_issues(n, end=clock.now)
        with client_for(fake, custom_fields=["Customer Email"]) as jira:
            started = time.perf_counter()
            read = 0
            watermark: datetime | None = None
            for page in jira.search_updated_since(None, page_size=page_size):
                read += len(page)
                top = max(i.updated for i in page)
                watermark = top if watermark is None else max(watermark, top)
            elapsed = time.perf_counter() - started
            full_sync = dict(jira.requests_by_endpoint)
            full_count = jira.request_count

            jira.request_count = 0
            jira.requests_by_endpoint.clear()
            assert watermark is not None
            again = sum(len(p) for p in jira.search_updated_since(watermark, timedelta(minutes=2)))
            resync_count = jira.request_count

    # Cloud: one page per 100 issues. DC: pages overlap by one issue (the shift check), so
    # each page after the first brings 99 new ones. Plus one /field for the custom field.
    pages = (
        math.ceil(n / page_size)
        if flavor == "cloud"
        else 1 + math.ceil((n - page_size) / (page_size - 1))
    )
    assert read == n
    assert full_count == pages + 1, full_sync
    assert again <= 2 and resync_count == 2  # /myself for the zone, one search page
    rate = n / elapsed
    log.info(
        "%s sync of %d issues: %d requests (%s), %.2f s, %.0f issues/s; no-op re-sync: %d "
        "requests, %d issues re-read",
        flavor,
        n,
        full_count,
        full_sync,
        elapsed,
        rate,
        resync_count,
        again,
    )
    assert rate > 1000
