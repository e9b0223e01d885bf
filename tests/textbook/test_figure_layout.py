"""The layout rules of k8sbook.textbook.figures: wrapping, folding, the legibility measure."""

from __future__ import annotations

from k8sbook.core.trace import Message
from k8sbook.textbook import figures


def _msg(seq, src, dst, verb, resource="", result="200", path=None, t=None):
    return Message(seq, float(seq if t is None else t), src, dst,
                   path or f"{src.split('/')[0]}->{dst.split('/')[0]}", "https", verb,
                   resource, "", result)


def test_wrap_keeps_every_character_and_respects_the_width():
    text = "GET /api/v1/namespaces/default/pods/web-1 → 409 Conflict"
    out = figures.wrap(text, 14, breaks="/")
    assert all(len(line) <= 14 for line in out.splitlines())
    assert out.replace("\n", "").replace(" ", "") == text.replace(" ", "")
    assert "…" not in out
    assert figures.wrap("short", 20) == "short"


def test_wrap_splits_a_word_longer_than_a_line():
    out = figures.wrap("subjectaccessreviews", 8)
    assert out.splitlines() == ["subjecta", "ccessrev", "iews"]


def test_sequence_diagram_never_cuts_a_label():
    long = "x" * 30 + "/" + "y" * 30 + " → 409 Conflict"
    msgs = [_msg(0, "kubectl", "kube-apiserver", "UPDATE", long, "409 Conflict")]
    measured = figures.legibility(figures.svg(figures.sequence_diagram(msgs)))
    assert measured.cut == []
    assert measured.min_text_px >= figures.MIN_TEXT_PX
    assert measured.width_px <= figures.COLUMN_PX


def test_sequence_diagram_is_capped_at_the_column_width():
    msgs = [_msg(i, "kubectl", f"pod/p{i}", "GET") for i in range(9)]
    measured = figures.legibility(figures.svg(figures.sequence_diagram(msgs, width=13)))
    assert measured.width_px <= figures.COLUMN_PX
    assert measured.min_text_px >= figures.MIN_TEXT_PX


def test_fold_summarises_consecutive_noise_one_row_per_pair():
    noise = [_msg(i, f"kubelet/node-{n}", f"container-runtime/node-{n}", "ListPodSandbox",
                  result="OK") for i, n in enumerate("abab")]
    msgs = [_msg(10, "kubectl", "kube-apiserver", "LIST", "pods"), *noise,
            _msg(11, "kubectl", "kube-apiserver", "GET", "pods")]
    fig = figures.sequence_diagram(msgs, fold=lambda m: "CRI polls"
                                   if m.verb == "ListPodSandbox" else None)
    text = figures.svg(fig)
    assert text.count("CRI polls: 2") == 2  # one row per node (the label may wrap)
    assert "ListPodSandbox" not in text


def test_legibility_scales_wide_figures_to_the_column():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="1032pt" height="10pt" '
           'viewBox="0 0 1032 10"><text style="font-size: 9px">a…</text></svg>')
    measured = figures.legibility(svg, column_px=688)
    assert measured.width_px == 688
    assert abs(measured.min_text_px - 9 * 688 / 1032) < 1e-9
    assert measured.cut == ["a…"]
