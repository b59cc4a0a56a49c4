"""JiraClient against canned HTTP answers shaped as Atlassian documents them.

Every canned response is checked against Atlassian's OpenAPI description when it is registered,
and every request body the client sends is checked when the test ends (tests/support/
jira_openapi.py), so these tests cannot drift into a Jira of our own imagination.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from pydantic import SecretStr, ValidationError

from connectors.jira_client import (
    JiraAuthError,
    JiraClient,
    JiraConnection,
    JiraConnectionError,
    JiraError,
    JiraGoneError,
    JiraIssue,
    JiraRateLimitError,
    JiraRequestError,
    JiraSearchResult,
    JiraTransitionError,
    MalformedJiraIssue,
    text_to_adf,
)
from mapping.jira_issue import adf_to_text
from tests.support import jira_openapi

Flavor = Literal["cloud", "dc"]
BASE = "https://jira.example.com"
TOKEN = "s3cret-token-value"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _specs() -> None:
    jira_openapi.require_specs()


class JiraMock:
    """``responses`` with contract checks: answers validated on add, request bodies at the end."""

    def __init__(self, rsps: responses.RequestsMock, flavor: Flavor) -> None:
        self.rsps = rsps
        self.flavor = flavor
        self.api = f"/rest/api/{'3' if flavor == 'cloud' else '2'}"

    def add(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        flavor: Flavor | None = None,
    ) -> None:
        full = path if path.startswith("/rest/") else f"{self.api}/{path}"
        jira_openapi.validate_response(flavor or self.flavor, method, full, status, body)
        self.rsps.add(
            method,
            BASE + full,
            body=b"" if body is None else json.dumps(body),
            status=status,
            headers=headers,
            content_type="application/json",
        )

    def calls(self, method: str | None = None, path: str | None = None) -> list[Any]:
        result = []
        for call in self.rsps.calls:
            split = urlsplit(call.request.url)
            if method and call.request.method != method:
                continue
            if path and not split.path.endswith("/" + path.lstrip("/")):
                continue
            result.append(call)
        return result

    def params(self, call: Any) -> dict[str, list[str]]:
        return parse_qs(urlsplit(call.request.url).query)

    def check_request_bodies(self, flavor: Flavor | None = None) -> None:
        for call in self.rsps.calls:
            if call.request.body:
                body = call.request.body
                payload = json.loads(body.decode() if isinstance(body, bytes) else body)
                path = urlsplit(call.request.url).path
                jira_openapi.validate_request_body(
                    flavor or self.flavor, call.request.method, path, payload
                )


@pytest.fixture(params=["cloud", "dc"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    value: Flavor = request.param
    return value


@pytest.fixture
def mock(flavor: Flavor) -> Iterator[JiraMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira_mock = JiraMock(rsps, flavor)
        yield jira_mock
        jira_mock.check_request_bodies()


class Sleeper:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


def connection(flavor: Flavor, **overrides: Any) -> JiraConnection:
    values: dict[str, Any] = {
        "url": BASE,
        "flavor": flavor,
        "user": "bot@example.com" if flavor == "cloud" else "casedesk",
        "token": SecretStr(TOKEN),
        "project": "SUP",
        "timeout": 5,
    }
    values.update(overrides)
    return JiraConnection(**values)


@pytest.fixture
def client(flavor: Flavor, sleeper: Sleeper) -> Iterator[JiraClient]:
    with JiraClient(
        connection(flavor), max_retries=3, sleep=sleeper, clock=lambda: NOW
    ) as jira_client:
        yield jira_client


# -- Atlassian-shaped bodies ------------------------------------------------------------------


def ts(when: datetime) -> str:
    """Jira's timestamp format: milliseconds and a colon-less offset."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def user(flavor: Flavor, name: str = "mia") -> dict[str, Any]:
    if flavor == "cloud":
        return {
            "self": f"{BASE}/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5",
            "accountId": "5b10ac8d82e05b22cc7d4ef5",
            "emailAddress": f"{name}@example.com",
            "displayName": name.title(),
            "active": True,
            "timeZone": "Asia/Shanghai",
            "accountType": "atlassian",
        }
    return {
        "self": f"{BASE}/rest/api/2/user?username={name}",
        "name": name,
        "key": "JIRAUSER10100",
        "emailAddress": f"{name}@example.com",
        "displayName": name.title(),
        "active": True,
        "timeZone": "Asia/Shanghai",
    }


def rich(flavor: Flavor, text: str) -> Any:
    return text_to_adf(text) if flavor == "cloud" else text


def comment(flavor: Flavor, number: int, text: str) -> dict[str, Any]:
    created = ts(NOW - timedelta(hours=100 - number))
    return {
        "self": f"{BASE}/rest/api/2/issue/10001/comment/{10000 + number}",
        "id": str(10000 + number),
        "author": user(flavor),
        "body": rich(flavor, text),
        "updateAuthor": user(flavor),
        "created": created,
        "updated": created,
    }


def issue(
    flavor: Flavor,
    number: int,
    *,
    updated: datetime | None = None,
    comments: list[dict[str, Any]] | None = None,
    comment_total: int | None = None,
) -> dict[str, Any]:
    comments = comments or []
    when = updated or NOW - timedelta(minutes=60 - number)
    return {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog",
        "id": str(10000 + number),
        "self": f"{BASE}/rest/api/2/issue/{10000 + number}",
        "key": f"SUP-{number}",
        "fields": {
            "summary": f"登录失败 / Login fails #{number}",
            "description": rich(flavor, f"Customer reports problem {number}.\n\nSecond paragraph."),
            "status": {
                "self": f"{BASE}/rest/api/2/status/1",
                "name": "To Do",
                "id": "1",
                "statusCategory": {
                    "id": 2,
                    "key": "new",
                    "colorName": "blue-gray",
                    "name": "To Do",
                },
            },
            "priority": {"name": "High", "id": "2"},
            "issuetype": {"name": "Bug", "id": "10004", "subtask": False},
            "labels": ["customer"],
            "components": [{"id": "20000", "name": "Login"}],
            "assignee": None,
            "reporter": user(flavor),
            "created": ts(when - timedelta(days=1)),
            "updated": ts(when),
            "comment": {
                "comments": comments,
                "maxResults": 20,
                "total": len(comments) if comment_total is None else comment_total,
                "startAt": 0,
            },
            "customfield_10050": "customer@example.org",
        },
    }


def myself(flavor: Flavor, zone: str = "Asia/Shanghai") -> dict[str, Any]:
    body = user(flavor, "casedesk")
    body["timeZone"] = zone
    return body


FIELDS = [
    {
        "id": "summary",
        "name": "Summary",
        "custom": False,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": ["summary"],
        "schema": {"type": "string", "system": "summary"},
    },
    {
        "id": "customfield_10050",
        "name": "Customer Email",
        "custom": True,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": ["cf[10050]", "Customer Email"],
        "schema": {
            "type": "string",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            "customId": 10050,
        },
    },
]


def keys(pages: list[list[JiraSearchResult]]) -> list[str | None]:
    return [i.key for page in pages for i in page]


def unreadable(raw: dict[str, Any], *names: str) -> dict[str, Any]:
    """The issue without these members (key, id) or fields, as a rewriting proxy might send it.
    Still contract-valid: IssueBean requires none of them and its fields are free-form."""
    broken = copy.deepcopy(raw)
    for name in names:
        del (broken if name in ("key", "id") else broken["fields"])[name]
    return broken


# -- connection values ------------------------------------------------------------------------


def test_connection_requires_user_on_cloud_and_hides_the_token() -> None:
    with pytest.raises(ValidationError, match="email"):
        connection("cloud", user=None)
    conn = connection("dc", user=None)
    assert TOKEN not in repr(conn) and TOKEN not in str(conn.model_dump())
    assert connection("cloud", url=BASE + "/").url == BASE
    with pytest.raises(ValidationError):
        connection("cloud", project="sup lower")
    with pytest.raises(ValidationError):
        connection("cloud", url="ftp://jira")


# -- search -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["cloud"])
def test_cloud_search_pages_by_token_with_named_fields_and_user_zone(
    mock: JiraMock, client: JiraClient
) -> None:
    mock.add("GET", "myself", myself("cloud", "Asia/Shanghai"))
    page1 = {
        "issues": [issue("cloud", 1), issue("cloud", 2)],
        "nextPageToken": "tok-2",
        "isLast": False,
    }
    page2 = {
        "issues": [issue("cloud", 3), issue("cloud", 4)],
        "nextPageToken": "tok-3",
        "isLast": False,
    }
    page3 = {"issues": [issue("cloud", 5)], "isLast": True}
    for page in (page1, page2, page3):
        mock.add("GET", "search/jql", page)

    watermark = datetime(2025, 3, 1, 2, 0, 30, tzinfo=UTC)  # 10:00:30 in Shanghai
    pages = list(client.search_updated_since(watermark, timedelta(minutes=2), page_size=2))

    assert keys(pages) == ["SUP-1", "SUP-2", "SUP-3", "SUP-4", "SUP-5"]
    searches = mock.calls("GET", "search/jql")
    assert len(searches) == 3
    first = mock.params(searches[0])
    # Minute precision, in the Jira user's zone, floored: 10:00:30 - 2 min -> 09:58.
    assert first["jql"] == [
        'project = "SUP" AND updated >= "2025-03-01 09:58" ORDER BY updated ASC, key ASC'
    ]
    fields = first["fields"][0].split(",")
    assert "summary" in fields and "comment" in fields and "*all" not in fields
    assert "nextPageToken" not in first
    assert mock.params(searches[1])["nextPageToken"] == ["tok-2"]
    assert mock.params(searches[2])["nextPageToken"] == ["tok-3"]
    assert not mock.calls(path="search"), "Cloud must never call the removed /search"
    assert client.request_count == 4

    one = pages[0][0]
    assert one.summary.startswith("登录失败")
    assert one.description_text == "Customer reports problem 1.\n\nSecond paragraph."
    assert one.status == "To Do" and one.status_category == "new"
    assert one.priority == "High" and one.labels == ("customer",) and one.components == ("Login",)
    assert one.updated.tzinfo is not None
    assert one.raw_fields["customfield_10050"] == "customer@example.org"


@pytest.mark.parametrize("flavor", ["dc"])
def test_dc_search_pages_by_start_at_and_total(mock: JiraMock, client: JiraClient) -> None:
    def page(start: int, numbers: list[int]) -> dict[str, Any]:
        return {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": 3,
            "total": 7,
            "issues": [issue("dc", n) for n in numbers],
        }

    # Each page after the first starts on the previous page's last issue (the shift check).
    mock.add("GET", "search", page(0, [1, 2, 3]))
    mock.add("GET", "search", page(2, [3, 4, 5]))
    mock.add("GET", "search", page(4, [5, 6, 7]))

    pages = list(client.search_updated_since(None, page_size=3))

    assert keys(pages) == [f"SUP-{n}" for n in range(1, 8)]
    searches = mock.calls("GET", "search")
    assert [mock.params(c)["startAt"] for c in searches] == [["0"], ["2"], ["4"]]
    assert mock.params(searches[0])["jql"] == ['project = "SUP" ORDER BY updated ASC, key ASC']
    assert client.request_count == 3  # no watermark: no /myself needed


@pytest.mark.parametrize("flavor", ["dc"])
def test_dc_search_steps_back_when_the_order_shifts(mock: JiraMock, client: JiraClient) -> None:
    """SUP-2 is updated while we page: it moves to the end and everything after it moves left.
    Plain offset paging would then skip SUP-4; the overlap check steps back and finds it."""
    moved = issue("dc", 2, updated=NOW)

    def page(start: int, items: list[dict[str, Any]], total: int = 6) -> dict[str, Any]:
        return {"startAt": start, "maxResults": 3, "total": total, "issues": items}

    mock.add("GET", "search", page(0, [issue("dc", n) for n in (1, 2, 3)]))
    # After the shift the order is 1 3 4 5 6 2': startAt 2 gives 4 5 6, not 3.
    mock.add("GET", "search", page(2, [issue("dc", n) for n in (4, 5, 6)]))
    mock.add("GET", "search", page(0, [issue("dc", n) for n in (1, 3, 4)]))
    mock.add("GET", "search", page(2, [issue("dc", n) for n in (4, 5, 6)]))
    mock.add("GET", "search", page(4, [issue("dc", 6), moved]))

    found = keys(list(client.search_updated_since(None, page_size=3)))

    assert sorted(set(found)) == sorted(f"SUP-{n}" for n in range(1, 7))
    assert found.count("SUP-2") == 2  # once as it was, once as updated
    starts = [mock.params(c)["startAt"][0] for c in mock.calls("GET", "search")]
    assert starts == ["0", "2", "0", "2", "4"]


def one_page(flavor: Flavor, items: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    if flavor == "cloud":
        return "search/jql", {"issues": items, "isLast": True}
    return "search", {"startAt": 0, "maxResults": 50, "total": len(items), "issues": items}


def test_an_unreadable_issue_stands_in_its_page_and_the_others_go_on(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    items = [
        issue(flavor, 1),
        unreadable(issue(flavor, 2), "updated"),
        unreadable(issue(flavor, 3), "key"),
        unreadable(issue(flavor, 4), "key", "id"),
        issue(flavor, 5),
    ]
    mock.add("GET", *one_page(flavor, items))

    [page] = list(client.search_updated_since(None))

    first, no_updated, no_key, nameless, last = page
    assert isinstance(first, JiraIssue) and isinstance(last, JiraIssue)
    assert (first.key, last.key) == ("SUP-1", "SUP-5")
    assert isinstance(no_updated, MalformedJiraIssue)
    assert (no_updated.ref, no_updated.reason) == ("SUP-2", "Jira sent the issue without 'updated'")
    assert no_updated.raw == items[1] and no_updated.id == "10002"
    assert isinstance(no_key, MalformedJiraIssue)
    assert (no_key.ref, no_key.reason) == ("issue id 10003", "Jira sent the issue without 'key'")
    assert isinstance(nameless, MalformedJiraIssue)
    assert nameless.ref == "search result 4 of its page"
    assert nameless.reason == "Jira sent the issue without 'key' and 'id'"

    # The same answer gives the same fingerprint (how the sync knows it recorded it already).
    [again] = list(client.search_updated_since(None))
    fingerprints = [r.fingerprint for r in page if isinstance(r, MalformedJiraIssue)]
    assert [r.fingerprint for r in again if isinstance(r, MalformedJiraIssue)] == fingerprints
    assert len(set(fingerprints)) == 3


def test_values_of_the_wrong_kind_make_one_issue_unreadable(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    bad_date = issue(flavor, 1)
    bad_date["fields"]["updated"] = "yesterday"
    bad_comment = issue(flavor, 2, comments=[comment(flavor, 1, "还是不行")])
    del bad_comment["fields"]["comment"]["comments"][0]["created"]
    mock.add("GET", *one_page(flavor, [bad_date, bad_comment, issue(flavor, 3)]))

    [[date_issue, comment_issue, fine]] = list(client.search_updated_since(None))

    assert isinstance(date_issue, MalformedJiraIssue) and date_issue.key == "SUP-1"
    assert date_issue.reason.startswith("unreadable issue value (updated: Input should be")
    assert isinstance(comment_issue, MalformedJiraIssue) and comment_issue.key == "SUP-2"
    assert comment_issue.reason.startswith("unreadable comment value (created: Input should be")
    assert isinstance(fine, JiraIssue) and fine.key == "SUP-3"


@pytest.mark.parametrize("flavor", ["dc"])
def test_dc_an_unreadable_issue_on_a_page_boundary_comes_once(
    mock: JiraMock, client: JiraClient
) -> None:
    broken = unreadable(issue("dc", 2), "updated")

    def page(start: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"startAt": start, "maxResults": 2, "total": 3, "issues": items}

    mock.add("GET", "search", page(0, [issue("dc", 1), broken]))
    mock.add("GET", "search", page(1, [broken, issue("dc", 3)]))

    pages = list(client.search_updated_since(None, page_size=2))

    assert keys(pages) == ["SUP-1", "SUP-2", "SUP-3"]
    assert isinstance(pages[0][1], MalformedJiraIssue)
    # Found again where it was: no step back.
    assert [mock.params(c)["startAt"] for c in mock.calls("GET", "search")] == [["0"], ["1"]]


def test_an_unreadable_issue_asked_for_by_key_is_a_jira_error(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    mock.add("GET", "issue/SUP-2", unreadable(issue(flavor, 2), "updated"))
    with pytest.raises(JiraError, match=r"issue SUP-2 .*without 'updated'") as caught:
        client.get_issue("SUP-2")
    assert caught.value.key == "SUP-2" and caught.value.url == BASE


def test_wrong_flavor_on_cloud_gets_410_and_a_clear_error(sleeper: Sleeper) -> None:
    """A Cloud site configured as 'dc' calls the removed /rest/api/2/search."""
    with responses.RequestsMock() as rsps:
        mock = JiraMock(rsps, "cloud")
        gone = {
            "errorMessages": [
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql "
                "API. A full migration guideline is available at "
                "https://developer.atlassian.com/changelog/#CHANGE-2046"
            ],
            "errors": {},
        }
        mock.add("GET", "/rest/api/2/search", gone, status=410)
        with (
            JiraClient(connection("dc"), sleep=sleeper) as client,
            pytest.raises(JiraGoneError, match="flavor") as caught,
        ):
            list(client.search_updated_since(None))
        assert "410" in str(caught.value) and "search/jql" in str(caught.value)
        assert sleeper.waits == []


def test_unknown_jql_is_a_request_error(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    bad = {"errorMessages": ["Field 'labelz' does not exist or you do not have permission."]}
    mock.add("GET", "search/jql" if flavor == "cloud" else "search", bad, status=400)
    with pytest.raises(JiraRequestError, match="labelz") as caught:
        client.find_issue_by_label("casedesk-C-1")
    assert caught.value.status == 400


# -- retries and failures ---------------------------------------------------------------------


def search_page(flavor: Flavor, numbers: list[int]) -> tuple[str, dict[str, Any]]:
    issues = [issue(flavor, n) for n in numbers]
    if flavor == "cloud":
        return "search/jql", {"issues": issues, "isLast": True}
    return "search", {"startAt": 0, "maxResults": 50, "total": len(issues), "issues": issues}


def test_429_with_retry_after_is_retried_then_succeeds(
    flavor: Flavor, mock: JiraMock, client: JiraClient, sleeper: Sleeper
) -> None:
    path, body = search_page(flavor, [1, 2])
    limited = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
    mock.add("GET", path, limited, status=429, headers={"Retry-After": "3"})
    mock.add("GET", path, body)

    assert keys(list(client.search_updated_since(None))) == ["SUP-1", "SUP-2"]
    assert sleeper.waits == [3.0]
    assert client.request_count == 2


def test_429_with_x_ratelimit_reset_waits_until_then(
    flavor: Flavor, mock: JiraMock, client: JiraClient, sleeper: Sleeper
) -> None:
    path, body = search_page(flavor, [1])
    reset = (NOW + timedelta(seconds=12)).isoformat()
    mock.add("GET", path, None, status=429, headers={"X-RateLimit-Reset": reset})
    mock.add("GET", path, body)

    list(client.search_updated_since(None))
    assert sleeper.waits == [12.0]


def test_503_then_success_and_backoff_without_headers(
    flavor: Flavor, mock: JiraMock, client: JiraClient, sleeper: Sleeper
) -> None:
    path, body = search_page(flavor, [1])
    mock.add("GET", path, None, status=503)
    mock.add("GET", path, None, status=503)
    mock.add("GET", path, body)

    list(client.search_updated_since(None))
    assert sleeper.waits == [1.0, 2.0]


def test_rate_limit_gives_up_after_bounded_retries(
    flavor: Flavor, mock: JiraMock, client: JiraClient, sleeper: Sleeper
) -> None:
    path, _ = search_page(flavor, [])
    mock.add("GET", path, None, status=429, headers={"Retry-After": "1"})

    with pytest.raises(JiraRateLimitError, match="after 3 retries"):
        list(client.search_updated_since(None))
    assert sleeper.waits == [1.0, 1.0, 1.0]
    assert client.request_count == 4


def test_rate_limit_longer_than_we_wait_fails_at_once(
    flavor: Flavor, mock: JiraMock, client: JiraClient, sleeper: Sleeper
) -> None:
    path, _ = search_page(flavor, [])
    mock.add("GET", path, None, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(JiraRateLimitError, match="3600") as caught:
        list(client.search_updated_since(None))
    assert sleeper.waits == []
    assert caught.value.retry_after == 3600.0  # type: ignore[attr-defined]


def test_401_is_a_clear_auth_error_without_retries_or_secrets(
    flavor: Flavor,
    mock: JiraMock,
    client: JiraClient,
    sleeper: Sleeper,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mock.add(
        "GET",
        "myself",
        {"errorMessages": ["You are not authenticated."], "errors": {}},
        status=401,
    )
    with pytest.raises(JiraAuthError) as caught:
        client.myself()
    message = str(caught.value)
    assert BASE in message
    assert (client.connection.user or "") in message
    assert TOKEN not in message and TOKEN not in caplog.text
    assert caught.value.url == BASE
    assert sleeper.waits == [] and client.request_count == 1


def test_html_instead_of_json_is_named(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    mock.rsps.add(
        "GET",
        f"{BASE}{mock.api}/myself",
        body="<html>Log in</html>",
        status=200,
        content_type="text/html",
    )
    with pytest.raises(JiraError, match="text/html, not JSON"):
        client.myself()


def test_unreachable_jira_is_a_connection_error(flavor: Flavor, client: JiraClient) -> None:
    # responses refuses any URL nobody registered, as a closed port would.
    with (
        responses.RequestsMock(),
        pytest.raises(JiraConnectionError, match=re.escape(f"cannot reach Jira at {BASE}")),
    ):
        client.myself()


# -- comments ---------------------------------------------------------------------------------


def test_more_than_20_comments_are_fetched_in_full(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    texts = [f"comment {n}" for n in range(45)]
    texts[44] = f"We fixed it.\n\n{client.comment_marker}"
    embedded = [comment(flavor, n, texts[n]) for n in range(20)]
    path, body = search_page(flavor, [])
    body["issues"] = [issue(flavor, 1, comments=embedded, comment_total=45)]
    mock.add("GET", path, body)
    mock.add(
        "GET",
        "issue/SUP-1/comment",
        {
            "startAt": 0,
            "maxResults": 100,
            "total": 45,
            "comments": [comment(flavor, n, texts[n]) for n in range(45)],
        },
    )

    [found] = next(iter(client.search_updated_since(None)))
    assert not found.has_all_comments and len(found.comments) == 20
    everything = client.comments(found)

    assert [c.body_text for c in everything] == texts
    assert [c.is_ours for c in everything] == [False] * 44 + [True]
    [call] = mock.calls("GET", "issue/SUP-1/comment")
    assert mock.params(call)["startAt"] == ["0"] and mock.params(call)["orderBy"] == ["created"]


def test_comments_already_embedded_cost_no_request(flavor: Flavor, client: JiraClient) -> None:
    raw = issue(flavor, 1, comments=[comment(flavor, 1, "hi")])
    found = client._issue(raw, {})
    assert client.comments(found)[0].body_text == "hi"
    assert client.request_count == 0


def test_comment_pages_are_followed(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    all_comments = [comment(flavor, n, f"c{n}") for n in range(150)]
    for start in (0, 100):
        mock.add(
            "GET",
            "issue/SUP-1/comment",
            {
                "startAt": start,
                "maxResults": 100,
                "total": 150,
                "comments": all_comments[start : start + 100],
            },
        )
    assert len(client.comments("SUP-1")) == 150
    starts = [mock.params(c)["startAt"] for c in mock.calls("GET", "issue/SUP-1/comment")]
    assert starts == [["0"], ["100"]]


# -- writing ----------------------------------------------------------------------------------


def test_create_issue_sends_the_flavors_rich_text(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    mock.add("GET", "field", FIELDS)
    mock.add(
        "POST",
        "issue",
        {"id": "10042", "key": "SUP-42", "self": f"{BASE}/rest/api/2/issue/10042"},
        status=201,
    )
    ref = client.create_issue(
        "发票金额不正确",
        "Line one\nline two\n\nParagraph two",
        priority="High",
        labels=["casedesk-C-7"],
        components=["Billing"],
        custom={"Customer Email": "wang@example.cn"},
    )
    assert (ref.key, ref.id) == ("SUP-42", "10042")
    [call] = mock.calls("POST", "issue")
    sent = json.loads(call.request.body)["fields"]
    assert sent["project"] == {"key": "SUP"} and sent["issuetype"] == {"name": "Task"}
    assert sent["priority"] == {"name": "High"} and sent["components"] == [{"name": "Billing"}]
    assert sent["customfield_10050"] == "wang@example.cn"
    if flavor == "cloud":
        assert sent["description"]["type"] == "doc"
        assert adf_to_text(sent["description"]) == "Line one\nline two\n\nParagraph two"
    else:
        assert sent["description"] == "Line one\nline two\n\nParagraph two"


def test_labels_with_spaces_are_refused_before_sending(flavor: Flavor, client: JiraClient) -> None:
    with pytest.raises(ValueError, match="spaces"):
        client.create_issue("s", "d", labels=["two words"])
    assert client.request_count == 0


def test_add_comment_carries_the_marker(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    reply = comment(flavor, 1, f"Please retry.\n\n{client.comment_marker} C-7")
    mock.add("POST", "issue/SUP-1/comment", reply, status=201)

    written = client.add_comment("SUP-1", "Please retry.", marker=f"{client.comment_marker} C-7")

    assert written.is_ours
    [call] = mock.calls("POST", "issue/SUP-1/comment")
    body = json.loads(call.request.body)["body"]
    assert adf_to_text(body).endswith(f"{client.comment_marker} C-7")
    with pytest.raises(ValueError, match="imported back"):
        client.add_comment("SUP-1", "x", marker="[other]")


def transitions_body(flavor: Flavor) -> dict[str, Any]:
    def one(tid: str, name: str, target: str) -> dict[str, Any]:
        return {
            "id": tid,
            "name": name,
            "to": {
                "self": f"{BASE}/rest/api/2/status/3",
                "name": target,
                "id": "3",
                "statusCategory": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
            },
        }

    return {
        "transitions": [one("21", "Start Progress", "In Progress"), one("31", "Resolve", "Done")]
    }


def test_transition_by_name(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    mock.add("GET", "issue/SUP-1/transitions", transitions_body(flavor))
    mock.add("POST", "issue/SUP-1/transitions", None, status=204)

    client.transition("SUP-1", "resolve")

    [call] = mock.calls("POST", "issue/SUP-1/transitions")
    assert json.loads(call.request.body) == {"transition": {"id": "31"}}


def test_unknown_transition_names_what_is_available(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    mock.add("GET", "issue/SUP-1/transitions", transitions_body(flavor))
    with pytest.raises(JiraTransitionError, match="Resolve, Start Progress"):
        client.transition("SUP-1", "Close")
    assert not mock.calls("POST")


def test_update_fields_resolves_custom_field_names(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    mock.add("GET", "field", FIELDS)
    mock.add("PUT", "issue/SUP-1", None, status=204)

    client.update_fields("SUP-1", {"Customer Email": "a@b.c", "labels": ["x"], "summary": "s"})

    [call] = mock.calls("PUT", "issue/SUP-1")
    assert json.loads(call.request.body) == {
        "fields": {"customfield_10050": "a@b.c", "labels": ["x"], "summary": "s"}
    }


def test_custom_fields_are_read_by_name(flavor: Flavor, mock: JiraMock, sleeper: Sleeper) -> None:
    path, body = search_page(flavor, [1])
    mock.add("GET", "field", FIELDS)
    mock.add("GET", path, body)
    with JiraClient(connection(flavor), custom_fields=["Customer Email"], sleep=sleeper) as client:
        [[found]] = list(client.search_updated_since(None))
    assert found.custom == {"Customer Email": "customer@example.org"}
    [search] = mock.calls("GET", path)
    assert "customfield_10050" in mock.params(search)["fields"][0].split(",")


def test_find_issue_by_label(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    path, body = search_page(flavor, [7])
    mock.add("GET", path, body)
    found = client.find_issue_by_label("casedesk-C-7")
    assert found is not None and found.key == "SUP-7"
    [call] = mock.calls("GET", path)
    assert mock.params(call)["jql"] == [
        'project = "SUP" AND labels = "casedesk-C-7" ORDER BY key ASC'
    ]


def test_issue_properties(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    mock.add("PUT", "issue/SUP-1/properties/casedesk", None, status=201)
    mock.add(
        "GET", "issue/SUP-1/properties/casedesk", {"key": "casedesk", "value": {"case": "C-7"}}
    )
    mock.add(
        "GET",
        "issue/SUP-1/properties/missing",
        {"errorMessages": ["The property with key 'missing' does not exist."], "errors": {}},
        status=404,
    )
    client.set_property("SUP-1", "casedesk", {"case": "C-7"})
    assert client.get_property("SUP-1", "casedesk") == {"case": "C-7"}
    assert client.get_property("SUP-1", "missing") is None


# -- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["cloud"])
def test_unknown_user_zone_widens_the_window(mock: JiraMock, client: JiraClient) -> None:
    mock.add("GET", "myself", myself("cloud", "Mars/Olympus_Mons"))
    mock.add("GET", "search/jql", {"issues": [], "isLast": True})
    list(client.search_updated_since(NOW, timedelta(0)))
    [call] = mock.calls("GET", "search/jql")
    assert 'updated >= "2025-02-28 22:00"' in mock.params(call)["jql"][0]  # 12:00 UTC - 14 h


def test_ambiguous_local_time_is_moved_an_hour_earlier(sleeper: Sleeper) -> None:
    conn = connection("dc", time_zone="Europe/Berlin")
    with responses.RequestsMock() as rsps:
        mock = JiraMock(rsps, "dc")
        mock.add("GET", "search", {"startAt": 0, "maxResults": 50, "total": 0, "issues": []})
        with JiraClient(conn, sleep=sleeper) as client:
            # 2025-10-26 00:30 UTC is 02:30 CEST, a wall time that happens twice that night.
            list(
                client.search_updated_since(datetime(2025, 10, 26, 0, 30, tzinfo=UTC), timedelta(0))
            )
        [call] = mock.calls("GET", "search")
        assert 'updated >= "2025-10-26 01:30"' in mock.params(call)["jql"][0]
        assert client.request_count == 1  # zone configured: no /myself


def test_naive_watermark_is_refused(flavor: Flavor, client: JiraClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        list(client.search_updated_since(datetime(2025, 1, 1)))


# -- rich text --------------------------------------------------------------------------------


def test_adf_round_trip_and_richer_documents() -> None:
    text = "第一行\n第二行\n\nSecond paragraph"
    assert adf_to_text(text_to_adf(text)) == text
    doc = {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "T"}]},
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}
                        ],
                    },
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "mention", "attrs": {"id": "1", "text": "@Mia"}},
                                    {"type": "text", "text": " see "},
                                    {"type": "inlineCard", "attrs": {"url": "https://x.test"}},
                                ],
                            }
                        ],
                    },
                ],
            },
        ],
    }
    assert adf_to_text(doc) == "T\n\n- a\n- @Mia see https://x.test"
    assert adf_to_text("plain v2 text") == "plain v2 text"
    assert adf_to_text(None) == ""


@pytest.mark.parametrize("flavor", ["cloud"])
def test_issue_text_is_read_by_the_mappings_reader(mock: JiraMock, client: JiraClient) -> None:
    # Nodes the connector's former reader of its own dropped or ran together: one reader now.
    description = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "expand",
                "attrs": {"title": "Log"},
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": "first"}]},
                    {"type": "paragraph", "content": [{"type": "text", "text": "second"}]},
                ],
            },
            {
                "type": "mediaSingle",
                "content": [
                    {
                        "type": "media",
                        "attrs": {"id": "abc", "type": "file", "collection": "", "alt": "shot.png"},
                    }
                ],
            },
        ],
    }
    raw = issue("cloud", 1, comments=[comment("cloud", 1, "see the log")])
    raw["fields"]["description"] = description
    mock.add("GET", "search/jql", {"issues": [raw], "isLast": True})
    [[found]] = list(client.search_updated_since(None))
    assert found.description_text == adf_to_text(description) == "first\n\nsecond\n\n[shot.png]"
    assert found.comments[0].body_text == "see the log"


def test_assignable_users_are_searched_by_address_on_the_issue(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    found = [user(flavor, "mia")]
    mock.add("GET", "user/assignable/search", found)

    [mia] = client.assignable_users("SUP-1", address="mia@example.com")

    assert mia.email == "mia@example.com"
    [call] = mock.calls("GET", "user/assignable/search")
    wanted = "query" if flavor == "cloud" else "username"
    assert mock.params(call) == {
        wanted: ["mia@example.com"],
        "issueKey": ["SUP-1"],
        "maxResults": ["20"],
    }
    assert client.account(mia) == (mia.account_id if flavor == "cloud" else "mia")


def test_assignable_users_by_account(flavor: Flavor, mock: JiraMock, client: JiraClient) -> None:
    mock.add("GET", "user/assignable/search", [])
    assert client.assignable_users("SUP-1", account="5b10ac8d82e05b22cc7d4ef5") == []
    [call] = mock.calls("GET", "user/assignable/search")
    wanted = "accountId" if flavor == "cloud" else "username"
    assert mock.params(call)[wanted] == ["5b10ac8d82e05b22cc7d4ef5"]
    with pytest.raises(ValueError, match="an address or an account"):
        client.assignable_users("SUP-1")


def test_assign_names_the_user_as_the_flavor_does(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    mock.add("PUT", "issue/SUP-1/assignee", None, status=204)

    client.assign("SUP-1", "mia-account")

    [call] = mock.calls("PUT", "issue/SUP-1/assignee")
    field = "accountId" if flavor == "cloud" else "name"
    assert json.loads(call.request.body) == {field: "mia-account"}


def test_an_assignee_jira_refuses_is_a_request_error(
    flavor: Flavor, mock: JiraMock, client: JiraClient
) -> None:
    refusal = {"errorMessages": [], "errors": {"assignee": "User 'x' cannot be assigned issues."}}
    mock.add("PUT", "issue/SUP-1/assignee", refusal, status=400)
    with pytest.raises(JiraRequestError, match="cannot be assigned"):
        client.assign("SUP-1", "x")
