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
        for keyword in sorted({normalize(k) for k in keywords if k.strip()}):
            index._add(keyword)
        return index

    def _add(self, keyword: str) -> None:
        if WORD.fullmatch(keyword):
            self.by_word.setdefault(keyword, []).append(_Keyword(keyword, _Kind.WORD))
            return
        if CJK_RUN.fullmatch(keyword):
            entry = _Keyword(keyword, _Kind.CJK)
        else:
            entry = _Keyword(keyword, _Kind.PATTERN, _pattern_for(keyword))
        # Any whole Latin word of the keyword is a whole word of a report that contains it, and
        # any two adjacent CJK characters of it are adjacent in the report too.
        words = WORD.findall(keyword)
        pairs = [run[:2] for run in CJK_RUN.findall(keyword)]
        if words:
            self.by_word.setdefault(words[0], []).append(entry)
        elif any(len(pair) == 2 for pair in pairs):
            pair = next(pair for pair in pairs if len(pair) == 2)
            self.by_pair.setdefault(pair, []).append(entry)
        elif pairs:
            self.by_char.setdefault(pairs[0], []).append(entry)
        else:
            self.unanchored.append(entry)

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


def _occurs(keyword: _Keyword, text: str) -> bool:
    if keyword.kind is _Kind.WORD:
        return True  # the anchor was the keyword itself
    if keyword.kind is _Kind.CJK:
        return keyword.text in text
    assert keyword.pattern is not None
    return keyword.pattern.search(text) is not None
