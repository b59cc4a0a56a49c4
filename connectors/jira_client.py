"""Jira connector: read support issues from Jira and write cases' replies back.

A thin wrapper around the ``jira`` library (pycontribs/jira): the library gives us the HTTP
session (auth, headers, timeouts) and a few calls; this module decides which endpoints are used
per deployment, what we ask for, how failures look to the rest of casedesk, and how often we
retry. It never reads the environment: the caller passes a :class:`JiraConnection`.

Dialects (see ../shared/jira/README.md):

* ``cloud``: REST v3 (rich text is Atlassian Document Format); search is ``/search/jql``
  with ``nextPageToken``/``isLast`` (the old ``/search`` answers 410); basic auth with the
  account's email and an API token.
* ``dc``: REST v2 (rich text is plain/wiki text); search is ``/search`` with
  ``startAt``/``maxResults``/``total``; bearer personal access token.

Behaviour worth knowing:

* Incremental reads: ``search_updated_since`` asks for ``updated >= watermark - overlap``.
  JQL has minute precision and reads dates in the *Jira user's* time zone, so the bound is
  floored to the minute in that zone (read once from ``/myself`` unless configured); callers
  must expect to see issues again and deduplicate on (key, updated).
* Offset paging on ``ORDER BY updated`` shifts when an issue is updated mid-sync (it moves to
  the end). On Data Center every page re-reads the previous page's last issue; if that issue
  is not where it was, we step back a page, so nothing is skipped (duplicates are dropped).
* Retries are ours: the library's own retries are switched off (``max_retries=0``), 429/503 are
  retried a bounded number of times, honouring ``Retry-After`` (seconds or HTTP date) or
  ``X-RateLimit-Reset`` (ISO time); 401/403 are never retried.
* A search result that cannot be read as an issue (no key, id or ``updated``; a value of the
  wrong type) comes out as a :class:`MalformedJiraIssue` in its page, with the reason, instead
  of ending the search: the sync records it as skipped and the page's other issues go on.
* Comments we write end with a marker line; ``JiraComment.is_ours`` recognises it so our own
  replies are not imported back as customer messages.
* Secrets: the token goes only to the session; nothing here logs headers, tokens or bodies.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from jira import JIRA, JIRAError
from jira.resilientsession import parse_errors
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from mapping.errors import ConfigError, JiraAuthError, JiraError, JiraRateLimitError
from mapping.jira_issue import adf_to_text

__all__ = [
    "DEFAULT_COMMENT_MARKER",
    "SEARCH_FIELDS",
    "JiraAuthError",
    "JiraClient",
    "JiraComment",
    "JiraConnection",
    "JiraConnectionError",
    "JiraError",
    "JiraForbiddenError",
    "JiraGoneError",
    "JiraIssue",
    "JiraIssueRef",
    "JiraNotFoundError",
    "JiraRateLimitError",
    "JiraRequestError",
    "JiraSearchResult",
    "JiraTransitionError",
    "JiraUser",
    "MalformedJiraIssue",
    "text_to_adf",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Flavor = Literal["cloud", "dc"]

DEFAULT_COMMENT_MARKER = "[casedesk]"
# What a sync reads: named fields only. "*all" would drag in every custom field of the site
# (hundreds on a big Cloud site) and slow every page down.
SEARCH_FIELDS: tuple[str, ...] = (
    "summary",
    "description",
    "status",
    "priority",
    "issuetype",
    "labels",
    "components",
    "assignee",
    "reporter",
    "created",
    "updated",
    "comment",
)
_COMMENT_PAGE = 100  # Jira's cap for GET .../comment pages
_MAX_UTC_OFFSET = timedelta(
    hours=14
)  # widest zone offset: the safe margin when the zone is unknown
_RETRYABLE = frozenset({429, 503})
_MAX_STEP_BACKS = 1000  # a search whose order keeps shifting this often is not converging


# -- errors beyond mapping.errors --------------------------------------------------------------


class JiraRequestError(JiraError):
    """Jira refused the request as invalid (400/409/422: bad JQL, a field it will not set)."""

    def __init__(
        self, message: str, *, url: str | None = None, key: str | None = None, status: int
    ) -> None:
        super().__init__(message, url=url, key=key)
        self.status = status


class JiraNotFoundError(JiraError):
    """404: no such issue, property or comment (or no permission to see it)."""


class JiraForbiddenError(JiraAuthError):
    """403: Jira knows the user, who lacks a permission this request needs (401, a
    `JiraAuthError` of its own, is a credential Jira does not accept)."""


class JiraGoneError(JiraError):
    """410: the endpoint was removed (on Cloud: the old /search); usually a wrong flavor."""


class JiraTransitionError(JiraError):
    """The issue has no transition of that name from its current status."""


class JiraConnectionError(JiraError):
    """Jira could not be reached (DNS, refused connection, timeout)."""


# -- values passed in and read out ------------------------------------------------------------


class JiraConnection(BaseModel):
    """Where and as whom to talk to Jira. Built by the caller from settings, never from env."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="Base URL, e.g. https://example.atlassian.net")
    flavor: Flavor
    user: str | None = Field(default=None, description="Cloud: the account's email address.")
    token: SecretStr = Field(description="Cloud: API token. Data Center: personal access token.")
    project: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,254}$", description="Project key, e.g. SUP")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")
    time_zone: str | None = Field(
        default=None,
        description="The Jira user's time zone, in which JQL dates are read. "
        "None: ask Jira (/myself) once.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {value!r}")
        if parts.query or parts.fragment:
            raise ValueError("the Jira URL must not carry a query or fragment")
        return value.strip().rstrip("/")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @model_validator(mode="after")
    def _cloud_needs_user(self) -> JiraConnection:
        if self.flavor == "cloud" and not self.user:
            raise ValueError("Jira Cloud authenticates with email + API token: set user")
        if not self.token.get_secret_value():
            raise ValueError("token is empty")
        return self

    @property
    def api_version(self) -> str:
        return "3" if self.flavor == "cloud" else "2"


class JiraUser(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_id: str | None = None  # Cloud
    name: str | None = None  # Data Center username
    display_name: str | None = None
    email: str | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> JiraUser | None:
        if not isinstance(raw, dict):
            return None
        return cls(
            account_id=raw.get("accountId"),
            name=raw.get("name"),
            display_name=raw.get("displayName"),
            email=raw.get("emailAddress"),
        )


class JiraComment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    author: JiraUser | None
    body_text: str
    created: datetime
    updated: datetime | None = None
    is_ours: bool = Field(description="Written by casedesk (carries our marker).")


class JiraIssueRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    id: str


class JiraIssue(BaseModel):
    """One issue as read by a search or a get; ``raw_fields`` keeps Jira's fields untouched."""

    model_config = ConfigDict(frozen=True)

    key: str
    id: str
    updated: datetime
    created: datetime | None = None
    summary: str = ""
    description_text: str = ""
    status: str | None = None
    status_category: str | None = Field(default=None, description="new, indeterminate, done")
    priority: str | None = None
    issuetype: str | None = None
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    assignee: JiraUser | None = None
    reporter: JiraUser | None = None
    custom: dict[str, Any] = Field(default_factory=dict, description="Custom fields by name.")
    comments: tuple[JiraComment, ...] = Field(default=(), description="As embedded by Jira.")
    comment_total: int = 0
    raw_fields: dict[str, Any] = Field(default_factory=dict)

    @property
    def has_all_comments(self) -> bool:
        """False when Jira embedded only the first page (search embeds at most 20)."""
        return len(self.comments) >= self.comment_total


class MalformedJiraIssue(BaseModel):
    """A search result that cannot be read as an issue; ``reason`` says why, ``raw`` is what
    Jira sent. It stands in its page so one bad issue does not end the whole search."""

    model_config = ConfigDict(frozen=True)

    key: str | None = None
    id: str | None = None
    position: int = Field(ge=0, description="Its place in the page Jira sent, from 0.")
    reason: str
    raw: Any = None

    @property
    def ref(self) -> str:
        """How to name it to a person: the key, else the id, else its place in the page."""
        if self.key:
            return self.key
        if self.id:
            return f"issue id {self.id}"
        return f"search result {self.position + 1} of its page"

    @property
    def fingerprint(self) -> str:
        """The same for the same answer from Jira, so a re-run recognises what it recorded."""
        canonical = json.dumps(self.raw, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


#: What a search page holds: issues, and what stood in their place but could not be read.
JiraSearchResult = JiraIssue | MalformedJiraIssue


# -- rich text --------------------------------------------------------------------------------
# Reading rich text is mapping.jira_issue.adf_to_text (pure, one reader for the connector and
# the mapping); what we write is plain text made into the flavor's format here.


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document: blank lines split paragraphs, newlines hardBreaks."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()) if text.strip() else []:
        content: list[dict[str, Any]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


# -- the client -------------------------------------------------------------------------------


class JiraClient:
    """Reads and writes one Jira project. Not thread-safe: one client per flow run.

    ``custom_fields`` are custom field *names* (as shown in Jira) to read on every issue; they
    are resolved to ids through ``/field`` once. ``sleep`` and ``clock`` are injectable so tests
    neither wait nor depend on the wall clock.
    """

    def __init__(
        self,
        connection: JiraConnection,
        *,
        custom_fields: Sequence[str] = (),
        comment_marker: str = DEFAULT_COMMENT_MARKER,
        max_retries: int = 4,
        max_retry_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not comment_marker.strip():
            raise ValueError("comment_marker must not be blank")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.connection = connection
        self.comment_marker = comment_marker
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._custom_names = tuple(custom_fields)
        self._field_ids: dict[str, str] | None = None  # lower-cased name or id -> id
        self._zone: ZoneInfo | None = None
        self._zone_known = True
        self.request_count = 0
        self.requests_by_endpoint: Counter[str] = Counter()

        token = connection.token.get_secret_value()
        library_log = logging.getLogger("jira")
        level = library_log.level
        self._jira = JIRA(
            server=connection.url,
            options={"rest_api_version": connection.api_version},
            # Cloud: email + API token. DC: a personal access token as bearer.
            basic_auth=(str(connection.user), token) if connection.flavor == "cloud" else None,
            token_auth=token if connection.flavor == "dc" else None,
            # No request at construction: the flavor is configured, not probed, and failures
            # then surface from our calls with our error types.
            get_server_info=False,
            validate=False,
            # The library would retry 429/503 (and POSTs on connection errors) with its own
            # sleeps; we do that ourselves, bounded and testable.
            max_retries=0,
            timeout=connection.timeout,
        )
        # JIRA() sets the "jira" logger's level; the application's logging config should rule.
        library_log.setLevel(level)
        self._session = self._jira._session
        self._session.hooks["response"].append(self._count_response)

    # -- plumbing ----------------------------------------------------------------------------

    def close(self) -> None:
        self._jira.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _count_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.request_count += 1
        self.requests_by_endpoint[f"{response.request.method} {urlsplit(response.url).path}"] += 1

    def _url(self, path: str) -> str:
        return f"{self.connection.url}/rest/api/{self.connection.api_version}/{path}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        key: str | None = None,
    ) -> Any:
        """One JSON request through the library's session, with our retries and errors."""
        data = None if body is None else json.dumps(body)

        def send() -> Any:
            response = self._session.request(
                method, self._url(path), params=dict(params or {}), data=data
            )
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                # e.g. an HTML login or proxy page answered 200: not "unreachable", not JSON.
                raise JiraError(
                    f"Jira at {self.connection.url} answered {method} {path} with "
                    f"{response.headers.get('Content-Type', 'no content type')}, not JSON",
                    url=self.connection.url,
                    key=key,
                ) from None

        return self._call(f"{method} {path}", send, key=key)

    def _call(self, what: str, action: Callable[[], T], *, key: str | None = None) -> T:
        """Run ``action``; retry 429/503 (bounded, honouring the server's wait); map errors."""
        attempt = 0
        while True:
            try:
                return action()
            except JIRAError as error:
                status = error.status_code
                if status in _RETRYABLE:
                    wait = self._retry_wait(error.response, attempt)
                    if attempt < self.max_retries and wait <= self.max_retry_wait:
                        attempt += 1
                        log.warning(
                            "Jira answered %s to %s; retry %d of %d in %.1f s",
                            status,
                            what,
                            attempt,
                            self.max_retries,
                            wait,
                        )
                        self._sleep(wait)
                        continue
                    raise self._rate_limited(status, what, key, attempt, wait) from error
                raise self._translate(error, what, key) from error
            except requests.RequestException as error:
                # The exception text names the host and the reason, never credentials.
                raise JiraConnectionError(
                    f"cannot reach Jira at {self.connection.url} for {what}: "
                    f"{type(error).__name__}: {error}",
                    url=self.connection.url,
                    key=key,
                ) from error

    def _retry_wait(self, response: requests.Response | None, attempt: int) -> float:
        """Seconds to wait before retrying: what the server asked for, else 1, 2, 4 ... s."""
        headers = response.headers if response is not None else {}
        retry_after = headers.get("Retry-After")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    return max(0.0, (when - self._clock()).total_seconds())
        reset = headers.get("X-RateLimit-Reset")
        if reset:
            try:
                when = datetime.fromisoformat(reset.replace("Z", "+00:00"))
            except ValueError:
                log.debug("ignoring unparseable X-RateLimit-Reset %r", reset)
            else:
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - self._clock()).total_seconds())
        return float(2**attempt)

    def _rate_limited(
        self, status: int, what: str, key: str | None, attempts: int, wait: float
    ) -> JiraRateLimitError:
        why = (
            f"asks to wait {wait:.0f} s, more than max_retry_wait={self.max_retry_wait:.0f} s"
            if wait > self.max_retry_wait
            else f"after {attempts} retries"
        )
        error = JiraRateLimitError(
            f"Jira at {self.connection.url} kept answering {status} to {what} ({why}); "
            "the next run resumes from the stored watermark",
            url=self.connection.url,
            key=key,
        )
        error.retry_after = wait  # type: ignore[attr-defined]
        return error

    def _translate(self, error: JIRAError, what: str, key: str | None) -> JiraError:
        status = error.status_code
        messages = (
            "; ".join(parse_errors(error.response))[:500] if error.response is not None else ""
        )
        detail = f": {messages}" if messages else ""
        url = self.connection.url
        if status in (401, 403):
            who = self.connection.user or "the personal access token's user"
            hint = (
                "check the email and API token"
                if self.connection.flavor == "cloud"
                else "check the personal access token"
            )
            kind = JiraForbiddenError if status == 403 else JiraAuthError
            return kind(
                f"Jira at {url} answered {status} to {what} as {who!r}{detail}; {hint} "
                "and the user's project permissions",
                url=url,
                key=key,
            )
        if status == 404:
            return JiraNotFoundError(f"Jira at {url}: {what} not found{detail}", url=url, key=key)
        if status == 410:
            hint = (
                " (Jira Cloud removed /rest/api/*/search: is this a Cloud site configured "
                "with flavor='dc'?)"
                if "search" in what
                else ""
            )
            return JiraGoneError(
                f"Jira at {url} answered 410 Gone to {what}{detail}{hint}", url=url, key=key
            )
        if status is not None and 400 <= status < 500:
            return JiraRequestError(
                f"Jira at {url} refused {what} ({status}){detail}", url=url, key=key, status=status
            )
        return JiraError(f"Jira at {url} failed {what} ({status}){detail}", url=url, key=key)

    # -- what we know about the site ---------------------------------------------------------

    def myself(self) -> dict[str, Any]:
        """The authenticated user (also the cheapest way to check credentials)."""
        result: dict[str, Any] = self._request("GET", "myself")
        return result

    def _jql_zone(self) -> ZoneInfo:
        """The zone JQL dates are read in: configured, else the Jira user's profile zone."""
        if self._zone is None:
            name = self.connection.time_zone or self.myself().get("timeZone")
            try:
                self._zone = ZoneInfo(str(name))
            except (ZoneInfoNotFoundError, ValueError):
                # Unknown zone: query in UTC and widen the window by the largest offset, so we
                # can only read too much, never too little.
                log.warning("Jira user time zone %r unknown; widening JQL windows by 14 h", name)
                self._zone = ZoneInfo("UTC")
                self._zone_known = False
        return self._zone

    def _fields_by_name(self) -> dict[str, str]:
        if self._field_ids is None:
            fields: list[dict[str, Any]] = self._request("GET", "field")
            ids: dict[str, str] = {}
            for entry in fields:
                ids.setdefault(str(entry.get("name", "")).lower(), entry["id"])
                ids[str(entry["id"]).lower()] = entry["id"]
            self._field_ids = ids
        return self._field_ids

    def _field_id(self, name: str) -> str:
        found = self._fields_by_name().get(name.lower())
        if found is None:
            raise ConfigError(
                f"Jira at {self.connection.url} has no field named {name!r}",
                key="jira.custom_fields",
            )
        return found

    def _custom_ids(self) -> dict[str, str]:
        """Configured custom field name -> id (one /field request, only if any are configured)."""
        return {name: self._field_id(name) for name in self._custom_names}

    # -- reading -----------------------------------------------------------------------------

    @staticmethod
    def _quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _since_jql(self, watermark: datetime | None, overlap: timedelta) -> str:
        jql = f"project = {self._quote(self.connection.project)}"
        if watermark is not None:
            if watermark.tzinfo is None:
                raise ValueError("watermark must be timezone-aware")
            zone = self._jql_zone()
            since = watermark - overlap - (timedelta() if self._zone_known else _MAX_UTC_OFFSET)
            local = since.astimezone(zone)
            if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
                # Ambiguous wall time (clocks going back): Jira may read the later instant.
                local = (since - timedelta(hours=1)).astimezone(zone)
            jql += f" AND updated >= {self._quote(local.strftime('%Y-%m-%d %H:%M'))}"
        return jql + " ORDER BY updated ASC, key ASC"

    def search_updated_since(
        self,
        watermark: datetime | None,
        overlap: timedelta = timedelta(minutes=2),
        page_size: int = 100,
    ) -> Generator[list[JiraSearchResult], None, None]:
        """Pages of the project's issues updated at or after ``watermark - overlap``, oldest
        first (None: all issues). An issue can come again in a later run, never twice in one.
        A result that cannot be read is a :class:`MalformedJiraIssue` in its page."""
        if page_size < 2:
            raise ValueError("page_size must be at least 2")
        custom = self._custom_ids()
        fields = ",".join([*SEARCH_FIELDS, *custom.values()])
        jql = self._since_jql(watermark, overlap)
        log.info("Jira search: %s", jql)
        pages = (
            self._pages_by_token(jql, fields, page_size)
            if self.connection.flavor == "cloud"
            else self._pages_by_offset(jql, fields, page_size)
        )
        seen: dict[str, str] = {}  # key -> updated, to drop what a shifted page repeats
        for raw_page in pages:
            fresh: list[JiraSearchResult] = []
            for position, raw in enumerate(raw_page):
                key, stamp = _stamp(raw)
                # Without a key a result cannot be told from another: never dropped as a repeat.
                if key is not None:
                    if seen.get(key) == stamp:
                        continue
                    seen[key] = stamp
                fresh.append(self._read_issue(raw, custom, position))
            if fresh:
                yield fresh

    def _pages_by_token(self, jql: str, fields: str, page_size: int) -> Iterator[list[Any]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"jql": jql, "maxResults": page_size, "fields": fields}
            if token:
                params["nextPageToken"] = token
            data = self._request("GET", "search/jql", params=params)
            yield data.get("issues", [])
            next_token = data.get("nextPageToken")
            if data.get("isLast", next_token is None) or not next_token:
                return
            if next_token == token:
                raise JiraError(
                    f"Jira at {self.connection.url} returned the same nextPageToken twice",
                    url=self.connection.url,
                )
            token = next_token

    def _pages_by_offset(self, jql: str, fields: str, page_size: int) -> Iterator[list[Any]]:
        seen: set[tuple[str | None, str]] = set()
        start = 0
        overlapping = False  # whether the page at ``start`` should begin with an issue we saw
        step_backs = 0
        while True:
            data = self._request(
                "GET",
                "search",
                params={"jql": jql, "startAt": start, "maxResults": page_size, "fields": fields},
            )
            issues: list[Any] = data.get("issues", [])
            if overlapping and issues and _stamp(issues[0]) not in seen:
                # Each page starts on the previous page's last issue. Not finding a known issue
                # there means the ordering shifted left (an issue before it was updated and
                # moved to the end): step back a page so the shifted issues are not skipped.
                step_backs += 1
                if step_backs > _MAX_STEP_BACKS:
                    raise JiraError(
                        f"Jira at {self.connection.url} kept reordering search results while "
                        f"paging ({step_backs} step-backs); giving up this run",
                        url=self.connection.url,
                    )
                log.info("Jira ordering shifted during paging; stepping back from %d", start)
                start = max(0, start - max(1, int(data.get("maxResults") or page_size) - 1))
                overlapping = start > 0
                continue
            seen.update(_stamp(raw) for raw in issues)
            yield issues
            end = start + len(issues)
            if not issues or end >= int(data.get("total", 0)):
                return
            # Re-read the last issue (the overlap check above) unless the page was a single one.
            overlapping = len(issues) > 1
            start = end - 1 if overlapping else end

    def _read_issue(
        self, raw: Any, custom: Mapping[str, str], position: int = 0
    ) -> JiraSearchResult:
        """The issue, or why it cannot be read (never KeyError: one bad issue is not fatal)."""
        reason = _missing_members(raw)
        if reason is None:
            try:
                return self._issue(raw, custom)
            except ValidationError as error:
                reason = _unreadable_values(error)
        members = raw if isinstance(raw, Mapping) else {}
        key, issue_id = members.get("key"), members.get("id")
        malformed = MalformedJiraIssue(
            key=str(key) if key else None,
            id=str(issue_id) if issue_id else None,
            position=position,
            reason=reason,
            raw=raw,
        )
        log.warning("Jira issue %s cannot be read: %s", malformed.ref, reason)
        return malformed

    def _readable(self, result: JiraSearchResult) -> JiraIssue:
        """Where one issue was asked for, an unreadable one is an error, not a result."""
        if isinstance(result, MalformedJiraIssue):
            raise JiraError(
                f"Jira at {self.connection.url} sent issue {result.ref} in a form casedesk "
                f"cannot read: {result.reason}",
                url=self.connection.url,
                key=result.key,
            )
        return result

    def _issue(self, raw: Mapping[str, Any], custom: Mapping[str, str]) -> JiraIssue:
        fields: dict[str, Any] = dict(raw.get("fields") or {})
        status = fields.get("status") or {}
        page = fields.get("comment") or {}
        comments = tuple(self._comment(c) for c in page.get("comments", []))
        return JiraIssue(
            key=raw["key"],
            id=str(raw["id"]),
            updated=fields["updated"],
            created=fields.get("created"),
            summary=fields.get("summary") or "",
            description_text=adf_to_text(fields.get("description")),
            status=status.get("name"),
            status_category=(status.get("statusCategory") or {}).get("key"),
            priority=(fields.get("priority") or {}).get("name"),
            issuetype=(fields.get("issuetype") or {}).get("name"),
            labels=tuple(fields.get("labels") or ()),
            components=tuple(c.get("name", "") for c in fields.get("components") or ()),
            assignee=JiraUser.from_raw(fields.get("assignee")),
            reporter=JiraUser.from_raw(fields.get("reporter")),
            custom={name: fields.get(field_id) for name, field_id in custom.items()},
            comments=comments,
            comment_total=int(page.get("total", len(comments))),
            raw_fields=fields,
        )

    def _comment(self, raw: Mapping[str, Any]) -> JiraComment:
        text = adf_to_text(raw.get("body"))
        comment_id = raw.get("id")
        # Validated, not indexed: a comment without id or created is a ValidationError that
        # names the field (the issue is then unreadable), not a KeyError.
        return JiraComment.model_validate(
            {
                "id": None if comment_id is None else str(comment_id),
                "author": JiraUser.from_raw(raw.get("author")),
                "body_text": text,
                "created": raw.get("created"),
                "updated": raw.get("updated"),
                "is_ours": self.comment_marker in text,
            }
        )

    def get_issue(self, key: str) -> JiraIssue:
        custom = self._custom_ids()
        raw = self._request(
            "GET",
            f"issue/{key}",
            params={"fields": ",".join([*SEARCH_FIELDS, *custom.values()])},
            key=key,
        )
        return self._readable(self._read_issue(raw, custom))

    def comments(self, issue: JiraIssue | str) -> list[JiraComment]:
        """All comments, oldest first. No request when the issue already embeds all of them."""
        if isinstance(issue, JiraIssue) and issue.has_all_comments:
            return list(issue.comments)
        key = issue.key if isinstance(issue, JiraIssue) else issue
        result: list[JiraComment] = []
        while True:
            data = self._request(
                "GET",
                f"issue/{key}/comment",
                params={"startAt": len(result), "maxResults": _COMMENT_PAGE, "orderBy": "created"},
                key=key,
            )
            page = data.get("comments", [])
            result.extend(self._comment(c) for c in page)
            if not page or len(result) >= int(data.get("total", 0)):
                return result

    def find_issue_by_label(self, label: str) -> JiraIssue | None:
        """The project's issue carrying ``label`` (the oldest if, wrongly, several do)."""
        _check_label(label)
        custom = self._custom_ids()
        jql = (
            f"project = {self._quote(self.connection.project)} AND labels = {self._quote(label)}"
            " ORDER BY key ASC"
        )
        fields = ",".join([*SEARCH_FIELDS, *custom.values()])
        if self.connection.flavor == "cloud":
            params: dict[str, Any] = {"jql": jql, "maxResults": 2, "fields": fields}
            issues = self._request("GET", "search/jql", params=params).get("issues", [])
        else:
            params = {"jql": jql, "startAt": 0, "maxResults": 2, "fields": fields}
            issues = self._request("GET", "search", params=params).get("issues", [])
        if len(issues) > 1:
            log.warning("several Jira issues carry label %s; using %s", label, _stamp(issues[0])[0])
        return self._readable(self._read_issue(issues[0], custom)) if issues else None

    def get_property(self, key: str, name: str) -> Any | None:
        """An issue property's value, or None when the issue has no such property."""
        try:
            data = self._request("GET", f"issue/{key}/properties/{name}", key=key)
        except JiraNotFoundError:
            return None
        return data.get("value") if isinstance(data, dict) else None

    # -- writing -----------------------------------------------------------------------------

    def _rich(self, text: str) -> Any:
        return text_to_adf(text) if self.connection.flavor == "cloud" else text

    def _field_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Friendly values (priority name, component names, text) as Jira's field JSON."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "description":
                out[name] = None if value is None else self._rich(str(value))
            elif name == "priority":
                out[name] = {"name": value} if isinstance(value, str) else value
            elif name == "components":
                out[name] = [{"name": c} if isinstance(c, str) else c for c in value]
            elif name == "labels":
                labels = list(value)
                for label in labels:
                    _check_label(label)
                out[name] = labels
            elif name in ("summary", "assignee") or name.startswith("customfield_"):
                out[name] = value
            else:
                out[self._field_id(name)] = value
        return out

    def create_issue(
        self,
        summary: str,
        description: str,
        *,
        priority: str | None = None,
        labels: Sequence[str] = (),
        components: Sequence[str] = (),
        issue_type: str = "Task",
        custom: Mapping[str, Any] | None = None,
        assignee: str | None = None,
    ) -> JiraIssueRef:
        """Create an issue in the project; ``custom`` maps custom field names to values;
        ``assignee`` is an account (see `account`): without one, Jira applies the project's
        default assignee, if it has one."""
        values: dict[str, Any] = {"summary": summary, "description": description}
        if priority:
            values["priority"] = priority
        if labels:
            values["labels"] = labels
        if components:
            values["components"] = components
        values.update(custom or {})
        fields = self._field_values(values)
        fields["project"] = {"key": self.connection.project}
        fields["issuetype"] = {"name": issue_type}
        if assignee is not None:
            fields["assignee"] = self._user_ref(assignee)
        # Retried on 429/503 like any call: Jira sends those before doing any work, so a
        # retry does not create the issue twice.
        data = self._request("POST", "issue", body={"fields": fields})
        ref = JiraIssueRef(key=data["key"], id=str(data["id"]))
        log.info("created Jira issue %s", ref.key)
        return ref

    def add_comment(self, key: str, text: str, marker: str | None = None) -> JiraComment:
        """Add a comment ending with ``marker`` (default: the client's) on its own line."""
        marker = marker or self.comment_marker
        if self.comment_marker not in marker:
            raise ValueError(
                f"marker {marker!r} must contain the client's comment_marker "
                f"{self.comment_marker!r}, or the comment would be imported back"
            )
        body = f"{text.rstrip()}\n\n{marker}"
        data = self._request(
            "POST", f"issue/{key}/comment", body={"body": self._rich(body)}, key=key
        )
        return self._comment(data)

    def transition(self, key: str, transition_name: str) -> None:
        """Move the issue through the transition of that name (case-insensitive)."""
        data = self._request("GET", f"issue/{key}/transitions", key=key)
        available = data.get("transitions", [])
        wanted = transition_name.strip().casefold()
        for transition in available:
            if str(transition.get("name", "")).strip().casefold() == wanted:
                self._request(
                    "POST",
                    f"issue/{key}/transitions",
                    body={"transition": {"id": str(transition["id"])}},
                    key=key,
                )
                log.info("Jira issue %s: transition %r", key, transition.get("name"))
                return
        names = sorted(str(t.get("name")) for t in available)
        raise JiraTransitionError(
            f"Jira issue {key} has no transition {transition_name!r} from its current status "
            f"(available: {', '.join(names) or 'none'})",
            url=self.connection.url,
            key=key,
        )

    def update_fields(self, key: str, fields: Mapping[str, Any]) -> None:
        """Edit fields: system ids (summary, description, labels, priority, components) or
        custom field names; friendly values are converted (see ``create_issue``)."""
        if fields:
            self._request(
                "PUT", f"issue/{key}", body={"fields": self._field_values(fields)}, key=key
            )

    def assignable_users(
        self,
        key: str | None = None,
        *,
        project: str | None = None,
        address: str | None = None,
        account: str | None = None,
    ) -> list[JiraUser]:
        """The users issue `key` (or a new issue of `project`) can be assigned to that have
        this email `address`, or this `account` (see `account`): at most 20, in one request.

        Cloud matches an address against display names and addresses (as a prefix), even
        where a person's privacy settings leave the address out of the answer; Data Center
        matches usernames, names and addresses."""
        if (address is None) == (account is None) or (key is None) == (project is None):
            raise ValueError("give an issue key or a project, and an address or an account")
        if self.connection.flavor == "cloud":
            params = {"query": address} if address is not None else {"accountId": account}
        else:
            params = {"username": address if address is not None else account}
        where = {"issueKey": key} if key is not None else {"project": project}
        data = self._request(
            "GET",
            "user/assignable/search",
            params={**params, **where, "maxResults": 20},
            key=key,
        )
        users = [JiraUser.from_raw(raw) for raw in data] if isinstance(data, list) else []
        return [user for user in users if user is not None]

    def account(self, user: JiraUser) -> str | None:
        """How this site names `user` when assigning: the account id (Cloud) or the username
        (Data Center)."""
        return user.account_id if self.connection.flavor == "cloud" else user.name

    def _user_ref(self, account: str) -> dict[str, str]:
        return {"accountId" if self.connection.flavor == "cloud" else "name": account}

    def assign(self, key: str, account: str) -> None:
        """Make the user with this `account` (see `account`) the issue's assignee."""
        self._request("PUT", f"issue/{key}/assignee", body=self._user_ref(account), key=key)
        log.info("Jira issue %s: assigned", key)

    def set_property(self, key: str, name: str, value: Any) -> None:
        """Store a JSON value on the issue (invisible to people; up to 32 kB)."""
        self._request("PUT", f"issue/{key}/properties/{name}", body=value, key=key)


def _stamp(raw: Any) -> tuple[str | None, str]:
    """(key, updated) of a raw search result, whatever shape Jira sent it in."""
    if not isinstance(raw, Mapping):
        return None, ""
    fields = raw.get("fields")
    updated = fields.get("updated") if isinstance(fields, Mapping) else None
    key = raw.get("key")
    return (str(key) if key else None), str(updated)


def _missing_members(raw: Any) -> str | None:
    """Why a raw search result cannot be an issue at all, or None when it has what it needs."""
    if not isinstance(raw, Mapping):
        return f"Jira sent {type(raw).__name__} where an issue belongs"
    fields = raw.get("fields")
    present = {
        "key": raw.get("key"),
        "id": raw.get("id"),
        "updated": fields.get("updated") if isinstance(fields, Mapping) else None,
    }
    missing = [name for name, value in present.items() if value in (None, "")]
    if not missing:
        return None
    return "Jira sent the issue without " + " and ".join(f"'{name}'" for name in missing)


def _unreadable_values(error: ValidationError) -> str:
    """A ValidationError of JiraIssue or JiraComment as one line a person can act on."""
    what = "comment" if error.title == JiraComment.__name__ else "issue"
    problems = "; ".join(
        f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
        for detail in error.errors()
    )
    return f"unreadable {what} value ({problems})"


def _check_label(label: str) -> None:
    # Jira rejects labels with whitespace (400); say so before sending anything.
    if not label or re.search(r"\s", label):
        raise ValueError(f"Jira labels cannot be empty or contain spaces: {label!r}")
