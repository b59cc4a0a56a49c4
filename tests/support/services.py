"""What a test does when a real server it needs is not there.

On a newcomer's laptop a missing Dovecot or PostgreSQL should skip the tests that need it,
with a reason that says how to get it. In CI (``CASEDESK_REQUIRE_SERVICES=1``) the same
absence is a failure: a suite that silently skips its server tests is not a green suite.
"""

from __future__ import annotations

import logging
import os
from typing import NoReturn

import pytest

log = logging.getLogger(__name__)

REQUIRE_ENV = "CASEDESK_REQUIRE_SERVICES"


def services_required() -> bool:
    """True when missing test servers must fail the run instead of skipping tests."""
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def require_service(name: str, reason: str) -> NoReturn:
    """Skip (or, with CASEDESK_REQUIRE_SERVICES=1, fail) because server ``name`` is missing.

    ``reason`` should say what went wrong and how to get the server, e.g.
    ``"no dovecot binary; apt-get install dovecot-imapd"``.
    """
    if services_required():
        log.error("required test server %s is missing: %s", name, reason)
        # pytrace=False: the traceback into this helper says nothing the message doesn't.
        pytest.fail(
            f"test server {name!r} is required ({REQUIRE_ENV}=1) but not available: {reason}",
            pytrace=False,
        )
    log.info("skipping: test server %s is missing: %s", name, reason)
    pytest.skip(f"test server {name!r} not available: {reason} (set {REQUIRE_ENV}=1 to fail)")
