"""Splitting long texts for messengers that cap a message's length.

Messengers count length differently (Telegram counts UTF-16 code units, others code points), so the unit is a
parameter. A cut is placed at the most natural boundary that keeps a part reasonably full: a paragraph break,
then a line break, then the end of a sentence, then a space; only a text without any of these is cut hard, and
then never inside a grapheme cluster as far as it can be recognised without a Unicode segmentation library
(combining marks, ZWJ emoji sequences, variation selectors, skin tones, flags, keycaps, Hangul jamo). Python
strings index code points, so a surrogate pair is never split by construction.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

__all__ = ["TextUnit", "split_text", "text_length"]

TextUnit = Literal["codepoints", "utf16"]

# A boundary earlier than this fraction of the limit would leave a part that looks truncated, so the next,
# finer kind of boundary is tried first. Word boundaries are accepted anywhere: a short part beats a cut word.
_MIN_FILL = 0.5

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n\s*")
# End of a sentence: terminal punctuation, optional closing quotes/brackets, then whitespace (none is needed
# after CJK full stops, which are not followed by spaces).
_SENTENCE = re.compile(
    "(?<=[.!?\u2026])[\"'\u201d\u2019\u00bb)\\]]*(\\s+)"  # Latin-style: . ! ? … then closers
    '|(?<=[\u3002\uff01\uff1f])[\u300d\u300f\uff09"\u201d\u2019]*(\\s*)'  # CJK full stops, then closers
)
_SPACE = re.compile(r"\s+")

_ZWJ = 0x200D
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_EMOJI_TAGS = range(0xE0020, 0xE0080)
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
_HANGUL_V_T = range(0x1160, 0x1200)


def text_length(text: str, unit: TextUnit) -> int:
    """The length of `text` as the messenger counts it."""
    if unit == "codepoints":
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def split_text(text: str, limit: int, unit: TextUnit) -> list[str]:
    """Split `text` into parts of at most `limit` units, in order.

    Whitespace at a cut is dropped (a part never starts or ends with the break it was cut at); nothing else
    is lost. A text that fits is returned as it is, even when empty. Raises `ValueError` for a limit too small
    to hold any character in the given unit.
    """
    if unit not in ("codepoints", "utf16"):
        raise ValueError(f"unknown text unit {unit!r}; expected 'codepoints' or 'utf16'")
    minimum = 2 if unit == "utf16" else 1
    if limit < minimum:
        raise ValueError(f"limit must be at least {minimum} for unit {unit!r}, got {limit}")
    if text_length(text, unit) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while rest:
        if text_length(rest, unit) <= limit:
            parts.append(rest)
            break
        fit = _fitting_prefix(rest, limit, unit)
        head, tail = _cut(rest, fit)
        if head.strip():  # a run of whitespace longer than a part shows nothing: no blank message for it
            parts.append(head)
        rest = tail
    return parts


def _fitting_prefix(text: str, limit: int, unit: TextUnit) -> int:
    """The largest number of code points from the start of `text` that fit in `limit` units."""
    if unit == "codepoints":
        return min(limit, len(text))
    used = 0
    for index, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def _cut(text: str, fit: int) -> tuple[str, str]:
    """Cut `text` somewhere within its first `fit` code points; return the part and the remainder."""
    window = text[: fit + 1]  # one more character, so a break right after the fitting prefix is seen
    floor = int(fit * _MIN_FILL)
    for pattern, min_end in ((_PARAGRAPH, floor), (_LINE, floor), (_SENTENCE, floor), (_SPACE, 1)):
        cut = _last_break(pattern, window, fit, min_end)
        if cut is not None:
            start, end = cut
            return text[:start].rstrip(), text[end:].lstrip()
    position = _grapheme_boundary(text, fit)
    return text[:position], text[position:]


def _last_break(pattern: re.Pattern[str], window: str, fit: int, min_end: int) -> tuple[int, int] | None:
    """The last match of `pattern` whose break starts within the fitting prefix and after `min_end`.

    Returns the span of the whitespace to drop; for sentences, that is the whitespace after the punctuation.
    """
    best: tuple[int, int] | None = None
    for match in pattern.finditer(window):
        start, end = match.span(match.lastindex) if match.lastindex else match.span()
        if start > fit:
            break
        if start >= min_end and start > 0:
            best = (start, end)
    return best


def _grapheme_boundary(text: str, position: int) -> int:
    """The nearest position at or before `position` that does not split a grapheme cluster.

    When a single cluster is longer than the whole limit (a pathological stack of marks), it has to be cut,
    and is cut at `position`, which still never splits a code point.
    """
    candidate = position
    while candidate > 0 and not _is_boundary(text, candidate):
        candidate -= 1
    return candidate if candidate > 0 else position


def _is_boundary(text: str, index: int) -> bool:
    """Whether a cut between `text[index - 1]` and `text[index]` keeps grapheme clusters whole."""
    before, after = ord(text[index - 1]), ord(text[index])
    if before == 0x0D and after == 0x0A:
        return False
    if after == _ZWJ or before == _ZWJ:
        return False
    if unicodedata.category(chr(after)) in ("Mn", "Me", "Mc"):
        return False
    if after in _SKIN_TONES or after in _EMOJI_TAGS or after == 0x20E3:
        return False
    if any(after in selectors for selectors in _VARIATION_SELECTORS):
        return False
    if after in _HANGUL_V_T and (0x1100 <= before < 0x1200 or 0xAC00 <= before <= 0xD7A3):
        return False
    if before in _REGIONAL_INDICATORS and after in _REGIONAL_INDICATORS:
        # Flags are pairs: a cut between two indicators is fine only after an even-length run.
        run = 0
        while index - 1 - run >= 0 and ord(text[index - 1 - run]) in _REGIONAL_INDICATORS:
            run += 1
        return run % 2 == 0
    return True
