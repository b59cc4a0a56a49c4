"""Finding every rule keyword in a report in one pass, compiled once when the rules load.

Chinese has no spaces between words, so a CJK keyword matches as a substring; a Latin keyword
matches only as whole words, so `log` does not match `login` (but `CRM` does match in `登录CRM`).
In one rule: a keyword occurs where its text occurs and, at each end that is a Latin word
character, the report's neighbouring character is not one.
A keyword also matches as typed other ways (`typed_forms`): its Latin letters and digits in
full width, as a Chinese input method in full-width mode types them (`ＥＲＲＯＲ` for `error`),
and its apostrophe as the typographic one of phones and word processors (`can’t`). These are
more keywords in the automaton, so the report's text is searched as it is: nothing per report.

All keywords are in one Aho-Corasick automaton (`pyahocorasick`, a well-kept, BSD-licensed C
implementation): one pass over a report gives every occurrence of every keyword, overlapping
and nested ones included (`订单`, `单失`, `订单失败` and `失败很慢` in `订单失败很慢`), in time
linear in the text. Each occurrence comes with what its check needs
(the keyword, its length, whether each end is a Latin word character); only a Latin end has its
neighbour looked up, in a set of the word characters.

Why not a regular expression: a trie-shaped one finds the longest keyword at a position and
goes on after it, so what occurs within a keyword, or starts inside one and ends after it, has
to be worked out when the rules load and searched again, and Latin keywords need a lookup of
the report's words and pairs of words besides (about 200 lines in all). Over the 2,000 reports
of `bench/rules_bench.py` (200 rules, 1,040 keywords, ~275 characters a report; subject and body
folded and joined, as `Conditions` searches them) that took ~14 us a report against ~8 for
`find`, `fold` + `find` ~16.5 against ~9.5 us. Of the ~8 us,
~5 are the automaton's pass (its nodes look a character up among their children one by one,
and the root has one child for each first character of a keyword), ~1 the white-space check
(see `find`) and ~1 the checks of the ~13 occurrences a report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick

__all__ = ["KeywordIndex", "fold", "keyword_key", "normalize", "typed_forms"]

_DIGITS_AND_LETTERS = "0123456789abcdefghijklmnopqrstuvwxyz"
#: Their full-width forms (U+FF10..., U+FF41...), as case folding leaves them.
_WIDE = "".join(map(chr, [*range(0xFF10, 0xFF1A), *range(0xFF41, 0xFF5B)]))
_TO_WIDE = str.maketrans(_DIGITS_AND_LETTERS, _WIDE)
#: The typographic apostrophe (U+2019) a keyword's plain one also matches.
_APOSTROPHE = "\u2019"
#: A keyword written with full-width letters or digits, or typographic apostrophes, is read as
#: the plain one (`keyword_key`): its other forms then come from there.
_TO_NARROW = str.maketrans(_WIDE + "\u2018" + _APOSTROPHE, _DIGITS_AND_LETTERS + "''")

#: The Latin word characters (`[0-9a-z_\u00c0-\u024f]`, and the full-width letters and digits,
#: either case): a keyword's end that is one must not have one next to it in the report.
WORD_CHARS = frozenset(
    _DIGITS_AND_LETTERS + "_" + "".join(map(chr, range(0xC0, 0x250))) + _WIDE + _WIDE.upper()
)


def typed_forms(keyword: str) -> set[str]:
    """A normalized keyword as it may be typed: as it is, with its Latin letters and digits in
    full width (case-folded: `ｅｒｒｏｒ`), and either with the typographic apostrophe."""
    forms = {keyword, keyword.translate(_TO_WIDE)}
    if "'" in keyword:
        forms |= {form.replace("'", _APOSTROPHE) for form in forms}
    return forms


def keyword_key(keyword: str) -> str:
    """A rule's keyword as the index and the conditions know it: normalized, its full-width
    letters and digits and typographic apostrophes plain (`ＳＳＯ` and `sso` are one keyword)."""
    return normalize(keyword).translate(_TO_NARROW)


def normalize(text: str) -> str:
    """Case-folded, every run of white space one space: how keywords and reports are compared."""
    return " ".join(text.casefold().split())


def fold(text: str) -> str:
    """Case-folded, line breaks made spaces: all `KeywordIndex.find` needs (about half the cost
    of `normalize`, which splits the text into words and joins them again)."""
    return text.casefold().replace("\n", " ")


def _regular(text: str) -> bool:
    """Whether every run of white space in each line of `text` is one plain space: then a
    keyword with a space in it occurs in `text` exactly where it does in its normalized form.

    Two spaces in a row show as "  "; any other white space (tab, CR, NBSP, U+3000, U+2028...)
    is not printable. Nor is the line break between two texts, hence the second try with line
    breaks made spaces (a run of white space across one does not matter: no keyword spans two
    texts).
    """
    return "  " not in text and (text.isprintable() or text.replace("\n", " ").isprintable())


def _normalize_lines(text: str) -> str:
    return "\n".join([normalize(line) for line in text.split("\n")])


@dataclass(frozen=True)
class KeywordIndex:
    """All keywords of a rule set, compiled; `find(text)` says which occur."""

    #: Keyword -> (keyword, its length - 1, whether its first and its last character is a
    #: Latin word character); None when there are no keywords (an empty automaton cannot
    #: search).
    automaton: Any
    #: Whether a keyword has a space in it: then `find` makes sure a text's white space is
    #: single spaces (see `_regular`), and normalizes the lines of one where it is not.
    phrases: bool

    @classmethod
    def build(cls, keywords: Iterable[str]) -> KeywordIndex:
        unique = {keyword_key(k) for k in keywords} - {""}
        if not unique:
            return cls(None, False)
        automaton = ahocorasick.Automaton()
        # Each form found stands for its keyword (keys are plain, so no form is another key).
        forms = {form: keyword for keyword in unique for form in typed_forms(keyword)}
        for form, keyword in forms.items():
            automaton.add_word(
                form, (keyword, len(form) - 1, form[0] in WORD_CHARS, form[-1] in WORD_CHARS)
            )
        automaton.make_automaton()
        return cls(automaton, any(" " in keyword for keyword in unique))

    def find(self, text: str) -> set[str]:
        """The keywords that occur in `text`: `fold`ed or `normalize`d, or such texts joined by
        line breaks (no keyword contains one, so none spans two texts; like the ends of a text,
        a line break is no word character, so a Latin keyword next to one still counts as
        whole words). When nobody asks which were in the subject, the subject and body are
        searched as one such text: one pass instead of two.

        A folded text gives what its normalized form does: a keyword is normalized, so a run
        of its characters other than white space occurs in the same places in both, with
        white space or an end (no word character) next to it in both. Only a keyword with a
        space in it differs: it matches one space, not a run of white space; so when there
        is one and the text has other white space than single spaces (rare, and cheap to rule
        out), its lines are normalized first.
        """
        if self.automaton is None:
            return set()
        if self.phrases and not _regular(text):
            text = _normalize_lines(text)
        return self._search(text)

    def find_in(self, subject: str, body: str) -> tuple[set[str], set[str]]:
        """The keywords in the subject, and those in the subject or the body (each `fold`ed or
        normalized, see `find`)."""
        if self.automaton is None:
            return set(), set()
        if self.phrases:
            if not _regular(subject):
                subject = _normalize_lines(subject)
            if not _regular(body):
                body = _normalize_lines(body)
        in_subject = self._search(subject)
        return in_subject, (in_subject | self._search(body)) if body else set(in_subject)

    def _search(self, text: str) -> set[str]:
        found: set[str] = set()
        last = len(text) - 1
        for end, (keyword, back, left, right) in self.automaton.iter(text):
            if left and (start := end - back) and text[start - 1] in WORD_CHARS:
                continue
            if right and end < last and text[end + 1] in WORD_CHARS:
                continue
            found.add(keyword)
        return found
