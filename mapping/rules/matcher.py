"""Finding every rule keyword in a report in one pass, compiled once when the rules load.

Chinese has no spaces between words, so a CJK keyword matches as a substring; a Latin keyword
matches only as whole words, so `log` does not match `login` (but `CRM` does match in `登录CRM`).
In one rule: a keyword occurs where its text occurs and, at each end that is a Latin word
character, the report's neighbouring character is not one.

Looping over hundreds of keywords per report is too slow for intake, so they are compiled into
two indexes:

* A keyword that starts with a Latin word character is found by its words: its first word (and
  any next one) is a whole word of any report that contains the keyword. A one-word keyword is
  found when the report's set of words has it; a longer one is checked in full only when its
  *anchor* occurs: its rarest pair of consecutive words among the report's pairs of consecutive
  words (or, with only one word, e.g. `crm系统`, that word).
* Every other keyword (CJK, punctuation first) is in one regular expression shaped like a trie
  (`订(?:单(?:失败|超时)|...)`): the regex engine, in C, skips positions where none can start and
  follows only the branches that fit. At each position it finds the *longest* keyword starting
  there; the shorter ones that start there too are its prefixes, known when the rules load.
  Searching again from the next position after every hit finds overlapping keywords (`订单失败`
  and `单失`). (Latin keywords stay out of it: nearly every letter of a Latin report would start
  a branch, which made such reports three times as slow.)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["KeywordIndex", "normalize"]

_WORD_CHARS = "0-9a-z_\u00c0-\u024f"
_IS_WORD_CHAR = re.compile(f"[{_WORD_CHARS}]")
WORD = re.compile(f"[{_WORD_CHARS}]+")
#: After a keyword's last character: the report's next character is not a word character.
_RIGHT_GUARD = f"(?![{_WORD_CHARS}])"
#: After a keyword's first character: the report's character before it is not one. (Put after
#: the first character, not before it, so every branch starts with a literal and the engine can
#: skip positions where no keyword starts.)
_LEFT_GUARD = f"(?<![{_WORD_CHARS}].)"


def normalize(text: str) -> str:
    """Case-folded, every run of white space one space: how keywords and reports are compared."""
    return " ".join(text.casefold().split())


def _is_word_char(char: str) -> bool:
    return _IS_WORD_CHAR.match(char) is not None


_Trie = dict[str, "_Trie"]
#: Marks the end of a keyword in the trie (no keyword character is empty).
_END = ""


def _trie(keywords: Iterable[str]) -> _Trie:
    root: _Trie = {}
    for keyword in keywords:
        node = root
        for char in keyword:
            node = node.setdefault(char, {})
        node[_END] = {}
    return root


def _branches(node: _Trie, last: str) -> str:
    """The regex for everything below `node`; `last` is the character that led to it.

    Longer keywords are tried first (a greedy trie), so a match is the longest keyword there.
    """
    alternatives = [
        re.escape(char) + _branches(child, char) for char, child in node.items() if char
    ]
    if _END in node:
        alternatives.append(_RIGHT_GUARD if _is_word_char(last) else "")
    if len(alternatives) == 1:
        return alternatives[0]
    return f"(?:{'|'.join(alternatives)})"


def _pattern(root: _Trie) -> str:
    alternatives = []
    for char, child in root.items():
        guard = _LEFT_GUARD if _is_word_char(char) else ""
        alternatives.append(re.escape(char) + guard + _branches(child, char))
    return "|".join(alternatives)


def _prefix_holds(prefix: str, keyword: str) -> bool:
    """Whether `prefix` occurs wherever `keyword` does: its right end needs no guard there."""
    return not (_is_word_char(prefix[-1]) and _is_word_char(keyword[len(prefix)]))


def _anchors(keyword: str) -> list[Anchor]:
    """Pairs of consecutive words of a Latin keyword; its one word if it has only one.

    Wherever the keyword occurs they are consecutive words of the report too: what separates
    them in the keyword has no word character.
    """
    words = WORD.findall(keyword)
    pairs: list[Anchor] = list(pairwise(words))
    return pairs or [words[0]]


def _guarded(keyword: str) -> re.Pattern[str]:
    """The keyword, with a guard at each end that is a Latin word character."""
    left = f"(?<![{_WORD_CHARS}])" if _is_word_char(keyword[0]) else ""
    right = _RIGHT_GUARD if _is_word_char(keyword[-1]) else ""
    return re.compile(left + re.escape(keyword) + right)


@dataclass(frozen=True)
class _Anchored:
    """A Latin keyword of more than one word, checked in full when its anchor occurs."""

    keyword: str
    pattern: re.Pattern[str]


Anchor = str | tuple[str, str]  # a word, or two consecutive words


@dataclass(frozen=True)
class KeywordIndex:
    """All keywords of a rule set, compiled; `find(text)` says which occur."""

    #: Keywords that are one Latin word.
    words: frozenset[str]
    #: Other keywords that start with a Latin word character, by anchor.
    anchored: dict[Anchor, tuple[_Anchored, ...]]
    #: The trie of all other keywords (None when there are none).
    pattern: re.Pattern[str] | None
    #: For each keyword in the trie, the shorter ones that occur wherever it occurs (prefixes).
    also: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, keywords: Iterable[str]) -> KeywordIndex:
        unique = sorted({normalize(k) for k in keywords if k.strip()})
        latin = [k for k in unique if _is_word_char(k[0])]
        others = [k for k in unique if not _is_word_char(k[0])]
        words = frozenset(k for k in latin if WORD.fullmatch(k))
        anchors = {k: _anchors(k) for k in latin if k not in words}
        # The best anchor is the one fewest keywords share: fewer are checked in full.
        shared = Counter(anchor for candidates in anchors.values() for anchor in set(candidates))
        anchored: dict[Anchor, list[_Anchored]] = {}
        for keyword, candidates in anchors.items():
            anchor = min(candidates, key=lambda a: shared[a])
            anchored.setdefault(anchor, []).append(_Anchored(keyword, _guarded(keyword)))
        known = set(others)
        also = {
            keyword: tuple(
                prefix
                for prefix in (keyword[:end] for end in range(1, len(keyword)))
                if prefix in known and _prefix_holds(prefix, keyword)
            )
            for keyword in others
        }
        pattern = re.compile(_pattern(_trie(others))) if others else None
        return cls(words, {a: tuple(entries) for a, entries in anchored.items()}, pattern, also)

    def find(self, text: str) -> set[str]:
        """The keywords that occur in `text`: `normalize`d, or normalized texts joined by line
        breaks (no normalized keyword contains one, so none spans two texts; like the ends of
        a text, a line break is no word character, so a Latin keyword next to one still
        counts as whole words). When nobody asks which were in the subject, the subject and
        body are searched as one such text: one pass instead of two.
        """
        found = self._by_words(text)
        if self.pattern is not None:
            search, also = self.pattern.search, self.also
            match = search(text)
            while match is not None:
                keyword = match.group()
                if keyword not in found:
                    found.add(keyword)
                    found.update(also[keyword])
                # From the next character, not the match's end: keywords may overlap.
                match = search(text, match.start() + 1)
        return found

    def find_in(self, subject: str, body: str) -> tuple[set[str], set[str]]:
        """The keywords in the subject, and those in the subject or the body (both normalized)."""
        in_subject = self._by_words(subject)
        found = in_subject | self._by_words(body) if body else set(in_subject)
        if self.pattern is not None:
            self._by_trie(subject, body, in_subject, found)
        return in_subject, found

    def _by_words(self, text: str) -> set[str]:
        if not (self.words or self.anchored):
            return set()
        words = WORD.findall(text)
        present = set(words)
        found = set(self.words & present)
        if self.anchored:
            occurring: set[Anchor] = {*present, *pairwise(words)}
            for anchor in self.anchored.keys() & occurring:
                for entry in self.anchored[anchor]:
                    # The plain substring test is much cheaper and rules out nearly every one.
                    if entry.keyword in text and entry.pattern.search(text):
                        found.add(entry.keyword)
        return found

    def _by_trie(self, subject: str, body: str, in_subject: set[str], found: set[str]) -> None:
        """Adds the trie's keywords to both sets, searching subject and body in one go.

        They are joined by a line break, which no normalized keyword contains and which, like
        the ends of a text, is no word character.
        """
        assert self.pattern is not None
        text = f"{subject}\n{body}" if body else subject
        search, also, subject_end = self.pattern.search, self.also, len(subject)
        match = search(text)
        while match is not None:
            keyword, start = match.group(), match.start()
            if keyword not in found:
                found.add(keyword)
                found.update(also[keyword])
            if start < subject_end and keyword not in in_subject:
                in_subject.add(keyword)
                in_subject.update(also[keyword])
            # From the next character, not the match's end: keywords may overlap.
            match = search(text, start + 1)
