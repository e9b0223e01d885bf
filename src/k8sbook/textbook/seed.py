"""The seed page in its own words: every claim quoted in Chinese, translated, judged, linked.

The book's own code, with no Kubernetes counterpart. :func:`seed_page` turns the catalog's
claims (``data/claims.toml``: the Chinese quote, an English translation, the verdict, the
correction, the sources and the chapter that shows it) into the Markdown of ``book/the-seed.md``,
with one anchor per claim (``claim-b5``) that chapters and tables link to. The page is generated,
never edited by hand: ``python scripts/catalog_pages.py`` writes it, and a test fails when the
committed page differs from what the catalog says.
"""

from __future__ import annotations

from k8sbook.textbook.catalog import VERDICTS, Claim, claims

__all__ = ["SEED_DATE", "SEED_TITLE", "SEED_TITLE_EN", "anchor", "chapter_link", "seed_page"]

SEED_TITLE = "k8s组件之间如何通信,详细说明20点"
SEED_TITLE_EN = "How do the k8s components communicate? Explain 20 points in detail"
SEED_DATE = "2023-08-31"

_ANSWERS = {
    1: "Answer 1: one paragraph",
    2: "Answer 2: twenty numbered points",
    3: "Answer 3: seven components and a closing summary",
}


def anchor(claim_id: str) -> str:
    """The label of a claim on the seed page: ``B5`` -> ``claim-b5``."""
    return f"claim-{claim_id.lower()}"


def chapter_link(chapter: str | None, planned: str | None, prefix: str = "../notebooks/") -> str:
    """A Markdown link to the chapter that shows a claim: ``[chapter 7](…07-….ipynb)``, or
    ``appendix A1``; a chapter not written yet is named, unlinked."""
    name = chapter or planned
    if name is None:
        return "no chapter"
    number = name.split("-", 1)[0]
    label = f"appendix {number.upper()}" if number.startswith("a") else f"chapter {int(number)}"
    if chapter is None:
        return f"{label} (being written)"
    return f"[{label}]({prefix}{chapter}.ipynb)"


def _first_sentence(c: Claim) -> str:
    """The Chinese quote's first sentence (up to the first 。), whole: the table's 原文 cell."""
    head, found, _ = c.quote_zh.partition("。")
    return head + found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def seed_page() -> str:
    """The whole of ``book/the-seed.md``."""
    all_claims = claims()
    counts = {v: sum(c.verdict == v for c in all_claims) for v in VERDICTS}
    out = [
        "# The seed, claim by claim",
        "",
        "This book starts from a popular Chinese question-and-answer page,",
        f"**“{SEED_TITLE}”** (“{SEED_TITLE_EN}”, posted {SEED_DATE}; see {{doc}}`references`).",
        "It has three answers: one paragraph, twenty numbered points, and seven components",
        f"with a summary. That makes {len(all_claims)} claims, which this page quotes in the",
        "original Chinese, translates, and judges with one of four verdicts:",
        "",
    ]
    out += [f"- **{v}**: {counts[v]} claims" for v in VERDICTS]
    out += [
        "",
        "*Outdated* means the claim was true of an older Kubernetes and is not any more. Each",
        "verdict links to the chapter that shows, with a run of the model, what really happens.",
        "",
        "| claim | the seed says (原文) | in English | verdict | shown in |",
        "|---|---|---|---|---|",
    ]
    for c in all_claims:
        out.append(f"| [{c.id}](#{anchor(c.id)}) | {_cell(_first_sentence(c))} | {_cell(c.claim)} | "
                   f"{c.verdict} | {chapter_link(c.chapter, c.planned_chapter)} |")
    answer = 0
    for c in all_claims:
        if c.answer != answer:
            answer = c.answer
            out += ["", f"## {_ANSWERS[answer]}"]
        sources = ", ".join(f"<{url}>" for url in c.sources)
        out += [
            "",
            f"({anchor(c.id)})=",
            f"### {c.id}: {c.verdict}",
            "",
            f"> {' '.join(c.quote_zh.split())}",
            "",
            f"*Translation:* {' '.join(c.translation.split())}",
            "",
            f"**Verdict: {c.verdict}.** {' '.join(c.correction.split())}",
            "",
            f"Shown in {chapter_link(c.chapter, c.planned_chapter)}."
            + (f" Sources: {sources}." if sources else ""),
        ]
    return "\n".join(out) + "\n"
