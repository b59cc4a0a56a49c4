"""The corpus evaluation as a test: real mail from other projects' suites (../shared/corpus).

Read in place, never copied (they carry their own licences). Without the corpus the tests skip;
with CASEDESK_REQUIRE_SERVICES=1 (CI) its absence fails them, like a missing test server.
Floors are today's figures: a parser change that loses a match, or turns a deliberate difference
into an unexplained one, fails here; `python bench/corpus_eval.py --verbose` shows which.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus_eval import DELIBERATE, Score, eval_bounce, eval_parse, eval_reply
from tests.support.services import require_service

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not CORPUS.is_dir():
        require_service("corpus", f"no corpus at {CORPUS}; it lives beside the project")
    return CORPUS


@pytest.fixture(scope="module")
def scores(corpus: Path) -> dict[str, Score]:
    return {
        "parse": eval_parse(corpus, quick=False),
        "reply": eval_reply(corpus, quick=False),
        "bounce": eval_bounce(corpus, quick=False),
    }


def test_parse_matches_or_differs_only_deliberately(scores: dict[str, Score]) -> None:
    parse = scores["parse"]
    assert parse.matched >= 96, parse.failures
    assert parse.failures == []


def test_reply_floor_and_known_failures(scores: dict[str, Score]) -> None:
    reply = scores["reply"]
    assert reply.matched >= 118
    # Known and open: talon's Polymail attribution over five lines, and a 32-dash rule line
    # that mail-parser-reply's normalisation deletes.
    known = {
        "talon/inline/test_feedback_below_left_unparsed#0: reply",
        "talon/inline/test_pattern_on_date_polymail#0: reply",
    }
    assert set(reply.failures) <= known, sorted(set(reply.failures) - known)


def test_bounce_floor_and_known_failures(scores: dict[str, Score]) -> None:
    bounce = scores["bounce"]
    assert bounce.matched >= 101
    # bounce_01 names no address and its subject is "Mail Error": it stays an auto-reply.
    assert set(bounce.failures) <= {"bounce_01.txt: kind"}, bounce.failures


def test_every_deliberate_reason_is_still_needed(scores: dict[str, Score]) -> None:
    used = {
        key.strip()
        for score in scores.values()
        for item in score.deliberate
        for key in item.rpartition(": ")[2].split(",")
    }
    stale = [reason.key for reason in DELIBERATE if reason.key not in used]
    assert stale == [], f"reasons no mail needs any more (remove them): {stale}"


def test_quick_subset_has_no_unexplained_parse_or_reply_failure(corpus: Path) -> None:
    assert eval_parse(corpus, quick=True).failures == []
    assert eval_reply(corpus, quick=True).failures == []
