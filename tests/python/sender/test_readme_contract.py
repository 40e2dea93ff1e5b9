"""The README's tables of answers and exit codes say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tiktok_sender import errors
from tiktok_sender.api import classify as cl

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.index("\n#", start + len(title))
    return README[start:end]


def test_every_exit_code_is_in_the_readme_and_nothing_else() -> None:
    table = section("### Exit codes")
    documented = {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    defined = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert documented == defined


@pytest.mark.parametrize(("codes", "words"), [
    (cl.DELIVERED_CODES, "`delivered`"),
    (cl.THROTTLE_CODES, "every worker pauses"),
    (cl.RETRY_CODES, "after a backoff"),
    (cl.REJECT_CODES, "naming events"),
    (cl.TOKEN_CODES, "the run stops"),
    (cl.CONFIG_CODES, "the run stops; exit 4"),
    ({40001}, "that event source stops"),
    ({40061}, "split in halves"),
    ({20001}, "20001 naming"),
])
def test_every_api_code_has_its_row_in_the_answer_table(codes: frozenset[int], words: str) -> None:
    rows = [line for line in section("#### How each answer is handled").splitlines()
            if line.startswith("| ")]
    for code in codes:
        matching = [r for r in rows if re.search(rf"\b{code}\b", r.split("|")[1])]
        assert matching, f"code {code} has no row"
        assert any(words in r for r in matching), f"code {code}: no row says {words!r}"
