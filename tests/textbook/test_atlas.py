"""The map of chapter 1 (k8sbook.textbook.atlas): edges, tables and counts drawn from the catalog."""

from __future__ import annotations

import re
from dataclasses import replace

from k8sbook.textbook import atlas, catalog, figures
from k8sbook.textbook.catalog import VERDICTS, SeedEdge
from k8sbook.textbook.figures import PLANE_COLOURS, WRONG


def test_real_edges_are_exactly_the_catalog_paths_coloured_by_plane():
    edges = atlas.real_edges()
    assert [f"{a}->{b}" for a, b, _ in edges] == [p.id for p in catalog.paths()]
    for (_, _, attrs), p in zip(edges, catalog.paths(), strict=True):
        assert attrs["colour"] == PLANE_COLOURS[p.plane]
        assert attrs["style"] == "-"


def test_edge_labels_name_the_port_or_the_transport():
    label = {p.id: atlas.edge_label(p) for p in catalog.paths()}
    assert label["kube-apiserver->etcd"] == "2379"
    assert label["etcd->etcd"] == "2380"
    assert label["kube-apiserver->kubelet"] == "10250"
    assert label["kubelet->kube-apiserver"] == ""  # 6443 into the apiserver is the rule
    assert label["pod->kube-apiserver"] == "443"  # through the kubernetes Service
    assert label["kubelet->container-runtime"] == "unix socket"
    assert label["container-runtime->cni-plugin"] == "exec"
    assert "label" not in dict(atlas.real_edges(labels=False)[0][2])


def test_seed_edges_merge_claims_and_mark_wrong_ones_red_and_dashed():
    edges = {f"{a}->{b}": attrs for a, b, attrs in atlas.seed_edges()}
    assert edges["kube-scheduler->etcd"]["label"] == "B4 C2 C4 C8"
    assert edges["kube-scheduler->etcd"]["colour"] == WRONG
    assert edges["kube-scheduler->etcd"]["style"] == "--"
    assert edges["kubelet->kube-apiserver"]["style"] == "-"
    assert edges["kubelet->kube-apiserver"]["label"] == "A1 B1 C1 C5"
    wrong = {eid for eid, attrs in edges.items() if attrs["style"] == "--"}
    assert wrong == set(atlas.wrong_edges())


def test_wrong_edges_are_exactly_the_seed_edges_marked_not_real():
    expected = {e.id for c in catalog.claims() for e in c.seed_edges if not e.real}
    assert set(atlas.wrong_edges()) == expected
    assert atlas.wrong_edges()["kube-scheduler->etcd"] == ("B4", "C2", "C4", "C8")
    assert atlas.wrong_edges()["kube-apiserver->kubelet"] == ("B5",)


def test_an_edge_is_wrong_if_any_claim_says_so():
    base = catalog.claim("B6")
    ok = replace(base, id="X1", seed_edges=(SeedEdge("a", "b", True),))
    bad = replace(base, id="X2", seed_edges=(SeedEdge("a", "b", False, "no"),))
    assert atlas.wrong_edges([ok, bad]) == {"a->b": ("X1", "X2")}
    assert atlas.wrong_edges([ok]) == {}


def test_undrawn_paths_apply_the_kube_dns_alias():
    undrawn = {p.id for p in atlas.undrawn_paths()}
    assert "coredns->kube-apiserver" not in undrawn  # the seed draws kube-dns->kube-apiserver
    assert "pod->coredns" not in undrawn
    assert {"etcd->etcd", "kube-apiserver->webhook", "cloud-controller-manager->cloud-api",
            "container-runtime->cni-plugin"} <= undrawn
    drawn = {e.id for c in catalog.claims() for e in c.seed_edges}
    assert not undrawn & drawn


def test_paths_into_and_out_of():
    assert atlas.paths_into("etcd") == ["etcd->etcd", "kube-apiserver->etcd"]
    assert atlas.paths_into("kube-scheduler") == []
    assert "kube-apiserver->kubelet" in atlas.paths_out_of("kube-apiserver")


def test_verdict_counts_and_claims_by_verdict_cover_every_claim_once():
    counts = atlas.verdict_counts()
    assert list(counts) == list(VERDICTS) == ["accurate", "partly accurate", "inaccurate",
                                              "outdated"]
    assert sum(counts.values()) == 29
    by_verdict = atlas.claims_by_verdict()
    assert sorted(i for ids in by_verdict.values() for i in ids) == sorted(catalog.CLAIM_ORDER)
    assert {v: len(ids) for v, ids in by_verdict.items()} == counts
    assert "B5" in by_verdict["inaccurate"] and "B2" in by_verdict["accurate"]
    assert by_verdict["outdated"] == ["B8", "B12", "B16"]


def test_claims_table_links_each_claim_to_its_quote_on_the_seed_page():
    first = atlas.claims_table().splitlines()[2]
    assert first.startswith("| [A1](#claim-a1) |")


def test_shorten_cuts_at_a_word():
    assert atlas.shorten("a  b\nc") == "a b c"
    assert atlas.shorten("alpha beta gamma", 12) == "alpha beta…"
    assert len(atlas.shorten("word " * 50, 40)) <= 40


def test_chapter_cell_links_existing_chapters_only():
    assert atlas.chapter_cell("02-the-hub", "02-the-hub") == "[chapter 2](02-the-hub.ipynb)"
    assert atlas.chapter_cell(None, "13-who-is-calling") == "chapter 13 (being written)"
    assert atlas.chapter_cell(None, None) == "no chapter"


def _rows(table: str) -> list[str]:
    return table.splitlines()[2:]


def test_claims_table_has_every_claim_in_seed_order():
    table = atlas.claims_table()
    rows = _rows(table)
    assert [r.split(" | ")[0].lstrip("| [").split("]")[0] for r in rows] == list(
        catalog.CLAIM_ORDER)
    for c, row in zip(catalog.claims(), rows, strict=True):
        assert f"| {c.verdict} |" in row
        assert atlas.chapter_cell(c.chapter, c.planned_chapter) in row
    assert all(r.count(" | ") == 3 for r in rows)  # no stray pipes in the cells


def test_tables_escape_markdown():
    table = atlas.paths_table()
    assert "<nodeName>" not in table and "&lt;nodeName&gt;" in table
    assert len(_rows(table)) == len(catalog.paths())
    assert all(len(re.findall(r"(?<!\\)\|", r)) == 6 for r in _rows(table))


def test_wrong_edges_table_explains_every_wrong_edge():
    table = atlas.wrong_edges_table()
    rows = _rows(table)
    assert len(rows) == len(atlas.wrong_edges())
    assert any("`kube-scheduler->etcd`" in r and "no path" in r for r in rows)
    assert all(r.rstrip(" |").strip() for r in rows)


def test_maps_render_whole_names_and_the_undrawn_paths():
    # deterministic: the committed book/_static maps are compared with a fresh rendering by
    # tests/textbook/test_catalog_pages.py, in another process (and chapter 1's by nbval)
    a = figures.svg(atlas.real_map("map"))
    for name in catalog.components():  # long names are wrapped: one <text> per line
        assert all(f">{line}<" in a for line in figures._wrap_name(name).splitlines()), name
    s = figures.svg(atlas.seed_map("seed", undrawn=atlas.undrawn_paths()))
    assert "rescheduler" in s and "never drawn by the seed" in s


def test_self_loops_are_drawn():
    with_loop = figures.svg(figures.communication_graph([("etcd", "etcd", {"label": "2380"})]))
    assert "2380" in with_loop
