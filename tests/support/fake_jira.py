"""A stateful fake Jira (Cloud or Data Center) served over real HTTP on 127.0.0.1.

Good enough to run our connector against end to end: it keeps projects, issues, comments,
transitions and issue properties, speaks the endpoints the connector uses in the flavour's own
dialect, and answers the way Jira does when asked something it will not do (400 for JQL it does
not understand, 401 for wrong credentials, 410 for the removed Cloud search, 429/503 on demand).

    with FakeJira("cloud", validate=True) as fake:
        fake.add_issues(200)
        client = JiraClient(JiraConnection(url=fake.url, flavor="cloud", user=fake.user, ...))
        ...
        assert not fake.contract_violations

Dialects:
    cloud  /rest/api/3 (and /rest/api/2); rich text is Atlassian Document Format on v3 and
           plain text on v2; search is /search/jql with nextPageToken/isLast (no total, default
           fields ``id``); /search answers 410; basic auth with email + API token.
    dc     /rest/api/2; plain-text rich text; search is /search with startAt/maxResults/total;
           bearer personal access token.

JQL: only what our client sends, parsed strictly: clauses ``project = X``, ``key = X``,
``labels = "x"``, ``status = "x"``, ``updated|created  >=|>|<=|<  "yyyy-MM-dd HH:mm"`` joined by
AND, then ``ORDER BY updated|created|key [ASC|DESC], ...``. Anything else answers 400 with a
Jira-style error, so a client that drifts is caught rather than humoured. Dates are read in the
fake's ``time_zone`` (Jira reads them in the searching user's zone) and timestamps are written in
it too, with Jira's ``+0000``-style offsets.

Paging is by offset into the live ordering (nextPageToken encodes the offset), as Jira's is: an
issue updated while a client pages through ``ORDER BY updated`` moves to the end and shifts the
rest left, which the client has to survive.

With ``validate=True`` every response served, and every JSON request body received, is checked
against Atlassian's OpenAPI description (tests/support/jira_openapi.py); problems are collected
in :attr:`FakeJira.contract_violations` (responses) and :attr:`FakeJira.request_violations`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

Flavor = Literal["cloud", "dc"]
Json = Any
_Params = dict[str, str]  # path parameters
_QueryArgs = dict[str, list[str]]  # query string, as parse_qs gives it
_Answer = tuple[int, Json]  # status, JSON body (None: no body)
_Endpoint = Callable[[str, _Params, _QueryArgs, Json], _Answer]

SEARCH_EMBEDDED_COMMENTS = 20  # Jira embeds at most this many comments in search results
COMMENT_PAGE_CAP = 100  # largest page GET .../comment returns, whatever maxResults asks
DEFAULT_MAX_PAGE = {"cloud": 100, "dc": 1000}  # search page caps when fields are requested
CLOUD_ID_ONLY_MAX_PAGE = 5000  # Cloud returns up to 5000 issues per page when only ids are asked

STATUS_CATEGORIES: dict[str, tuple[int, str, str]] = {
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
ISSUE_TYPES = {"Task": "10001", "Bug": "10004", "Story": "10002"}
DEFAULT_COMPONENTS = ("Billing", "Login", "API", "Mobile", "Web")
DEFAULT_STATUSES = {
    "To Do": "new",
    "In Progress": "indeterminate",
    "Waiting for customer": "indeterminate",
    "Done": "done",
}
DEFAULT_TRANSITIONS = {
    "Start Progress": "In Progress",
    "Wait for customer": "Waiting for customer",
    "Resolve": "Done",
    "Reopen": "To Do",
}
SYSTEM_FIELDS: tuple[tuple[str, str, str], ...] = (
    # (id, name, schema type)
    ("summary", "Summary", "string"),
    ("description", "Description", "string"),
    ("status", "Status", "status"),
    ("priority", "Priority", "priority"),
    ("issuetype", "Issue Type", "issuetype"),
    ("labels", "Labels", "array"),
    ("components", "Components", "array"),
    ("assignee", "Assignee", "user"),
    ("reporter", "Reporter", "user"),
    ("creator", "Creator", "user"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
    ("project", "Project", "project"),
    ("comment", "Comment", "comments-page"),
    ("resolution", "Resolution", "resolution"),
    ("resolutiondate", "Resolved", "datetime"),
)
EDITABLE_SYSTEM_FIELDS = frozenset(
    {"summary", "description", "labels", "priority", "components", "assignee"}
)


class _HttpError(Exception):
    """Answer the current request with Jira's error shape."""

    def __init__(
        self,
        status: int,
        messages: Sequence[str] = (),
        errors: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status}: {list(messages)} {dict(errors or {})}")
        self.status = status
        self.body = {"errorMessages": list(messages), "errors": dict(errors or {})}
        self.headers = dict(headers or {})


# -- rich text ------------------------------------------------------------------------------


def text_to_adf(text: str) -> dict[str, Json]:
    """Plain text as an Atlassian Document: blank lines split paragraphs, newlines hardBreaks."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()) if text.strip() else []:
        content: list[dict[str, Json]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_to_text(node: Json) -> str:
    """The text of an Atlassian Document (what a person would read, without formatting)."""
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind in {"mention", "emoji"}:
        return str(node.get("attrs", {}).get("text", ""))
    children = [adf_to_text(child) for child in node.get("content", [])]
    if kind in {"doc", "bulletList", "orderedList", "blockquote", "panel", "table"}:
        return "\n\n".join(c for c in children if c)
    return "".join(children)


def _is_adf(value: Json) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and "content" in value


# -- state ------------------------------------------------------------------------------------


@dataclass
class FakeUser:
    account_id: str
    name: str
    display_name: str
    email: str
    time_zone: str = "UTC"


@dataclass
class FakeComment:
    id: int
    author: FakeUser
    body: str | dict[str, Json]  # plain text or ADF, as it was written
    created: datetime
    updated: datetime


@dataclass
class FakeIssue:
    id: int
    key: str
    project: str
    summary: str
    description: str | dict[str, Json] | None
    status: str
    priority: str
    issuetype: str
    labels: list[str]
    components: list[str]
    assignee: FakeUser | None
    reporter: FakeUser
    created: datetime
    updated: datetime
    resolution_date: datetime | None = None
    custom: dict[str, Json] = field(default_factory=dict)
    comments: list[FakeComment] = field(default_factory=list)
    properties: dict[str, Json] = field(default_factory=dict)
    withheld: frozenset[str] = frozenset()  # members or fields left out when rendered


@dataclass
class FakeProject:
    id: int
    key: str
    name: str
    components: list[str]
    next_number: int = 1


@dataclass
class Fault:
    status: int
    remaining: int
    headers: dict[str, str]
    body: Json
    method: str | None
    path: str | None  # a path prefix, e.g. "/rest/api/3/search"


@dataclass
class CustomField:
    id: str
    name: str
    kind: str  # "string" | "number" | "array"


# -- JQL --------------------------------------------------------------------------------------

_JQL_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')'
    r"|(?P<op>>=|<=|!=|!~|=|>|<|~)"
    r"|(?P<punct>[(),])"
    r"|(?P<word>[^\s\"'(),=<>!~]+))"
)
_JQL_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")
_JQL_DATE_ERROR = (
    "Date value '{value}' for field '{field}' is invalid. Valid formats include: "
    "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
    "e.g. '-5d', '4w 2d'."
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    quoted: bool = False


def _tokenize(jql: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    jql = jql.rstrip()
    while pos < len(jql):
        match = _JQL_TOKEN.match(jql, pos)
        if match is None or match.end() == pos:
            raise _HttpError(400, [f"Error in the JQL Query: unexpected character at {pos}."])
        pos = match.end()
        if match.group("string") is not None:
            raw = match.group("string")[1:-1]
            tokens.append(_Token("value", re.sub(r"\\(.)", r"\1", raw), quoted=True))
        elif match.group("op") is not None:
            tokens.append(_Token("op", match.group("op")))
        elif match.group("punct") is not None:
            tokens.append(_Token("punct", match.group("punct")))
        else:
            tokens.append(_Token("value", match.group("word")))
    return tokens


@dataclass(frozen=True)
class _ParsedJql:
    predicates: tuple[Callable[[FakeIssue], bool], ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def _issue_number(issue: FakeIssue) -> tuple[str, int]:
    return issue.project, int(issue.key.rsplit("-", 1)[1])


# -- the server -------------------------------------------------------------------------------


class FakeJira:
    """A fake Jira on a free port of 127.0.0.1; use as a context manager or start()/stop()."""

    def __init__(
        self,
        flavor: Flavor = "cloud",
        *,
        user: str | None = None,
        token: str = "fake-api-token-not-a-secret",
        project: str = "SUP",
        time_zone: str = "UTC",
        clock: Callable[[], datetime] | None = None,
        validate: bool = False,
        max_page_size: int | None = None,
    ) -> None:
        if flavor not in ("cloud", "dc"):
            raise ValueError(f"flavor must be 'cloud' or 'dc', not {flavor!r}")
        self.flavor: Flavor = flavor
        self.user = user or ("casedesk@example.com" if flavor == "cloud" else "casedesk")
        self.token = token
        self.time_zone = time_zone
        self._zone = ZoneInfo(time_zone)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.validate = validate
        self.max_page_size = max_page_size or DEFAULT_MAX_PAGE[flavor]
        self.default_project = project

        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(10000)
        self._comment_ids = itertools.count(10000)
        self._version = 0  # bumped on every change; keys the search cache
        self._search_cache: dict[tuple[str, int], list[FakeIssue]] = {}

        self.projects: dict[str, FakeProject] = {}
        self.issues: dict[str, FakeIssue] = {}  # by key
        self._issues_by_id: dict[str, FakeIssue] = {}
        self.statuses: dict[str, str] = dict(DEFAULT_STATUSES)  # name -> category key
        self.transitions: dict[str, str] = dict(DEFAULT_TRANSITIONS)  # name -> target status
        self.custom_fields: dict[str, CustomField] = {}
        self._faults: list[Fault] = []

        self.requests: Counter[tuple[str, str]] = Counter()
        self.contract_violations: list[str] = []
        self.request_violations: list[str] = []

        self.me = FakeUser(
            account_id="5b10a2844c20165700ede21g",
            name=self.user if flavor == "dc" else "casedesk",
            display_name="Casedesk Bot",
            email=self.user if flavor == "cloud" else "casedesk@example.com",
            time_zone=time_zone,
        )
        self.people = [
            self.me,
            FakeUser("5b10ac8d82e05b22cc7d4ef5", "mia", "Mia Krystof", "mia@example.com"),
            FakeUser("5b109f2e9729b51b54dc274d", "wang.fang", "王芳", "wang.fang@example.cn"),
            FakeUser("5d53f3cbc6b9320d9ea5bdc2", "li.lei", "李雷", "li.lei@example.cn"),
            FakeUser("60f1c0e27d3c7b006a8e9f11", "sam", "Sam Okafor", "sam@example.org"),
        ]
        #: Cloud users whose privacy settings hide their address: answers leave it out.
        self.hidden_emails: set[str] = set()
        #: Users the project does not let issues be assigned to (by username).
        self.unassignable: set[str] = set()
        #: The project's default assignee: a new issue created without one gets them.
        self.default_assignee: FakeUser | None = None
        #: Whether the create screen has the assignee field (else creating with one is a 400).
        self.assignee_on_create_screen = True
        self.add_project(project, "Support")
        self.add_custom_field("Customer Email", "string")
        self.add_custom_field("Case Number", "string")

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL (``http://127.0.0.1:<port>``)."""
        if self._server is not None:
            return self.url
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            # A short poll interval: shutdown() waits up to one interval, for every test.
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"fake-jira-{self.flavor}",
            daemon=True,
        )
        self._thread.start()
        log.debug("fake Jira (%s) serving at %s", self.flavor, self.url)
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeJira:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Jira is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_version(self) -> str:
        return "3" if self.flavor == "cloud" else "2"

    # -- arranging state -----------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        self._search_cache.clear()

    def add_project(
        self, key: str, name: str, components: Sequence[str] = DEFAULT_COMPONENTS
    ) -> FakeProject:
        with self._lock:
            project = FakeProject(next(self._ids), key, name, list(components))
            self.projects[key] = project
            self._changed()
            return project

    def add_custom_field(self, name: str, kind: str = "string") -> str:
        """Define a custom field; returns its id (``customfield_100NN``)."""
        with self._lock:
            field_id = f"customfield_{10050 + len(self.custom_fields)}"
            self.custom_fields[field_id] = CustomField(field_id, name, kind)
            return field_id

    def custom_field_id(self, name: str) -> str:
        for cf in self.custom_fields.values():
            if cf.name == name:
                return cf.id
        raise KeyError(name)

    def add_status(self, name: str, category: str = "indeterminate") -> None:
        if category not in STATUS_CATEGORIES:
            raise ValueError(f"unknown status category {category!r}")
        with self._lock:
            self.statuses[name] = category

    def set_transitions(self, transitions: Mapping[str, str]) -> None:
        """Replace the workflow: transition name -> target status (added if new)."""
        with self._lock:
            for target in transitions.values():
                self.statuses.setdefault(target, "indeterminate")
            self.transitions = dict(transitions)

    def add_issue(
        self,
        summary: str,
        *,
        description: str | dict[str, Json] | None = None,
        project: str | None = None,
        status: str = "To Do",
        priority: str = "Medium",
        issuetype: str = "Task",
        labels: Iterable[str] = (),
        components: Iterable[str] = (),
        assignee: FakeUser | None = None,
        reporter: FakeUser | None = None,
        created: datetime | None = None,
        updated: datetime | None = None,
        custom: Mapping[str, Json] | None = None,
    ) -> FakeIssue:
        """Put an issue straight into the store (no request counted). ``custom`` is by name."""
        with self._lock:
            issue = self._new_issue(
                project or self.default_project,
                summary=summary,
                description=description,
                status=status,
                priority=priority,
                issuetype=issuetype,
                labels=list(labels),
                components=list(components),
                assignee=assignee,
                reporter=reporter or self.people[1],
                created=created,
                updated=updated,
                custom={self.custom_field_id(k): v for k, v in (custom or {}).items()},
            )
            self._changed()
            return issue

    def _new_issue(
        self,
        project_key: str,
        *,
        summary: str,
        description: str | dict[str, Json] | None,
        status: str,
        priority: str,
        issuetype: str,
        labels: list[str],
        components: list[str],
        assignee: FakeUser | None,
        reporter: FakeUser,
        created: datetime | None,
        updated: datetime | None,
        custom: dict[str, Json],
    ) -> FakeIssue:
        project = self.projects[project_key]
        now = self.clock()
        created = created or now
        issue = FakeIssue(
            id=next(self._ids),
            key=f"{project.key}-{project.next_number}",
            project=project.key,
            summary=summary,
            description=description,
            status=status,
            priority=priority,
            issuetype=issuetype,
            labels=labels,
            components=components,
            assignee=assignee,
            reporter=reporter,
            created=created,
            updated=updated or created,
            custom=custom,
        )
        if self.statuses.get(status) == "done":
            issue.resolution_date = issue.updated
        project.next_number += 1
        self.issues[issue.key] = issue
        self._issues_by_id[str(issue.id)] = issue
        return issue

    def add_comment(
        self,
        key: str,
        body: str,
        *,
        author: FakeUser | None = None,
        created: datetime | None = None,
        touch: bool = True,
    ) -> FakeComment:
        """Add a comment directly; ``touch`` moves the issue's ``updated`` as Jira does."""
        with self._lock:
            issue = self.issues[key]
            when = created or self.clock()
            comment = FakeComment(
                next(self._comment_ids), author or self.people[1], body, when, when
            )
            issue.comments.append(comment)
            if touch:
                issue.updated = max(issue.updated, when)
            self._changed()
            return comment

    def delete_issue(self, key: str) -> None:
        """Delete an issue, as a person may in Jira (no request counted)."""
        with self._lock:
            issue = self.issues.pop(key)
            self._issues_by_id.pop(str(issue.id), None)
            self._changed()

    def withhold(self, key: str, *names: str) -> None:
        """Serve the issue without these members (``key``, ``id``) or fields (``updated``...),
        as a proxy or an app rewriting Jira's answers might; no names serves it whole again.
        Still contract-valid: Atlassian's IssueBean requires none of them."""
        with self._lock:
            self.issues[key].withheld = frozenset(names)
            self._changed()

    def touch(self, key: str, when: datetime | None = None) -> None:
        """Mark an issue as updated now (as any edit in Jira would)."""
        with self._lock:
            self.issues[key].updated = when or self.clock()
            self._changed()

    def add_issues(
        self,
        n: int,
        *,
        project: str | None = None,
        seed: int = 0,
        end: datetime | None = None,
        spread: timedelta = timedelta(days=60),
        comment_ratio: float = 0.1,
    ) -> list[str]:
        """Bulk-load ``n`` varied issues (Chinese and English), ``updated`` spread over ``spread``
        before ``end`` (default: now). Fast enough for tens of thousands."""
        rng = random.Random(seed)
        end = end or self.clock()
        project_key = project or self.default_project
        statuses = list(self.statuses)
        email_field = self.custom_field_id("Customer Email")
        keys: list[str] = []
        with self._lock:
            components = self.projects[project_key].components
            step = spread / max(n, 1)
            for i in range(n):
                chinese = rng.random() < 0.4
                summary, description = _random_text(rng, chinese)
                updated = end - spread + step * (i + 1) - timedelta(seconds=rng.random())
                created = updated - timedelta(hours=rng.randint(0, 72), minutes=rng.randint(0, 59))
                reporter = rng.choice(self.people[1:])
                issue = self._new_issue(
                    project_key,
                    summary=summary,
                    description=description,
                    status=rng.choice(statuses),
                    priority=rng.choice(PRIORITIES),
                    issuetype=rng.choice(("Task", "Bug", "Bug", "Story")),
                    labels=rng.sample(_LABELS, rng.randint(0, 2)),
                    components=rng.sample(components, rng.randint(0, min(2, len(components)))),
                    assignee=rng.choice([None, *self.people[:3]]),
                    reporter=reporter,
                    created=created,
                    updated=updated,
                    custom={email_field: reporter.email},
                )
                if rng.random() < comment_ratio:
                    for c in range(rng.randint(1, 3)):
                        when = created + (updated - created) * ((c + 1) / 4)
                        issue.comments.append(
                            FakeComment(
                                next(self._comment_ids),
                                rng.choice(self.people[1:]),
                                rng.choice(_COMMENTS_ZH if chinese else _COMMENTS_EN),
                                when,
                                when,
                            )
                        )
                keys.append(issue.key)
            self._changed()
        return keys

    # -- faults and counting -----------------------------------------------------------------

    def inject(
        self,
        status: int = 429,
        count: int = 1,
        headers: Mapping[str, str] | None = None,
        *,
        body: Json = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (and ``headers``)."""
        if body is None:
            body = {"errorMessages": [HTTPStatus(status).phrase], "errors": {}}
        with self._lock:
            self._faults.append(
                Fault(status, count, dict(headers or {}), body, method and method.upper(), path)
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """Requests seen, optionally only one method and/or paths starting with a prefix."""
        return sum(
            n
            for (m, p), n in self.requests.items()
            if (method is None or m == method.upper()) and p.startswith(path_prefix)
        )

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        status: int
        body: Json
        headers: dict[str, str] = {}
        validate_path: str | None = None
        fault: Fault | None = None
        with self._lock:
            self.requests[(method, path)] += 1
            try:
                fault = self._take_fault(method, path)
                if fault is not None:
                    validate_path = path
                    raise _HttpError(fault.status, headers=fault.headers)
                self._check_auth(handler.headers.get("Authorization"))
                payload = self._decode(raw) if raw else None
                version, route, params = self._route(method, path)
                validate_path = path
                if self.validate and payload is not None:
                    self._check_request(method, path, payload)
                status, body = route(version, params, query, payload)
            except _HttpError as err:
                status, body, headers = err.status, err.body, err.headers
                if fault is not None:
                    body = fault.body
            if self.validate and validate_path is not None:
                self._check_response(method, validate_path, status, body)
        handler.send_json(status, body, headers)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.remaining <= 0:
                continue
            if fault.method is not None and fault.method != method:
                continue
            if fault.path is not None and not path.startswith(fault.path):
                continue
            fault.remaining -= 1
            return fault
        return None

    def _check_auth(self, header: str | None) -> None:
        if self.flavor == "cloud":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        else:
            expected = f"Bearer {self.token}"
        if header != expected:
            extra = {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"} if self.flavor == "dc" else {}
            raise _HttpError(
                401,
                ["You are not authenticated. Authentication required to perform this operation."],
                headers={"WWW-Authenticate": 'Basic realm="protected-area"', **extra},
            )

    @staticmethod
    def _decode(raw: bytes) -> Json:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _HttpError(400, [f"Unexpected character in request body: {err}"]) from None

    def _check_request(self, method: str, path: str, payload: Json) -> None:
        from tests.support import jira_openapi

        self.request_violations.extend(
            jira_openapi.request_errors(self.flavor, method, path, payload)
        )

    def _check_response(self, method: str, path: str, status: int, body: Json) -> None:
        from tests.support import jira_openapi

        try:
            errors = jira_openapi.response_errors(self.flavor, method, path, status, body)
        except jira_openapi.ContractViolation as err:  # the path itself is undocumented
            errors = [str(err)]
        self.contract_violations.extend(errors)

    _ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
        ("GET", re.compile(r"^/serverInfo$"), "_server_info"),
        ("GET", re.compile(r"^/myself$"), "_myself"),
        ("GET", re.compile(r"^/field$"), "_fields"),
        ("GET", re.compile(r"^/search/jql$"), "_search_jql"),
        ("POST", re.compile(r"^/search/jql$"), "_search_jql"),
        ("GET", re.compile(r"^/search$"), "_search_offset"),
        ("POST", re.compile(r"^/search$"), "_search_offset"),
        ("POST", re.compile(r"^/issue$"), "_create_issue"),
        ("GET", re.compile(r"^/issue/(?P<key>[^/]+)$"), "_get_issue"),
        ("PUT", re.compile(r"^/issue/(?P<key>[^/]+)$"), "_edit_issue"),
        ("PUT", re.compile(r"^/issue/(?P<key>[^/]+)/assignee$"), "_assign"),
        ("GET", re.compile(r"^/user/assignable/search$"), "_assignable_users"),
        ("GET", re.compile(r"^/issue/(?P<key>[^/]+)/comment$"), "_get_comments"),
        ("POST", re.compile(r"^/issue/(?P<key>[^/]+)/comment$"), "_post_comment"),
        ("GET", re.compile(r"^/issue/(?P<key>[^/]+)/transitions$"), "_get_transitions"),
        ("POST", re.compile(r"^/issue/(?P<key>[^/]+)/transitions$"), "_do_transition"),
        ("GET", re.compile(r"^/issue/(?P<key>[^/]+)/properties$"), "_property_keys"),
        ("GET", re.compile(r"^/issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)$"), "_get_prop"),
        ("PUT", re.compile(r"^/issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)$"), "_put_prop"),
        ("DELETE", re.compile(r"^/issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)$"), "_del_prop"),
    )

    def _route(self, method: str, path: str) -> tuple[str, _Endpoint, _Params]:
        match = re.match(r"^/rest/api/(?P<v>2|3|latest)(?P<rest>/.*)$", path)
        versions = ("2", "3", "latest") if self.flavor == "cloud" else ("2", "latest")
        if match is None or match.group("v") not in versions:
            raise _HttpError(404, [f"No resource at {path}."])
        version = "2" if match.group("v") == "latest" else match.group("v")
        rest = match.group("rest")
        allowed = []
        for route_method, pattern, name in self._ROUTES:
            found = pattern.match(rest)
            if found is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            return version, getattr(self, name), found.groupdict()
        if allowed:
            raise _HttpError(405, [f"Method {method} not allowed; use {', '.join(allowed)}."])
        raise _HttpError(404, [f"No resource at {path}."])

    # -- rendering ---------------------------------------------------------------------------

    def _ts(self, when: datetime) -> str:
        local = when.astimezone(self._zone)
        return (
            local.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{local.microsecond // 1000:03d}"
            + local.strftime("%z")
        )

    def _api(self, version: str) -> str:
        return f"{self.url}/rest/api/{version}"

    def _user_json(self, user: FakeUser | None, version: str) -> Json:
        if user is None:
            return None
        avatars = {
            size: f"https://avatars.example.com/{user.name}?s={size.split('x')[0]}"
            for size in ("48x48", "24x24", "16x16", "32x32")
        }
        if self.flavor == "cloud":
            body: dict[str, Json] = {
                "self": f"{self._api(version)}/user?accountId={user.account_id}",
                "accountId": user.account_id,
                "emailAddress": user.email,
                "avatarUrls": avatars,
                "displayName": user.display_name,
                "active": True,
                "timeZone": user.time_zone,
                "accountType": "atlassian",
            }
            if user.email in self.hidden_emails:
                del body["emailAddress"]  # as Cloud answers for such a person
            return body
        return {
            "self": f"{self._api(version)}/user?username={user.name}",
            "name": user.name,
            "key": f"JIRAUSER{abs(hash(user.name)) % 100000}",
            "emailAddress": user.email,
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": True,
            "timeZone": user.time_zone,
        }

    def _status_json(self, name: str, version: str) -> Json:
        category = self.statuses.get(name, "indeterminate")
        cat_id, cat_name, colour = STATUS_CATEGORIES[category]
        status_id = str(1 + list(self.statuses).index(name)) if name in self.statuses else "1"
        return {
            "self": f"{self._api(version)}/status/{status_id}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/statuses/generic.png",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self._api(version)}/statuscategory/{cat_id}",
                "id": cat_id,
                "key": category,
                "colorName": colour,
                "name": cat_name,
            },
        }

    def _rich_text(self, value: str | dict[str, Json] | None, version: str) -> Json:
        if value is None:
            return None
        if version == "3":
            return value if isinstance(value, dict) else text_to_adf(value)
        return adf_to_text(value) if isinstance(value, dict) else value

    def _comment_json(self, issue: FakeIssue, comment: FakeComment, version: str) -> Json:
        body = {
            "self": f"{self._api(version)}/issue/{issue.id}/comment/{comment.id}",
            "id": str(comment.id),
            "author": self._user_json(comment.author, version),
            "body": self._rich_text(comment.body, version),
            "updateAuthor": self._user_json(comment.author, version),
            "created": self._ts(comment.created),
            "updated": self._ts(comment.updated),
        }
        if self.flavor == "cloud":
            body["jsdPublic"] = True
        return body

    def _comment_page(
        self, issue: FakeIssue, version: str, start: int, limit: int, newest_first: bool = False
    ) -> Json:
        ordered = sorted(issue.comments, key=lambda c: (c.created, c.id), reverse=newest_first)
        page = ordered[start : start + limit]
        return {
            "comments": [self._comment_json(issue, c, version) for c in page],
            "maxResults": limit,
            "total": len(issue.comments),
            "startAt": start,
        }

    def _field_value(self, issue: FakeIssue, field_id: str, version: str, comments: int) -> Json:
        if field_id == "summary":
            return issue.summary
        if field_id == "description":
            return self._rich_text(issue.description, version)
        if field_id == "status":
            return self._status_json(issue.status, version)
        if field_id == "priority":
            pid = str(1 + PRIORITIES.index(issue.priority))
            return {
                "self": f"{self._api(version)}/priority/{pid}",
                "iconUrl": f"{self.url}/images/icons/priorities/{issue.priority.lower()}.svg",
                "name": issue.priority,
                "id": pid,
            }
        if field_id == "issuetype":
            tid = ISSUE_TYPES[issue.issuetype]
            return {
                "self": f"{self._api(version)}/issuetype/{tid}",
                "id": tid,
                "description": f"A {issue.issuetype.lower()}.",
                "iconUrl": f"{self.url}/images/icons/issuetypes/{issue.issuetype.lower()}.svg",
                "name": issue.issuetype,
                "subtask": False,
                "hierarchyLevel": 0,
            }
        if field_id == "labels":
            return list(issue.labels)
        if field_id == "components":
            project = self.projects[issue.project]
            return [
                {
                    "self": f"{self._api(version)}/component/{20000 + project.components.index(c)}",
                    "id": str(20000 + project.components.index(c)),
                    "name": c,
                }
                for c in issue.components
            ]
        if field_id == "assignee":
            return self._user_json(issue.assignee, version)
        if field_id in ("reporter", "creator"):
            return self._user_json(issue.reporter, version)
        if field_id == "created":
            return self._ts(issue.created)
        if field_id == "updated":
            return self._ts(issue.updated)
        if field_id == "resolutiondate":
            return self._ts(issue.resolution_date) if issue.resolution_date else None
        if field_id == "resolution":
            if self.statuses.get(issue.status) != "done":
                return None
            return {
                "self": f"{self._api(version)}/resolution/10000",
                "id": "10000",
                "name": "Done",
                "description": "Work has been completed on this issue.",
            }
        if field_id == "project":
            project = self.projects[issue.project]
            return {
                "self": f"{self._api(version)}/project/{project.id}",
                "id": str(project.id),
                "key": project.key,
                "name": project.name,
                "projectTypeKey": "software",
            }
        if field_id == "comment":
            return self._comment_page(issue, version, 0, comments)
        return issue.custom.get(field_id)

    def _all_field_ids(self) -> list[str]:
        return [f[0] for f in SYSTEM_FIELDS] + list(self.custom_fields)

    def _select_fields(self, requested: Sequence[str], default: str) -> list[str]:
        """Field ids to render, from Jira's ``fields`` syntax (``*all``, ``-x``, ids)."""
        tokens = [t.strip() for item in requested for t in item.split(",") if t.strip()]
        if not tokens:
            tokens = [default]
        known = self._all_field_ids()
        chosen: list[str] = []
        for token in tokens:
            if token in ("*all", "*navigable"):
                chosen.extend(f for f in known if f not in chosen)
            elif token in known and token not in chosen:
                chosen.append(token)
            # "id", "key" and unknown fields add nothing: Jira ignores fields it does not know.
        excluded = {t[1:] for t in tokens if t.startswith("-")}
        return [f for f in chosen if f not in excluded]

    def _issue_json(
        self, issue: FakeIssue, version: str, field_ids: Sequence[str], comments: int
    ) -> Json:
        body: dict[str, Json] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
            "versionedRepresentations",
            "id": str(issue.id),
            "self": f"{self._api(version)}/issue/{issue.id}",
            "key": issue.key,
            "fields": {
                f: self._field_value(issue, f, version, comments)
                for f in field_ids
                if f not in issue.withheld
            },
        }
        for name in issue.withheld & {"id", "key"}:
            del body[name]
        return body

    # -- endpoints ---------------------------------------------------------------------------

    def _server_info(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        if self.flavor == "cloud":
            return 200, {
                "baseUrl": self.url,
                "displayUrl": self.url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100289,
                "buildDate": "2025-09-01T00:00:00.000+0000",
                "serverTime": self._ts(self.clock()),
                "scmInfo": "5330f7d",
                "serverTitle": "Fake Jira Cloud",
                "serverTimeZone": self.time_zone,
            }
        return 200, {
            "baseUrl": self.url,
            "version": "10.3.24",
            "versionNumbers": [10, 3, 24],
            "deploymentType": "Server",
            "buildNumber": 10030024,
            "buildDate": "2025-08-01T00:00:00.000+0000",
            "serverTime": self._ts(self.clock()),
            "scmInfo": "0123456789abcdef",
            "serverTitle": "Fake Jira Data Center",
        }

    def _myself(self, version: str, params: _Params, query: _QueryArgs, payload: Json) -> _Answer:
        body = self._user_json(self.me, version)
        body["locale"] = "en_US"
        return 200, body

    def _fields(self, version: str, params: _Params, query: _QueryArgs, payload: Json) -> _Answer:
        result: list[Json] = []
        for field_id, name, kind in SYSTEM_FIELDS:
            result.append(
                {
                    "id": field_id,
                    "key": field_id,
                    "name": name,
                    "custom": False,
                    "orderable": field_id not in ("created", "updated", "creator"),
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [field_id],
                    "schema": {"type": kind, "system": field_id},
                }
            )
        for cf in self.custom_fields.values():
            number = int(cf.id.rsplit("_", 1)[1])
            result.append(
                {
                    "id": cf.id,
                    "key": cf.id,
                    "name": cf.name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{number}]", cf.name],
                    "schema": {
                        "type": cf.kind,
                        "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                        "customId": number,
                    },
                }
            )
        if self.flavor == "dc":
            for entry in result:
                entry.pop("key")
        return 200, result

    def _search_params(self, query: dict[str, list[str]], payload: Json) -> dict[str, Any]:
        if payload is not None:
            if not isinstance(payload, dict):
                raise _HttpError(400, ["The request body must be a JSON object."])
            fields = payload.get("fields") or []
            return {
                "jql": payload.get("jql") or "",
                "fields": fields if isinstance(fields, list) else [str(fields)],
                "maxResults": payload.get("maxResults"),
                "startAt": payload.get("startAt"),
                "nextPageToken": payload.get("nextPageToken"),
            }
        return {
            "jql": (query.get("jql") or [""])[0],
            "fields": query.get("fields", []),
            "maxResults": (query.get("maxResults") or [None])[0],
            "startAt": (query.get("startAt") or [None])[0],
            "nextPageToken": (query.get("nextPageToken") or [None])[0],
        }

    @staticmethod
    def _int_param(value: Any, name: str, default: int) -> int:
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise _HttpError(400, [f"The value '{value}' is not valid for '{name}'."]) from None
        if number < 0:
            raise _HttpError(400, [f"'{name}' must not be negative."])
        return number

    def _search_jql(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        if self.flavor != "cloud":
            raise _HttpError(404, ["No resource at /search/jql on this Jira."])
        args = self._search_params(query, payload)
        if not args["jql"].strip():
            raise _HttpError(
                400,
                [
                    "Unbounded JQL queries are not allowed here. Please add a search "
                    "restriction to your query."
                ],
            )
        matches = self._run_jql(args["jql"], bounded=True)
        field_ids = self._select_fields(args["fields"], "id")
        cap = self.max_page_size if field_ids else CLOUD_ID_ONLY_MAX_PAGE
        limit = min(self._int_param(args["maxResults"], "maxResults", 50), cap)
        offset = (
            self._decode_token(args["nextPageToken"], args["jql"]) if args["nextPageToken"] else 0
        )
        page = matches[offset : offset + limit]
        end = offset + len(page)
        body: dict[str, Json] = {
            "issues": [
                self._issue_json(i, version, field_ids, SEARCH_EMBEDDED_COMMENTS) for i in page
            ],
            "isLast": end >= len(matches),
        }
        if end < len(matches):
            body["nextPageToken"] = self._encode_token(end, args["jql"])
        return 200, body

    def _search_offset(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        if self.flavor == "cloud":
            raise _HttpError(
                410,
                [
                    "The requested API has been removed. Please migrate to the "
                    "/rest/api/3/search/jql API. A full migration guideline is available at "
                    "https://developer.atlassian.com/changelog/#CHANGE-2046"
                ],
            )
        args = self._search_params(query, payload)
        matches = self._run_jql(args["jql"], bounded=False)
        field_ids = self._select_fields(args["fields"], "*navigable")
        limit = min(self._int_param(args["maxResults"], "maxResults", 50), self.max_page_size)
        start = self._int_param(args["startAt"], "startAt", 0)
        page = matches[start : start + limit]
        return 200, {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": limit,
            "total": len(matches),
            "issues": [
                self._issue_json(i, version, field_ids, SEARCH_EMBEDDED_COMMENTS) for i in page
            ],
        }

    @staticmethod
    def _query_hash(jql: str) -> str:
        return hashlib.sha256(jql.encode()).hexdigest()[:16]

    def _encode_token(self, offset: int, jql: str) -> str:
        raw = json.dumps({"o": offset, "q": self._query_hash(jql)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_token(self, token: str, jql: str) -> int:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            offset = int(data["o"])
            same_query = data["q"] == self._query_hash(jql)
        except (ValueError, KeyError, TypeError):
            raise _HttpError(400, ["Invalid nextPageToken."]) from None
        if not same_query:
            raise _HttpError(400, ["The nextPageToken does not belong to this JQL query."])
        return offset

    def _get_issue_or_404(self, key: str) -> FakeIssue:
        issue = self.issues.get(key) or self._issues_by_id.get(key)
        if issue is None:
            raise _HttpError(404, ["Issue does not exist or you do not have permission to see it."])
        return issue

    def _get_issue(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        field_ids = self._select_fields(query.get("fields", []), "*all")
        return 200, self._issue_json(issue, version, field_ids, max(len(issue.comments), 1))

    def _check_rich_text(self, value: Json, version: str, field_name: str) -> str | dict[str, Json]:
        if version == "3":
            if not _is_adf(value):
                raise _HttpError(
                    400,
                    errors={
                        field_name: "Operation value must be an Atlassian Document (see the "
                        "Atlassian Document Format)"
                    },
                )
            return value
        if not isinstance(value, str):
            raise _HttpError(400, errors={field_name: "Operation value must be a string"})
        return value

    def _apply_fields(
        self, issue_fields: Mapping[str, Json], version: str, project: FakeProject
    ) -> dict[str, Json]:
        """Validate settable fields the way Jira does; returns attribute -> new value."""
        changes: dict[str, Json] = {}
        errors: dict[str, str] = {}
        for name, value in issue_fields.items():
            if name == "summary":
                if not isinstance(value, str) or not value.strip():
                    errors[name] = "You must specify a summary of the issue."
                elif len(value) > 255:
                    errors[name] = "Summary must be less than 255 characters."
                else:
                    changes["summary"] = value
            elif name == "description":
                changes["description"] = (
                    None if value is None else self._check_rich_text(value, version, name)
                )
            elif name == "labels":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    errors[name] = "Labels must be a list of strings."
                elif bad := [v for v in value if not v or re.search(r"\s", v)]:
                    errors[name] = f"The label '{bad[0]}' contains spaces which is invalid."
                else:
                    changes["labels"] = list(dict.fromkeys(value))
            elif name == "priority":
                priority = value.get("name") if isinstance(value, dict) else None
                if isinstance(value, dict) and "id" in value:
                    idx = int(value["id"]) - 1 if str(value["id"]).isdigit() else -1
                    priority = PRIORITIES[idx] if 0 <= idx < len(PRIORITIES) else None
                if priority not in PRIORITIES:
                    errors[name] = "The priority selected is invalid."
                else:
                    changes["priority"] = priority
            elif name == "components":
                names = [c.get("name") for c in value] if isinstance(value, list) else None
                if names is None or not all(isinstance(n, str) for n in names):
                    errors[name] = "Components must be given by name."
                elif bad := [n for n in names if n not in project.components]:
                    errors[name] = f"Component name '{bad[0]}' is not valid"
                else:
                    changes["components"] = names
            elif name == "assignee":
                changes["assignee"] = self._find_user(value) if value is not None else None
                if value is not None and changes["assignee"] is None:
                    errors[name] = "User does not exist or cannot be assigned."
            elif name in self.custom_fields:
                changes.setdefault("custom", {})[name] = value
            elif name in ("project", "issuetype"):
                continue  # handled by the caller on create; not editable
            else:
                errors[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                    "or unknown."
                )
        if errors:
            raise _HttpError(400, errors=errors)
        return changes

    def _find_user(self, ref: Json) -> FakeUser | None:
        if not isinstance(ref, dict):
            return None
        for user in self.people:
            if ref.get("accountId") == user.account_id or ref.get("name") == user.name:
                return user
        return None

    def _create_issue(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        if not isinstance(payload, dict) or not isinstance(payload.get("fields"), dict):
            raise _HttpError(400, ["Issue create requires a 'fields' object."])
        fields = payload["fields"]
        project_ref = fields.get("project") or {}
        project = self.projects.get(project_ref.get("key", "")) or next(
            (p for p in self.projects.values() if str(p.id) == str(project_ref.get("id"))), None
        )
        errors: dict[str, str] = {}
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        type_ref = fields.get("issuetype") or {}
        issuetype = type_ref.get("name") or next(
            (n for n, i in ISSUE_TYPES.items() if i == str(type_ref.get("id"))), None
        )
        if issuetype not in ISSUE_TYPES:
            errors["issuetype"] = "Specify an issue type"
        if "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        if "assignee" in fields and not self.assignee_on_create_screen:
            errors["assignee"] = (
                "Field 'assignee' cannot be set. It is not on the appropriate screen, or unknown."
            )
        if errors or project is None or issuetype is None:
            raise _HttpError(400, errors=errors)
        changes = self._apply_fields(fields, version, project)
        issue = self._new_issue(
            project.key,
            summary=changes["summary"],
            description=changes.get("description"),
            status="To Do",
            priority=changes.get("priority", "Medium"),
            issuetype=issuetype,
            labels=changes.get("labels", []),
            components=changes.get("components", []),
            assignee=changes.get("assignee", self.default_assignee),
            reporter=self.me,
            created=None,
            updated=None,
            custom=changes.get("custom", {}),
        )
        for prop in payload.get("properties") or []:
            issue.properties[prop["key"]] = prop["value"]
        self._changed()
        return 201, {
            "id": str(issue.id),
            "key": issue.key,
            "self": f"{self._api(version)}/issue/{issue.id}",
        }

    def _edit_issue(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        if not isinstance(payload, dict):
            raise _HttpError(400, ["Issue edit requires a JSON object."])
        changes = self._apply_fields(
            payload.get("fields") or {}, version, self.projects[issue.project]
        )
        for name, operations in (payload.get("update") or {}).items():
            if name != "labels":
                raise _HttpError(400, errors={name: "The fake supports 'update' for labels only."})
            labels = list(issue.labels)
            for operation in operations:
                for verb, value in operation.items():
                    if verb == "add" and value not in labels:
                        labels.append(value)
                    elif verb == "remove" and value in labels:
                        labels.remove(value)
                    elif verb == "set":
                        labels = list(value)
            changes["labels"] = labels
        for name, value in changes.items():
            if name == "custom":
                issue.custom.update(value)
            else:
                setattr(issue, name, value)
        if changes:
            issue.updated = self.clock()
            self._changed()
        return 204, None

    def _assignable_users(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        """Cloud: `query` (a prefix of a display name or an address, hidden ones included) or
        `accountId`; Data Center: `username` (a prefix of a username, name or address). With
        `issueKey` or `project`; users the project does not allow are left out."""
        keys = query.get("issueKey") or []
        projects = query.get("project") or []
        if keys:
            self._get_issue_or_404(keys[0])
        elif not projects:
            raise _HttpError(400, ["Specify an issue key, issue id or project."])
        elif projects[0] not in self.projects:
            raise _HttpError(404, [f"No project could be found with key '{projects[0]}'."])
        if self.flavor == "cloud":
            wanted = (query.get("query") or [""])[0].casefold()
            account = (query.get("accountId") or [None])[0]
            if not wanted and account is None:
                raise _HttpError(400, ["Specify a query or an accountId."])

            def matches(user: FakeUser) -> bool:
                if account is not None:
                    return user.account_id == account
                names = (user.display_name.casefold(), user.email.casefold())
                return any(name.startswith(wanted) for name in names)

        else:
            wanted = (query.get("username") or [""])[0].casefold()

            def matches(user: FakeUser) -> bool:
                names = (user.name.casefold(), user.display_name.casefold(), user.email.casefold())
                return any(name.startswith(wanted) for name in names)

        limit = self._int_param((query.get("maxResults") or [None])[0], "maxResults", 50)
        found = [
            self._user_json(user, version)
            for user in self.people
            if user.name not in self.unassignable and matches(user)
        ]
        return 200, found[:limit]

    def _assign(self, version: str, params: _Params, query: _QueryArgs, payload: Json) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        if not isinstance(payload, dict):
            raise _HttpError(400, ["Assign requires a user object."])
        field = "accountId" if self.flavor == "cloud" else "name"
        if payload.get(field) is None:
            user = None
        else:
            user = self._find_user({field: payload[field]})
            if user is None or user.name in self.unassignable:
                who = payload[field]
                raise _HttpError(
                    400, errors={"assignee": f"User '{who}' cannot be assigned issues."}
                )
        issue.assignee = user
        issue.updated = self.clock()
        self._changed()
        return 204, None

    def _get_comments(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        start = self._int_param((query.get("startAt") or [None])[0], "startAt", 0)
        limit = min(
            self._int_param((query.get("maxResults") or [None])[0], "maxResults", 50),
            COMMENT_PAGE_CAP,
        )
        order = (query.get("orderBy") or ["created"])[0]
        if order not in ("created", "+created", "-created"):
            raise _HttpError(400, [f"Invalid orderBy '{order}'."])
        return 200, self._comment_page(
            issue, version, start, limit, newest_first=order == "-created"
        )

    def _post_comment(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        if not isinstance(payload, dict) or "body" not in payload:
            raise _HttpError(400, errors={"comment": "Comment body can not be empty!"})
        body = self._check_rich_text(payload["body"], version, "comment")
        text = adf_to_text(body) if isinstance(body, dict) else body
        if not text.strip():
            raise _HttpError(400, errors={"comment": "Comment body can not be empty!"})
        now = self.clock()
        comment = FakeComment(next(self._comment_ids), self.me, body, now, now)
        issue.comments.append(comment)
        issue.updated = now
        self._changed()
        return 201, self._comment_json(issue, comment, version)

    def _available_transitions(self, issue: FakeIssue) -> list[tuple[str, str, str]]:
        """(id, name, target status) of the transitions open from the issue's status."""
        return [
            (str(11 + 10 * i), name, target)
            for i, (name, target) in enumerate(self.transitions.items())
            if target != issue.status
        ]

    def _get_transitions(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        transitions = []
        for tid, name, target in self._available_transitions(issue):
            entry: dict[str, Json] = {
                "id": tid,
                "name": name,
                "to": self._status_json(target, version),
            }
            if self.flavor == "cloud":
                entry.update(
                    hasScreen=False,
                    isGlobal=True,
                    isInitial=False,
                    isAvailable=True,
                    isConditional=False,
                    isLooped=False,
                )
            else:
                entry["opsbarSequence"] = int(tid)
            transitions.append(entry)
        body: dict[str, Json] = {"transitions": transitions}
        if self.flavor == "cloud":
            body["expand"] = "transitions"
        return 200, body

    def _do_transition(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        transition = payload.get("transition") if isinstance(payload, dict) else None
        wanted = transition.get("id") if isinstance(transition, dict) else None
        if wanted is None:
            raise _HttpError(400, ["Missing 'transition' identifier"])
        for tid, _name, target_status in self._available_transitions(issue):
            if tid == str(wanted):
                target = target_status
                break
        else:
            raise _HttpError(400, [f"Transition id '{wanted}' is not valid for this issue."])
        changes = self._apply_fields(
            payload.get("fields") or {}, version, self.projects[issue.project]
        )
        for name, value in changes.items():
            if name == "custom":
                issue.custom.update(value)
            else:
                setattr(issue, name, value)
        issue.status = target
        issue.updated = self.clock()
        issue.resolution_date = issue.updated if self.statuses[target] == "done" else None
        self._changed()
        return 204, None

    def _property_keys(
        self, version: str, params: _Params, query: _QueryArgs, payload: Json
    ) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        return 200, {
            "keys": [
                {"key": k, "self": f"{self._api(version)}/issue/{issue.id}/properties/{k}"}
                for k in issue.properties
            ]
        }

    def _get_prop(self, version: str, params: _Params, query: _QueryArgs, payload: Json) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        if params["prop"] not in issue.properties:
            raise _HttpError(404, [f"The property with key '{params['prop']}' does not exist."])
        return 200, {"key": params["prop"], "value": issue.properties[params["prop"]]}

    def _put_prop(self, version: str, params: _Params, query: _QueryArgs, payload: Json) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        if payload is None:
            raise _HttpError(400, ["The property value must be a non-empty JSON value."])
        if len(json.dumps(payload)) > 32768:
            raise _HttpError(400, ["The property value is longer than 32768 bytes."])
        created = params["prop"] not in issue.properties
        issue.properties[params["prop"]] = payload
        self._changed()
        return (201 if created else 200), None

    def _del_prop(self, version: str, params: _Params, query: _QueryArgs, payload: Json) -> _Answer:
        issue = self._get_issue_or_404(params["key"])
        if issue.properties.pop(params["prop"], None) is None:
            raise _HttpError(404, [f"The property with key '{params['prop']}' does not exist."])
        self._changed()
        return 204, None

    # -- JQL evaluation ----------------------------------------------------------------------

    def _run_jql(self, jql: str, *, bounded: bool) -> list[FakeIssue]:
        cache_key = (jql, self._version)
        cached = self._search_cache.get(cache_key)
        if cached is not None:
            return cached
        parsed = self._parse_jql(jql)
        if bounded and not parsed.predicates:
            raise _HttpError(
                400,
                [
                    "Unbounded JQL queries are not allowed here. Please add a search "
                    "restriction to your query."
                ],
            )
        matches = [i for i in self.issues.values() if all(p(i) for p in parsed.predicates)]
        # Stable sorts applied from the last ORDER BY key to the first.
        order = parsed.order or (("key", True),)
        for name, descending in reversed(order):
            key_of: Callable[[FakeIssue], Any] = {
                "updated": lambda i: i.updated,
                "created": lambda i: i.created,
                "key": _issue_number,
            }[name]
            matches.sort(key=key_of, reverse=descending)
        self._search_cache[cache_key] = matches
        return matches

    def _parse_jql(self, jql: str) -> _ParsedJql:
        tokens = _tokenize(jql)
        predicates: list[Callable[[FakeIssue], bool]] = []
        order: list[tuple[str, bool]] = []
        pos = 0

        def word(at: int) -> str:
            return tokens[at].text.lower() if at < len(tokens) and not tokens[at].quoted else ""

        while pos < len(tokens) and word(pos) != "order":
            if predicates:
                if word(pos) != "and":
                    raise _HttpError(
                        400,
                        [
                            f"Error in the JQL Query: the fake Jira understands only AND between "
                            f"clauses, not '{tokens[pos].text}'."
                        ],
                    )
                pos += 1
            if pos + 3 > len(tokens):
                raise _HttpError(400, ["Error in the JQL Query: incomplete clause."])
            name_tok, op_tok, value_tok = tokens[pos : pos + 3]
            if name_tok.kind != "value" or op_tok.kind != "op" or value_tok.kind != "value":
                raise _HttpError(
                    400,
                    [
                        "Error in the JQL Query: expected 'field operator value' at "
                        f"'{name_tok.text}'."
                    ],
                )
            predicates.append(self._clause(name_tok.text, op_tok.text, value_tok.text))
            pos += 3
        if pos < len(tokens):
            if word(pos + 1) != "by":
                raise _HttpError(400, ["Error in the JQL Query: expected 'BY' after 'ORDER'."])
            pos += 2
            while pos < len(tokens):
                name = tokens[pos].text.lower()
                if name not in ("updated", "created", "key"):
                    raise _HttpError(400, [f"Not able to sort using field '{tokens[pos].text}'."])
                pos += 1
                descending = False
                if word(pos) in ("asc", "desc"):
                    descending = word(pos) == "desc"
                    pos += 1
                order.append((name, descending))
                if pos < len(tokens):
                    if tokens[pos].text != ",":
                        raise _HttpError(
                            400, [f"Error in the JQL Query: unexpected '{tokens[pos].text}'."]
                        )
                    pos += 1
                    if pos == len(tokens):
                        raise _HttpError(400, ["Error in the JQL Query: dangling ','."])
        return _ParsedJql(tuple(predicates), tuple(order))

    def _clause(self, field_name: str, op: str, value: str) -> Callable[[FakeIssue], bool]:
        name = field_name.lower()
        if name in ("project", "key", "labels", "status"):
            if op != "=":
                raise _HttpError(
                    400, [f"The operator '{op}' is not supported by the '{field_name}' field."]
                )
            if name == "project":
                project = self.projects.get(value) or self.projects.get(value.upper())
                if project is None:
                    raise _HttpError(
                        400, [f"The value '{value}' does not exist for the field 'project'."]
                    )
                return lambda i: i.project == project.key
            if name == "key":
                return lambda i: i.key == value.upper()
            if name == "labels":
                return lambda i: value in i.labels
            return lambda i: i.status.lower() == value.lower()
        if name in ("updated", "created"):
            if op not in (">=", ">", "<=", "<"):
                raise _HttpError(
                    400, [f"The operator '{op}' is not supported by the '{field_name}' field."]
                )
            moment = self._jql_date(value, field_name)
            attr = name

            def compare(issue: FakeIssue) -> bool:
                when: datetime = getattr(issue, attr)
                return {
                    ">=": when >= moment,
                    ">": when > moment,
                    "<=": when <= moment,
                    "<": when < moment,
                }[op]

            return compare
        raise _HttpError(
            400, [f"Field '{field_name}' does not exist or you do not have permission to view it."]
        )

    def _jql_date(self, value: str, field_name: str) -> datetime:
        for fmt in _JQL_DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            # JQL dates are wall-clock times in the searching user's time zone.
            return parsed.replace(tzinfo=self._zone)
        raise _HttpError(400, [_JQL_DATE_ERROR.format(value=value, field=field_name)])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections stay open between requests; closing the server must not wait
    # for clients to hang up.
    block_on_close = False
    fake: FakeJira


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Jira: a sync does not reconnect per page
    server: _Server

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def do_POST(self) -> None:
        self.server.fake._handle(self)

    def do_PUT(self) -> None:
        self.server.fake._handle(self)

    def do_DELETE(self) -> None:
        self.server.fake._handle(self)

    def send_json(self, status: int, body: Json, headers: Mapping[str, str]) -> None:
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake Jira: " + format, *args)


# -- generated content ------------------------------------------------------------------------

_LABELS = ["customer", "urgent", "billing", "regression", "mobile", "vip", "客户", "退款"]
_SUMMARIES_EN = [
    "Login fails with error {code}",
    "Invoice {n} shows the wrong amount",
    "App crashes when uploading {file}",
    "Password reset email never arrives",
    "Export to CSV times out after {n} rows",
    "Cannot change billing address",
    "Sync stuck at {pct}%",
    "API returns 500 on /orders/{n}",
    "Dark mode unreadable on the settings page",
    "Two-factor code rejected on first try",
]
_SUMMARIES_ZH = [
    "登录时提示错误 {code}",
    "发票 {n} 金额不正确",
    "上传 {file} 时应用崩溃",
    "收不到重置密码的邮件",
    "导出 CSV 超过 {n} 行时超时",
    "无法修改账单地址",
    "同步卡在 {pct}%",
    "订单接口 /orders/{n} 返回 500",
    "设置页面深色模式看不清",
    "双重验证码第一次总是被拒绝",
]
_DESCRIPTIONS_EN = [
    "Customer reports the problem since this morning.\nSteps: open the app, sign in.",
    "Happens on every attempt.\n\nExpected: it works. Actual: it does not.",
    "Reported by phone; screenshots attached to the original mail.",
]
_DESCRIPTIONS_ZH = [
    "客户从今天早上开始遇到这个问题。\n步骤：打开应用，登录。",
    "每次都会出现。\n\n期望：正常工作。实际：失败。",
    "客户通过电话反馈，截图在原始邮件里。",
]
_COMMENTS_EN = ["Could you send a screenshot?", "Fixed in 4.2.1, please retry.", "Still broken."]
_COMMENTS_ZH = ["请发一张截图。", "已在 4.2.1 修复，请重试。", "问题依旧。"]
_FILES = ["report.pdf", "photo.heic", "数据.xlsx", "backup.zip"]


def _random_text(rng: random.Random, chinese: bool) -> tuple[str, str]:
    template = rng.choice(_SUMMARIES_ZH if chinese else _SUMMARIES_EN)
    summary = template.format(
        code=f"E{rng.randint(100, 999)}",
        n=rng.randint(1000, 99999),
        file=rng.choice(_FILES),
        pct=rng.randint(1, 99),
    )
    return summary, rng.choice(_DESCRIPTIONS_ZH if chinese else _DESCRIPTIONS_EN)
