"""Sync N issues from the fake Jira into a SQLite store, then sync again, in one run.

    python bench/jira_bench.py [--issues 10000] [--page-size 100] [--flavor cloud|dc|both]

Prints, per flavor: requests made against the minimum (ceil(N / page size) + the constant
requests of a run: /field for the custom fields; the zone is configured, so no /myself), the
ratio (target: at most 1.1), issues per second for the whole pull (search, mapping, rules,
store), and the request count of a second, no-op sync with a fresh client, as the next run
would make it (target: at most 2).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake Jira lives in tests/support

from connectors.jira_client import JiraClient, JiraConnection  # noqa: E402
from connectors.store import CaseStore  # noqa: E402
from flows.jira_sync import JiraSyncContext, pull  # noqa: E402
from flows.routing import CaseRouter  # noqa: E402
from flows.runtime import sender_identity  # noqa: E402
from flows.settings import Settings  # noqa: E402
from mapping.jira_issue import JiraMapping  # noqa: E402
from mapping.rules import RuleEngine, load_rules  # noqa: E402
from tests.support.fake_jira import FakeJira  # noqa: E402

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
MAPPING = JiraMapping(customer_email_field="Customer Email")
CONSTANT_REQUESTS = 1  # GET /field, once per run, for the configured custom field


def run(flavor: str, issues: int, page_size: int, folder: Path) -> dict[str, float]:
    settings = Settings(data_dir=folder, database_url=f"sqlite:///{folder}/{flavor}.sqlite3")
    rules = load_rules(None)
    router = CaseRouter(
        rules=rules,
        engine=RuleEngine(rules, settings.zone),
        zone=settings.zone,
        identity=sender_identity(settings),
        clock=lambda: NOW,
    )
    context = JiraSyncContext(
        project="SUP",
        mapping=MAPPING,
        identity=sender_identity(settings),
        zone=settings.zone,
        flavor=flavor,
        page_size=page_size,
        route=router.route,
        clock=lambda: NOW,
    )
    store = CaseStore.open(settings.database_url)
    with FakeJira(flavor, clock=lambda: NOW, time_zone="Asia/Shanghai") as fake:  # type: ignore[arg-type]
        fake.add_issues(issues, end=NOW)

        def client() -> JiraClient:
            connection = JiraConnection(
                url=fake.url,
                flavor=flavor,  # type: ignore[arg-type]
                user=fake.user,
                token=SecretStr(fake.token),
                project="SUP",
                time_zone="Asia/Shanghai",
            )
            return JiraClient(connection, custom_fields=MAPPING.custom_field_names)

        started = time.perf_counter()
        with client() as jira:
            first = pull(store, jira, context)
        elapsed = time.perf_counter() - started
        with client() as jira:
            second = pull(store, jira, context)
    cases = len(store.list_cases())
    store.close()
    minimum = math.ceil(issues / page_size) + CONSTANT_REQUESTS
    return {
        "cases": cases,
        "requests": first.requests,
        "minimum": minimum,
        "ratio": first.requests / minimum,
        "rate": issues / elapsed,
        "seconds": elapsed,
        "noop_requests": second.requests,
        "noop_new": len(second.new_cases),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--flavor", choices=["cloud", "dc", "both"], default="both")
    args = parser.parse_args()
    flavors = ["cloud", "dc"] if args.flavor == "both" else [args.flavor]
    with tempfile.TemporaryDirectory() as folder:
        for flavor in flavors:
            r = run(flavor, args.issues, args.page_size, Path(folder))
            print(
                f"{flavor:5}  {args.issues} issues -> {r['cases']:.0f} cases  "
                f"requests {r['requests']:.0f} / minimum {r['minimum']:.0f} = {r['ratio']:.3f}x "
                f"(target <= 1.1)  {r['rate']:.0f} issues/s ({r['seconds']:.1f} s)  "
                f"no-op sync: {r['noop_requests']:.0f} requests (target <= 2), "
                f"{r['noop_new']:.0f} new cases"
            )


if __name__ == "__main__":
    main()
