"""The seed page (book/the-seed.md) is what k8sbook.textbook.seed makes of the catalog."""

from __future__ import annotations

import re
from pathlib import Path

from k8sbook.textbook import catalog, seed

PAGE = Path(__file__).resolve().parents[2] / "book" / "the-seed.md"
SEED_TEXT = Path("/work/shared/reference/seed-qa.txt")


def test_committed_page_is_what_the_catalog_says():
    assert PAGE.read_text(encoding="utf-8") == seed.seed_page(), (
        "book/the-seed.md is stale: run `python scripts/catalog_pages.py`")


def test_every_claim_is_quoted_in_chinese_translated_and_anchored():
    page = seed.seed_page()
    for c in catalog.claims():
        assert re.search(r"[\u4e00-\u9fff]", c.quote_zh), c.id
        assert c.translation.strip() and not re.search(r"[\u4e00-\u9fff]", c.translation), c.id
        assert f"({seed.anchor(c.id)})=" in page
        assert " ".join(c.quote_zh.split()) in page
    table = [line for line in page.splitlines() if line.startswith("| [")]
    assert len(table) == 29
    assert all(re.search(r"[\u4e00-\u9fff]", row) for row in table)


def test_quotes_are_the_seed_word_for_word():
    if not SEED_TEXT.exists():  # the shared reference folder is not part of the repository
        return
    text = SEED_TEXT.read_text(encoding="utf-8")
    for c in catalog.claims():
        assert c.quote_zh in text, c.id


def test_chapter_links():
    assert seed.anchor("B5") == "claim-b5"
    assert seed.chapter_link("07-the-kubelet-pulls", None) == (
        "[chapter 7](../notebooks/07-the-kubelet-pulls.ipynb)")
    assert seed.chapter_link("a1-kubectl-against-the-model", None).startswith("[appendix A1]")
    assert seed.chapter_link(None, "13-who-is-calling") == "chapter 13 (being written)"
