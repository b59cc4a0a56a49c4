"""Contract checks against Atlassian's published OpenAPI descriptions of Jira.

The descriptions live outside the repository, in ``../shared/jira`` (override the folder with
``CASEDESK_SHARED_DIR``): ``jira-cloud-platform-openapi-v3.json`` (Cloud, paths
``/rest/api/3/...``) and ``jira-dc-10.3-openapi.json`` (Data Center 10.3, server URL ``/rest``,
so its paths ``/api/2/...`` are served as ``/rest/api/2/...``).

    validate_response("cloud", "GET", "/rest/api/3/issue/SUP-1", 200, body)
    validate_request_body("dc", "POST", "/rest/api/2/issue", body)

both raise :class:`ContractViolation` (an ``AssertionError``) naming the operation and the first
few schema errors; ``response_errors`` / ``request_errors`` return the messages instead, for the
fake Jira, which records violations rather than failing mid-request.

Where a description is wrong about what Jira really sends, we do not loosen validation in
general: :data:`CORRECTIONS` lists each fix with its reason and an example body that the
uncorrected description rejects (a test checks every correction is still needed).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jsonschema import FormatChecker
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    oas30_format_checker,
)
from referencing import Registry
from referencing.jsonschema import DRAFT4

from tests.support.services import REQUIRE_ENV, require_service

log = logging.getLogger(__name__)

Flavor = Literal["cloud", "dc"]

SHARED_DIR_ENV = "CASEDESK_SHARED_DIR"
SPEC_FILES: dict[str, str] = {
    "cloud": "jira-cloud-platform-openapi-v3.json",
    "dc": "jira-dc-10.3-openapi.json",
}
# The DC description's server URL is ``/rest``; its paths start at ``/api/2``.
_PATH_PREFIX: dict[str, str] = {"cloud": "", "dc": "/rest"}

# Atlassian documents that any operation may answer these (authentication, permissions, rate
# limiting, overload: developer.atlassian.com "Status codes" and "Rate limiting"), but the
# descriptions list them per operation only sometimes. A body, when there is one, must still
# be an ErrorCollection.
GLOBAL_ERROR_STATUSES = frozenset({401, 403, 404, 429, 503})

_MAX_REPORTED_ERRORS = 5


class ContractViolation(AssertionError):
    """A request or response does not match Atlassian's description of the operation."""


@dataclass(frozen=True)
class Correction:
    """One place where we replace part of a description, and why.

    ``pointer`` is a JSON pointer into the description; ``example`` is a real Jira body that the
    uncorrected schema at ``check_schema`` (a pointer too) rejects and the corrected one accepts.
    """

    flavor: Flavor
    pointer: str
    replacement: Any
    reason: str
    check_schema: str
    example: Any
    check_as: Literal["response", "request"] = "response"


_ERROR_COLLECTION = {"$ref": "#/components/schemas/ErrorCollection"}

CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        flavor="dc",
        pointer="/paths/~1api~12~1field/get/responses/200/content/application~1json/schema",
        replacement={"type": "array", "items": {"$ref": "#/components/schemas/FieldBean"}},
        reason="GET /api/2/field returns a JSON array of fields; the generated description "
        "declares a single FieldBean (one of the 'list endpoints declared as single objects').",
        check_schema="/paths/~1api~12~1field/get/responses/200/content/application~1json/schema",
        example=[{"id": "summary", "name": "Summary", "custom": False}],
    ),
    Correction(
        flavor="dc",
        pointer="/paths/~1api~12~1user~1assignable~1search/get/responses/200/content/"
        "application~1json/schema",
        replacement={"type": "array", "items": {"$ref": "#/components/schemas/UserBean"}},
        reason="GET /api/2/user/assignable/search returns a JSON array of users (its own "
        "description: 'Returns a list of users'); the schema declares a single UserBean.",
        check_schema="/paths/~1api~12~1user~1assignable~1search/get/responses/200/content/"
        "application~1json/schema",
        example=[{"name": "mia", "displayName": "Mia Krystof", "emailAddress": "mia@example.com"}],
    ),
    Correction(
        flavor="dc",
        pointer="/components/schemas/IssueBean/properties/fields/additionalProperties",
        replacement={},
        reason="Issue field values are strings (summary), arrays (labels), numbers or null; the "
        "generated description says every field value is an object.",
        check_schema="/components/schemas/IssueBean",
        example={"id": "10000", "key": "SUP-1", "fields": {"summary": "Login fails"}},
    ),
    Correction(
        flavor="dc",
        pointer="/components/schemas/IssueUpdateBean/properties/fields/additionalProperties",
        replacement={},
        reason="Same as IssueBean.fields, on the request side: create/edit send "
        '{"summary": "text", "labels": [...]}.',
        check_schema="/components/schemas/IssueUpdateBean",
        example={"fields": {"summary": "Login fails", "labels": ["casedesk"]}},
        check_as="request",
    ),
    Correction(
        flavor="dc",
        pointer="/components/schemas/EntityPropertyBean/properties/value",
        replacement={},
        reason="An entity property's value is any JSON value; the description says string.",
        check_schema="/components/schemas/EntityPropertyBean",
        example={"key": "casedesk", "value": {"case": "C-1"}},
    ),
    Correction(
        flavor="dc",
        pointer="/paths/~1api~12~1issue~1{issueIdOrKey}~1properties~1{propertyKey}/put/"
        "requestBody/content/application~1json/schema",
        replacement={},
        reason="The PUT body is the property's JSON value itself (any JSON), not a string.",
        check_schema="/paths/~1api~12~1issue~1{issueIdOrKey}~1properties~1{propertyKey}/put/"
        "requestBody/content/application~1json/schema",
        example={"case": "C-1"},
        check_as="request",
    ),
    Correction(
        flavor="cloud",
        pointer="/paths/~1rest~1api~13~1search/get/responses/410",
        replacement={
            "description": "Removed: use /rest/api/3/search/jql.",
            "content": {"application/json": {"schema": _ERROR_COLLECTION}},
        },
        reason="Atlassian removed GET/POST /rest/api/{2,3}/search on Cloud (410 Gone since "
        "August 2025); the description still lists the operation without the 410.",
        check_schema="/paths/~1rest~1api~13~1search/get/responses/410",
        example=None,
    ),
    Correction(
        flavor="cloud",
        pointer="/paths/~1rest~1api~13~1search/post/responses/410",
        replacement={
            "description": "Removed: use /rest/api/3/search/jql.",
            "content": {"application/json": {"schema": _ERROR_COLLECTION}},
        },
        reason="As for GET /rest/api/3/search.",
        check_schema="/paths/~1rest~1api~13~1search/post/responses/410",
        example=None,
    ),
)


# -- where the descriptions are ---------------------------------------------------------------


def shared_dir() -> Path:
    """The shared data folder: ``$CASEDESK_SHARED_DIR`` or ``<repo>/../shared``."""
    override = os.environ.get(SHARED_DIR_ENV, "").strip()
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared"


def spec_path(flavor: Flavor) -> Path:
    return shared_dir() / "jira" / SPEC_FILES[flavor]


def missing_reason() -> str | None:
    """Why the descriptions cannot be used, or None when both are there."""
    missing = [str(spec_path(f)) for f in ("cloud", "dc") if not spec_path(f).is_file()]
    if not missing:
        return None
    return (
        f"Atlassian's Jira OpenAPI descriptions not found ({', '.join(missing)}); "
        f"put them in ../shared/jira or point {SHARED_DIR_ENV} at the folder holding jira/"
    )


def require_specs() -> None:
    """Skip the calling test without the descriptions (fail when CASEDESK_REQUIRE_SERVICES=1)."""
    reason = missing_reason()
    if reason is not None:
        require_service("jira-openapi", reason)


def specs_available() -> bool:
    return missing_reason() is None


__all__ = [
    "CORRECTIONS",
    "REQUIRE_ENV",
    "ContractViolation",
    "Correction",
    "find_operation",
    "load_spec",
    "request_errors",
    "require_specs",
    "response_errors",
    "shared_dir",
    "specs_available",
    "validate_request_body",
    "validate_response",
]


# -- loading ----------------------------------------------------------------------------------


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]


def resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in _pointer_parts(pointer):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _set_pointer(document: Any, pointer: str, value: Any) -> None:
    *parents, last = _pointer_parts(pointer)
    node = document
    for part in parents:
        node = node[part]
    node[last] = value


@functools.cache
def load_spec(flavor: Flavor, *, corrected: bool = True) -> dict[str, Any]:
    """The description as a dict, with :data:`CORRECTIONS` applied unless ``corrected=False``."""
    path = spec_path(flavor)
    if not path.is_file():
        raise FileNotFoundError(missing_reason())
    with path.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    if corrected:
        for fix in CORRECTIONS:
            if fix.flavor == flavor:
                _set_pointer(spec, fix.pointer, copy.deepcopy(fix.replacement))
    return spec


# Jira writes timestamps as 2024-05-23T14:47:28.592+0000: ISO 8601, but not RFC 3339 (no colon
# in the offset), so the stock "date-time" check would reject every real Jira answer.
_JIRA_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$"
)


def _is_jira_datetime(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _JIRA_DATETIME.match(instance):
        return False
    try:
        datetime.fromisoformat(instance)
    except ValueError:
        return False
    return True


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    checker.checkers = dict(oas30_format_checker.checkers)
    checker.checkers["date-time"] = (_is_jira_datetime, ())
    return checker


_FORMAT_CHECKER = _format_checker()


@functools.cache
def _registry(flavor: Flavor, corrected: bool) -> tuple[str, Registry]:
    uri = f"urn:casedesk:jira-openapi:{flavor}:{'corrected' if corrected else 'as-published'}"
    resource = DRAFT4.create_resource(load_spec(flavor, corrected=corrected))
    return uri, Registry().with_resource(uri, resource)


def _schema_errors(
    flavor: Flavor, pointer: str, instance: Any, *, request: bool, corrected: bool = True
) -> list[str]:
    """Messages for ``instance`` against the schema at ``pointer`` ($refs resolved)."""
    uri, registry = _registry(flavor, corrected)
    validator_cls = OAS30WriteValidator if request else OAS30ReadValidator
    # A $ref into the registered document lets every nested "#/components/..." resolve against
    # the whole description, so no schema has to be copied or inlined.
    validator = validator_cls(
        {"$ref": f"{uri}#{pointer}"}, registry=registry, format_checker=_FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [
        f"at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
        for e in errors[:_MAX_REPORTED_ERRORS]
    ]


# -- finding the operation --------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    template: str
    regex: re.Pattern[str]
    literal_segments: int


@functools.cache
def _routes(flavor: Flavor) -> tuple[_Route, ...]:
    prefix = _PATH_PREFIX[flavor]
    routes = []
    for template in load_spec(flavor)["paths"]:
        segments = template.strip("/").split("/")
        pattern = "/".join(
            "[^/]+" if seg.startswith("{") and seg.endswith("}") else re.escape(seg)
            for seg in segments
        )
        literal = sum(1 for seg in segments if not seg.startswith("{"))
        routes.append(_Route(template, re.compile(f"^{re.escape(prefix)}/{pattern}$"), literal))
    # Most literal segments first: /rest/api/3/search/jql must win over a templated sibling.
    routes.sort(key=lambda r: -r.literal_segments)
    return tuple(routes)


def _normalise_path(flavor: Flavor, path: str) -> str:
    path = path.split("?", 1)[0].rstrip("/") or "/"
    if flavor == "cloud" and path.startswith("/rest/api/2/"):
        # Cloud serves v2 and v3 with the same shapes except rich text, which v3's description
        # leaves untyped; we only have the v3 description, so v2 answers are checked against it.
        path = "/rest/api/3/" + path[len("/rest/api/2/") :]
    return path


def find_operation(flavor: Flavor, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The (templated path, operation object) for a concrete request path."""
    concrete = _normalise_path(flavor, path)
    spec = load_spec(flavor)
    for route in _routes(flavor):
        if route.regex.match(concrete):
            item = spec["paths"][route.template]
            operation = item.get(method.lower())
            if operation is None:
                raise ContractViolation(
                    f"{flavor}: {method} {path}: {route.template} documents only "
                    f"{sorted(k.upper() for k in item if k != 'parameters')}"
                )
            return route.template, operation
    raise ContractViolation(f"{flavor}: no documented operation for {method} {path}")


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


def _json_media_type(container: dict[str, Any]) -> str | None:
    for media_type in container.get("content") or {}:
        if media_type.startswith("application/json") or media_type == "*/*":
            return str(media_type)
    return None


def _json_content(container: dict[str, Any]) -> dict[str, Any] | None:
    media_type = _json_media_type(container)
    return None if media_type is None else container["content"][media_type]


# -- public checks ----------------------------------------------------------------------------


def response_errors(flavor: Flavor, method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with this response (empty when it matches the description).

    ``body`` is the decoded JSON, or None when the response has no body.
    """
    template, operation = find_operation(flavor, method, path)
    where = f"{flavor} {method.upper()} {template} -> {status}"
    responses: dict[str, Any] = operation.get("responses", {})
    key = str(status)
    if key in responses:
        response = responses[key]
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{key}"
    elif f"{key[0]}XX" in responses:
        response = responses[f"{key[0]}XX"]
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{key[0]}XX"
    elif "default" in responses:
        response = responses["default"]
        pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/default"
    elif status in GLOBAL_ERROR_STATUSES:
        if body is None or not isinstance(body, dict):
            return []
        errors = _schema_errors(flavor, "/components/schemas/ErrorCollection", body, request=False)
        return [f"{where}: {e}" for e in errors]
    else:
        return [f"{where}: status {status} is not documented (documented: {sorted(responses)})"]

    media = _json_content(response)
    schema = media.get("schema") if media else None
    if body is None:
        if status == 204 or not schema:
            return []
        return [f"{where}: documented JSON body is missing"]
    if media is None:
        # A body on a response documented without content is only a problem when it is JSON
        # the description says nothing about; Jira's error bodies are ErrorCollections.
        if status >= 400 and isinstance(body, dict):
            errors = _schema_errors(
                flavor, "/components/schemas/ErrorCollection", body, request=False
            )
            return [f"{where}: {e}" for e in errors]
        return [] if status >= 400 else [f"{where}: body sent but none documented"]
    if schema is None:
        return []
    errors = _schema_errors(
        flavor,
        pointer + "/content/" + _escape(str(_json_media_type(response))) + "/schema",
        body,
        request=False,
    )
    return [f"{where}: {e}" for e in errors]


def request_errors(flavor: Flavor, method: str, path: str, body: Any) -> list[str]:
    """What is wrong with this request body (empty when it matches the description)."""
    template, operation = find_operation(flavor, method, path)
    where = f"{flavor} {method.upper()} {template} request body"
    request_body = operation.get("requestBody")
    if request_body is None:
        return [] if body is None else [f"{where}: operation takes no body"]
    if body is None:
        return [f"{where}: required body missing"] if request_body.get("required") else []
    media = _json_content(request_body)
    if media is None or "schema" not in media:
        return [f"{where}: no JSON body documented"]
    pointer = (
        f"/paths/{_escape(template)}/{method.lower()}/requestBody/content/"
        f"{_escape(str(_json_media_type(request_body)))}/schema"
    )
    return [f"{where}: {e}" for e in _schema_errors(flavor, pointer, body, request=True)]


def _raise(errors: Iterable[str]) -> None:
    errors = list(errors)
    if errors:
        raise ContractViolation("\n".join(errors))


def validate_response(flavor: Flavor, method: str, path: str, status: int, body: Any) -> None:
    """Raise :class:`ContractViolation` unless the response matches the description."""
    _raise(response_errors(flavor, method, path, status, body))


def validate_request_body(flavor: Flavor, method: str, path: str, body: Any) -> None:
    """Raise :class:`ContractViolation` unless the request body matches the description."""
    _raise(request_errors(flavor, method, path, body))


def correction_still_needed(fix: Correction) -> tuple[bool, bool]:
    """(uncorrected description rejects the example, corrected one accepts it)."""
    request = fix.check_as == "request"
    if fix.example is None:
        # Status corrections: the uncorrected operation has no such response at all.
        published = load_spec(fix.flavor, corrected=False)
        corrected = load_spec(fix.flavor)
        try:
            resolve_pointer(published, fix.check_schema)
            rejected = False
        except KeyError:
            rejected = True
        return rejected, _has_pointer(corrected, fix.check_schema)
    rejected = bool(
        _schema_errors(fix.flavor, fix.check_schema, fix.example, request=request, corrected=False)
    )
    accepted = not _schema_errors(fix.flavor, fix.check_schema, fix.example, request=request)
    return rejected, accepted


def _has_pointer(document: Any, pointer: str) -> bool:
    try:
        resolve_pointer(document, pointer)
    except (KeyError, IndexError):
        return False
    return True
