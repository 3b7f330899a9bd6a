"""split_text: limits in both units, boundary preference, and never breaking a character or grapheme."""

from __future__ import annotations

import random
import re

import pytest

from bridge.text import split_text, text_length

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # ZWJ sequence, 11 UTF-16 units
THUMB_DARK = "\U0001f44d\U0001f3ff"  # thumbs up + skin tone
FLAG_FR = "\U0001f1eb\U0001f1f7"
HEART = "\u2764\ufe0f"  # variation selector
E_ACUTE = "e\u0301"  # combining mark
KEYCAP_ONE = "1\ufe0f\u20e3"


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def check(text: str, limit: int, unit: str) -> list[str]:
    parts = split_text(text, limit, unit)  # type: ignore[arg-type]
    assert parts, "at least one part"
    assert all(text_length(p, unit) <= limit for p in parts)  # type: ignore[arg-type]
    assert squash("".join(parts)) == squash(text), "only whitespace at cuts may be dropped"
    return parts


def test_text_that_fits_is_returned_unchanged() -> None:
    assert split_text("hello  world \n", 20, "codepoints") == ["hello  world \n"]
    assert split_text("", 5, "utf16") == [""]


def test_utf16_counts_astral_characters_twice() -> None:
    assert text_length("a\U0001f600", "utf16") == 3
    assert text_length("a\U0001f600", "codepoints") == 2
    # Fits in code points, not in UTF-16 units.
    assert split_text("\U0001f600" * 3, 3, "codepoints") == ["\U0001f600" * 3]
    assert split_text("\U0001f600" * 3, 3, "utf16") == ["\U0001f600"] * 3


def test_paragraph_break_preferred_over_line_and_sentence() -> None:
    text = "First para line one.\nline two.\n\nSecond para. More words here."
    parts = check(text, 40, "codepoints")
    assert parts[0] == "First para line one.\nline two."
    assert parts[1] == "Second para. More words here."


def test_line_break_when_no_paragraph_fits() -> None:
    text = "alpha beta gamma.\ndelta epsilon zeta eta theta"
    assert check(text, 25, "codepoints")[0] == "alpha beta gamma."


def test_sentence_break_when_no_line_break() -> None:
    text = "One sentence here. Another sentence follows and goes on"
    parts = check(text, 30, "codepoints")
    assert parts[0] == "One sentence here."
    assert parts[1].startswith("Another")


def test_sentence_keeps_closing_quote() -> None:
    text = 'He said "stop." Then he left the room quietly'
    assert check(text, 25, "codepoints")[0] == 'He said "stop."'


def test_cjk_sentence_without_space() -> None:
    text = "今日は晴れです。明日は雨が降るでしょう。"
    parts = check(text, 12, "codepoints")
    assert parts[0] == "今日は晴れです。"


def test_word_break_when_no_sentence() -> None:
    parts = check("lorem ipsum dolor sit amet consectetur", 15, "codepoints")
    assert parts == ["lorem ipsum", "dolor sit amet", "consectetur"]


def test_early_paragraph_break_is_skipped_for_a_fuller_part() -> None:
    text = "Hi.\n\n" + "word " * 20
    parts = check(text, 40, "codepoints")
    assert len(parts[0]) > 20, "a paragraph break in the first fifth should not make a tiny part"


def test_hard_cut_without_any_boundary() -> None:
    parts = check("x" * 25, 10, "codepoints")
    assert parts == ["x" * 10, "x" * 10, "x" * 5]


@pytest.mark.parametrize("cluster", [FAMILY, THUMB_DARK, FLAG_FR, HEART, E_ACUTE, KEYCAP_ONE])
@pytest.mark.parametrize("unit", ["codepoints", "utf16"])
def test_hard_cuts_never_split_grapheme_clusters(cluster: str, unit: str) -> None:
    text = cluster * 30
    size = text_length(cluster, unit)  # type: ignore[arg-type]
    for limit in range(max(size, 2), size * 4 + 3):
        parts = check(text, limit, unit)
        for part in parts:
            assert part == cluster * (len(part) // len(cluster)), (limit, part)


def test_flags_are_cut_between_pairs() -> None:
    flags = FLAG_FR * 5  # ten regional indicators
    for limit in range(2, 11):
        for part in check(flags, limit, "codepoints"):
            assert len(part) % 2 == 0


def test_surrogate_pairs_are_never_split_in_utf16() -> None:
    text = "a" + "\U0001f600" * 10
    for limit in range(2, 12):
        for part in check(text, limit, "utf16"):
            part.encode("utf-8")  # a lone surrogate would not encode


def test_pathological_cluster_is_cut_rather_than_looping() -> None:
    zalgo = "a" + "\u0301" * 50
    parts = check(zalgo, 10, "codepoints")
    assert len(parts) == 6


def test_telegram_sized_text_round_trip() -> None:
    rng = random.Random(7)
    words = ["привет", "hello", "мир", "\U0001f600", FAMILY, "word.", "end!", "\n", "\n\n", "ok,"]
    text = " ".join(rng.choice(words) for _ in range(6000))
    parts = check(text, 4096, "utf16")
    assert len(parts) > 1


def test_no_empty_parts_from_whitespace_runs() -> None:
    text = "a" * 8 + " " * 30 + "b" * 8
    parts = check(text, 10, "codepoints")
    assert parts == ["a" * 8, "b" * 8]


@pytest.mark.parametrize(("limit", "unit"), [(0, "codepoints"), (1, "utf16"), (-5, "utf16")])
def test_too_small_limit_is_a_clear_error(limit: int, unit: str) -> None:
    with pytest.raises(ValueError, match="limit must be at least"):
        split_text("some text", limit, unit)  # type: ignore[arg-type]


def test_unknown_unit_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown text unit"):
        split_text("x", 5, "bytes")  # type: ignore[arg-type]


def test_a_whitespace_run_longer_than_a_part_yields_no_blank_part() -> None:
    text = " " * 25 + "hello world"
    parts = split_text(text, 10, "codepoints")
    assert all(part.strip() for part in parts)
    assert " ".join(parts).split() == ["hello", "world"]
