"""Finding every rule keyword in a report in one pass, compiled once when the rules load.

Chinese has no spaces between words, so a CJK keyword matches as a substring; a Latin keyword
matches only as whole words, so `log` does not match `login` (but `CRM` does match in `登录CRM`).
Looping over hundreds of keywords per report is too slow for intake, so each keyword gets an
*anchor* that a report can be indexed by cheaply: a Latin word (the report's words are one set),
or a pair of CJK characters (the report's CJK pairs are another set). Only keywords whose anchor
occurs are then checked in full.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["KeywordIndex", "normalize"]

_WORD_CHARS = "0-9a-z_\u00c0-\u024f"
WORD = re.compile(f"[{_WORD_CHARS}]+")
_CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_IS_WORD_CHAR = re.compile(f"[{_WORD_CHARS}]")


def normalize(text: str) -> str:
    """Case-folded, every run of white space one space: how keywords and reports are compared."""
    return " ".join(text.casefold().split())


class _Kind(Enum):
    WORD = "word"  # one Latin word: found when it is one of the report's words
    CJK = "cjk"  # CJK only: a substring test
    PATTERN = "pattern"  # anything else (phrases, mixed scripts): a compiled pattern


def _pattern_for(keyword: str) -> re.Pattern[str]:
    # Guard only the ends that are Latin word characters: a CJK end needs no boundary.
    left = f"(?<![{_WORD_CHARS}])" if _IS_WORD_CHAR.match(keyword[0]) else ""
    right = f"(?![{_WORD_CHARS}])" if _IS_WORD_CHAR.match(keyword[-1]) else ""
    return re.compile(left + re.escape(keyword) + right)


@dataclass(frozen=True)
class _Keyword:
    text: str
    kind: _Kind
    pattern: re.Pattern[str] | None = None


@dataclass
class KeywordIndex:
    """All keywords of a rule set, indexed by anchor; `find(text)` says which occur."""

    by_word: dict[str, list[_Keyword]] = field(default_factory=dict)
    by_pair: dict[str, list[_Keyword]] = field(default_factory=dict)
    by_char: dict[str, list[_Keyword]] = field(default_factory=dict)
    unanchored: list[_Keyword] = field(default_factory=list)

    @classmethod
    def build(cls, keywords: Iterable[str]) -> KeywordIndex:
        index = cls()
        unique = sorted({normalize(k) for k in keywords if k.strip()})
        # The best anchor is the one fewest keywords share: in '订单失败' that is '单失', not the
        # '订单' that half the reports contain, so fewer keywords are checked in full.
        shared = Counter(a for keyword in unique for a in set(_anchors(keyword)))
        for keyword in unique:
            index._add(keyword, shared)
        return index

    def _add(self, keyword: str, shared: Counter[str]) -> None:
        if WORD.fullmatch(keyword):
            self.by_word.setdefault(keyword, []).append(_Keyword(keyword, _Kind.WORD))
            return
        if CJK_RUN.fullmatch(keyword):
            entry = _Keyword(keyword, _Kind.CJK)
        else:
            entry = _Keyword(keyword, _Kind.PATTERN, _pattern_for(keyword))
        # Any whole Latin word of the keyword is a whole word of a report that contains it, and
        # any two adjacent CJK characters of it are adjacent in the report too.
        anchors = _anchors(keyword)
        if not anchors:
            self.unanchored.append(entry)
            return
        anchor = min(reversed(anchors), key=lambda a: shared[a])
        table = self.by_word if WORD.fullmatch(anchor) else self.by_pair
        if len(anchor) == 1 and CJK_RUN.fullmatch(anchor):
            table = self.by_char
        table.setdefault(anchor, []).append(entry)

    def find(self, text: str) -> set[str]:
        """The keywords that occur in `text` (which must be `normalize`d)."""
        candidates: list[_Keyword] = list(self.unanchored)
        if self.by_word:
            for word in self.by_word.keys() & set(WORD.findall(text)):
                candidates.extend(self.by_word[word])
        if self.by_pair or self.by_char:
            runs = CJK_RUN.findall(text)
            if self.by_pair:
                pairs = {run[i : i + 2] for run in runs for i in range(len(run) - 1)}
                for pair in self.by_pair.keys() & pairs:
                    candidates.extend(self.by_pair[pair])
            if self.by_char:
                for char in self.by_char.keys() & set("".join(runs)):
                    candidates.extend(self.by_char[char])
        return {keyword.text for keyword in candidates if _occurs(keyword, text)}


def _anchors(keyword: str) -> list[str]:
    """Whole Latin words and adjacent CJK pairs (a lone CJK character if that is all)."""
    words = WORD.findall(keyword)
    runs = CJK_RUN.findall(keyword)
    pairs = [run[i : i + 2] for run in runs for i in range(len(run) - 1)]
    singles = [run for run in runs if len(run) == 1]
    return [*words, *pairs] or singles


def _occurs(keyword: _Keyword, text: str) -> bool:
    if keyword.kind is _Kind.WORD:
        return True  # the anchor was the keyword itself
    if keyword.kind is _Kind.CJK:
        return keyword.text in text
    assert keyword.pattern is not None
    # The plain substring test is much cheaper and rules out nearly every candidate.
    return keyword.text in text and keyword.pattern.search(text) is not None
