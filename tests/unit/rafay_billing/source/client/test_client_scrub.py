"""The key masked in text a server sent: whole anywhere, and its start where a cut left it."""

from __future__ import annotations

import pytest

from rafay_billing.source.client import cut_scrubbed, scrub_secret

KEY = "qZ7xK2-sekrit-Wv9Lp4"


def test_every_whole_key_is_masked_and_other_text_is_left_alone() -> None:
    assert scrub_secret(f"a {KEY} b {KEY}", KEY) == "a *** b ***"
    assert scrub_secret("nothing here", KEY) == "nothing here"
    assert scrub_secret(f"x {KEY[:8]}", KEY) == f"x {KEY[:8]}"  # not cut: a start of it is just text
    assert scrub_secret("text", "") == "text"


@pytest.mark.parametrize("size", range(4, len(KEY)))
@pytest.mark.parametrize("closer", ["", "'", '"', "…", "'…"])
def test_a_start_of_the_key_left_at_a_cut_is_masked(size: int, closer: str) -> None:
    assert scrub_secret(f"header: {KEY[:size]}{closer}", KEY, cut=True) == f"header: ***{closer}"


def test_a_start_shorter_than_four_characters_is_left() -> None:
    assert scrub_secret(f"abc {KEY[:3]}", KEY, cut=True) == f"abc {KEY[:3]}"


@pytest.mark.parametrize("start", range(0, 60))
def test_a_cut_never_leaves_four_characters_of_the_key_wherever_it_falls(start: int) -> None:
    shown = cut_scrubbed("x" * start + KEY + "y" * 60, KEY, 50)
    assert len(shown) <= 50 and shown.endswith("…")
    assert [KEY[i : i + 4] for i in range(len(KEY) - 3) if KEY[i : i + 4] in shown] == [], shown


@pytest.mark.parametrize("start", range(42, 46))
def test_a_start_of_the_key_running_into_the_cut_is_masked_even_when_the_rest_differs(start: int) -> None:
    assert cut_scrubbed("x" * start + KEY[:12] + "-not-the-key" + "y" * 60, KEY, 50) == "x" * start + "***…"


def test_text_within_the_limit_is_not_cut() -> None:
    assert cut_scrubbed(f"short {KEY}", KEY, 50) == "short ***"
    assert cut_scrubbed("x" * 60, KEY, 50, marker="") == "x" * 50
