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
  there, and `findall` goes on after its end, so one call gives every keyword that does not
  start inside an earlier one. Those that do are known when the rules load: the keywords that
  occur *within* a keyword (`订单` and `单失` in `订单失败`; what is next to them is part of it)
  are found with it. Only a keyword that can *spill*, one whose end can be the start of
  another, longer one (`订单失败` and `失败很慢`), needs more: where it occurs, the longest
  keyword is matched at each place inside it where a longer one can start (for `订单失败`, at
  `失败`), which finds the overlapping `失败很慢`. (A search loop that went on from the next
  position after every keyword found took twice as long: a Python call per keyword.) Latin
  keywords stay out of the trie: nearly every letter of a Latin report would start a branch,
  which made such reports three times as slow.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, pairwise

__all__ = ["KeywordIndex", "fold", "normalize"]

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


def fold(text: str) -> str:
    """Case-folded, line breaks made spaces: what `KeywordIndex.find` needs unless the index is
    `spaced` (about half the cost of `normalize`, which splits the text into words and joins
    them again)."""
    return text.casefold().replace("\n", " ")


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


def _occurs_within(inner: str, outer: str, start: int) -> bool:
    """Whether `inner`, at `start` in `outer`, occurs wherever `outer` does.

    Its left end needs no guard (no keyword of the trie starts with a word character); its
    right end needs one only when it is a word character followed, inside `outer`, by another
    (at `outer`'s end, `outer`'s own guard holds for it).
    """
    end = start + len(inner)
    return end == len(outer) or not (_is_word_char(inner[-1]) and _is_word_char(outer[end]))


def _within(keyword: str, known: set[str]) -> tuple[str, ...]:
    """The other keywords of `known` that occur wherever `keyword` does, inside it."""
    return tuple(
        sorted(
            {
                keyword[start:end]
                for start in range(len(keyword))
                for end in range(start + 1, len(keyword) + 1)
                if (end - start) < len(keyword)
                and keyword[start:end] in known
                and _occurs_within(keyword[start:end], keyword, start)
            }
        )
    )


def _spills(keyword: str, starts: set[str]) -> tuple[int, ...]:
    """Where a longer keyword can start inside `keyword` and end after it: the places from
    which its end is in `starts`, the beginnings of keywords that are not whole keywords."""
    return tuple(start for start in range(1, len(keyword)) if keyword[start:] in starts)


def _anchors(keyword: str) -> list[Anchor]:
    """Pairs of consecutive words of a Latin keyword; its one word if it has only one.

    Wherever the keyword occurs they are consecutive words of the report too: what separates
    them in the keyword has no word character.
    """
    words = WORD.findall(keyword)
    pairs: list[Anchor] = list(pairwise(words))
    return pairs or [words[0]]


#: A run of white space but a line break, which separates the subject and body (see `fold`).
_SPACES = r"[^\S\n]+"


def _guarded(keyword: str) -> re.Pattern[str]:
    """The keyword, with a guard at each end that is a Latin word character; each of its (single)
    spaces stands for a run of white space, so that it is found in a `fold`ed text too."""
    left = f"(?<![{_WORD_CHARS}])" if _is_word_char(keyword[0]) else ""
    right = _RIGHT_GUARD if _is_word_char(keyword[-1]) else ""
    return re.compile(left + _SPACES.join(map(re.escape, keyword.split(" "))) + right)


@dataclass(frozen=True)
class _Anchored:
    """A Latin keyword of more than one word, checked in full when its anchor occurs."""

    keyword: str
    pattern: re.Pattern[str]
    #: Its longest part without white space: a plain substring test rules out nearly every one.
    part: str

    @classmethod
    def of(cls, keyword: str) -> _Anchored:
        return cls(keyword, _guarded(keyword), max(keyword.split(" "), key=len))


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
    #: For each keyword in the trie that has any, the others that occur inside it.
    within: dict[str, tuple[str, ...]]
    #: The keywords in the trie that can spill (see the module docstring), each with the
    #: places inside it where a longer keyword can start.
    spilling: dict[str, tuple[int, ...]]
    #: Whether a keyword in the trie has white space in it: then texts must be `normalize`d
    #: for `find`; otherwise case-folding them is enough (see `find`).
    spaced: bool
    #: Whether a keyword is anchored by a single word (not a pair).
    single: bool

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
            anchored.setdefault(anchor, []).append(_Anchored.of(keyword))
        known = set(others)
        within = {keyword: _within(keyword, known) for keyword in others}
        starts = {keyword[:end] for keyword in others for end in range(1, len(keyword))}
        return cls(
            words,
            {a: tuple(entries) for a, entries in anchored.items()},
            re.compile(_pattern(_trie(others))) if others else None,
            {keyword: inside for keyword, inside in within.items() if inside},
            {keyword: spills for keyword in others if (spills := _spills(keyword, starts))},
            any(" " in keyword for keyword in others),
            any(isinstance(anchor, str) for anchor in anchored),
        )

    def find(self, text: str) -> set[str]:
        """The keywords that occur in `text`: `normalize`d, or normalized texts joined by line
        breaks (no normalized keyword contains one, so none spans two texts; like the ends of
        a text, a line break is no word character, so a Latin keyword next to one still
        counts as whole words). When nobody asks which were in the subject, the subject and
        body are searched as one such text: one pass instead of two.

        Unless the index is `spaced`, `fold`ed texts give the same answer as normalized ones:
        a keyword of the trie has no white space in it, so it occurs in a run of other
        characters, the same in both, with white space or an end next to it in both; a Latin
        keyword's words are the same, and its spaces stand for any run of white space but the
        line break that separates two texts.
        """
        found = self._by_words(text)
        if self.pattern is not None:
            found |= self._by_trie(text)
        return found

    def find_in(self, subject: str, body: str) -> tuple[set[str], set[str]]:
        """The keywords in the subject, and those in the subject or the body (both normalized, or
        both `fold`ed unless the index is `spaced`)."""
        in_subject = self._by_words(subject)
        in_body = self._by_words(body) if body else set()
        if self.pattern is not None:
            in_subject |= self._by_trie(subject)
            if body:
                in_body |= self._by_trie(body)
        return in_subject, in_subject | in_body

    def _by_words(self, text: str) -> set[str]:
        if not (self.words or self.anchored):
            return set()
        words = WORD.findall(text)
        if not words:
            return set()
        found = set(self.words.intersection(words)) if self.words else set()
        anchored = self.anchored
        if anchored:
            # The anchors that occur: a word, or two consecutive words (dict lookups, no set
            # of the report's words and pairs is built; words only when a keyword is anchored
            # by one).
            occurring = chain(words, pairwise(words)) if self.single else pairwise(words)
            for anchor in anchored.keys() & occurring:
                for entry in anchored[anchor]:
                    if entry.part in text and entry.pattern.search(text):
                        found.add(entry.keyword)
        return found

    def _by_trie(self, text: str) -> set[str]:
        """The trie's keywords in `text` (see the module docstring)."""
        assert self.pattern is not None
        found = set(self.pattern.findall(text))
        if not found:
            return found
        within = self.within
        for keyword in within.keys() & found:
            found.update(within[keyword])
        if not self.spilling.keys().isdisjoint(found):
            self._spilled(text, found)
        return found

    def _spilled(self, text: str, found: set[str]) -> None:
        """Adds to `found` the keywords that start inside one that can spill and end after it.

        At every occurrence of every such keyword found, the longest keyword is matched at
        each place inside it where a longer one can start (its `spilling` offsets), as if the
        search had gone back there; what that finds may spill in turn. Keywords that end
        inside one are already known (`within`).
        """
        assert self.pattern is not None
        match_at, within, spilling = self.pattern.match, self.within, self.spilling
        pending = list(spilling.keys() & found)
        done: set[str] = set()
        while pending:
            keyword = pending.pop()
            if keyword in done:
                continue
            done.add(keyword)
            offsets = spilling[keyword]
            start = text.find(keyword)
            while start >= 0:
                for offset in offsets:
                    match = match_at(text, start + offset)
                    if match is not None and (other := match.group()) not in found:
                        inside = within.get(other, ())
                        found.add(other)
                        found.update(inside)
                        pending += spilling.keys() & {other, *inside}
                start = text.find(keyword, start + 1)
