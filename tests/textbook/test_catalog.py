"""Consistency of the path catalog and the seed-claim catalog (k8sbook.textbook.catalog)."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import pytest

from k8sbook.textbook import catalog
from k8sbook.textbook.catalog import PLANES, SEED_ONLY_NAMES, VERDICTS

ROOT = Path(__file__).resolve().parents[2]
DEVELOPING = ROOT / "DEVELOPING.md"

# The names DEVELOPING.md fixes once and for all (checked against the file below).
CHAPTERS = (
    "01-the-map",
    "02-the-hub",
    "03-controllers",
    "04-scheduling",
    "05-rescheduling-is-eviction",
    "06-the-cloud",
    "07-the-kubelet-pulls",
    "08-inside-the-node",
    "09-metrics-and-aggregation",
    "10-services",
    "11-cluster-dns",
    "12-ingress",
    "13-who-is-calling",
    "14-more-than-one-of-everything",
    "a1-kubectl-against-the-model",
    "a2-real-etcd",
)
DEVELOPING_COMPONENTS = frozenset(
    {
        "kube-apiserver",
        "etcd",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "coredns",
        "container-runtime",
        "cni-plugin",
        "csi-node-plugin",
        "cloud-controller-manager",
        "cloud-api",
        "ingress-controller",
        "descheduler",
        "kubectl",
        "pod",
        "webhook",
        "metrics-server",
        "konnectivity-server",
        "konnectivity-agent",
    }
)
# Needed by the catalog (runc and friends), not yet listed in DEVELOPING.md.
EXTRA_COMPONENTS = frozenset({"oci-runtime"})

CLAIM_IDS = ["A1", *(f"B{i}" for i in range(1, 21)), *(f"C{i}" for i in range(1, 9))]

REQUIRED_PATHS = {
    "kube-apiserver->etcd",
    "etcd->etcd",
    "kube-controller-manager->kube-apiserver",
    "kube-scheduler->kube-apiserver",
    "kubelet->kube-apiserver",
    "kube-apiserver->kubelet",
    "kube-apiserver->pod",
    "kube-proxy->kube-apiserver",
    "coredns->kube-apiserver",
    "pod->coredns",
    "pod->pod",
    "kubelet->container-runtime",
    "container-runtime->oci-runtime",
    "container-runtime->cni-plugin",
    "kubelet->csi-node-plugin",
    "kubelet->pod",
    "cloud-controller-manager->kube-apiserver",
    "cloud-controller-manager->cloud-api",
    "ingress-controller->kube-apiserver",
    "ingress-controller->pod",
    "descheduler->kube-apiserver",
    "kubectl->kube-apiserver",
    "kube-apiserver->webhook",
    "kube-apiserver->metrics-server",
    "metrics-server->kubelet",
    "konnectivity-agent->konnectivity-server",
    "kube-apiserver->konnectivity-server",
}


def _allowed_source(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc:
        return False
    host = parsed.netloc.lower()
    first = parsed.path.strip("/").split("/")[0].lower()
    if host == "kubernetes.io" or host.endswith(".kubernetes.io"):
        return True
    if host == "coredns.io":
        return True
    if host == "github.com":
        return first.startswith("kubernetes") or first == "etcd-io"
    return False


def _raw(name: str) -> dict:
    text = resources.files("k8sbook.textbook").joinpath("data", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


# --- the names this file relies on match DEVELOPING.md -------------------------------------


@pytest.mark.skipif(not DEVELOPING.exists(), reason="DEVELOPING.md not present")
def test_chapter_and_component_names_match_developing_md():
    text = DEVELOPING.read_text(encoding="utf-8")
    named = set(re.findall(r"`([a-z0-9][a-z0-9-]*)`", text))
    assert set(CHAPTERS) <= named
    assert DEVELOPING_COMPONENTS <= named


# --- claims ---------------------------------------------------------------------------------


def test_exactly_the_29_claims_in_seed_order():
    assert [c.id for c in catalog.claims()] == CLAIM_IDS
    assert catalog.CLAIM_ORDER == tuple(CLAIM_IDS)


def test_no_duplicate_claim_ids_in_the_file():
    ids = [c["id"] for c in _raw("claims.toml")["claim"]]
    assert len(ids) == len(set(ids))


def test_answer_and_point_match_the_id():
    for c in catalog.claims():
        assert c.answer == {"A": 1, "B": 2, "C": 3}[c.id[0]], c.id
        assert c.point == int(c.id[1:]), c.id


def test_every_verdict_is_one_of_the_allowed_words():
    for c in catalog.claims():
        assert c.verdict in VERDICTS, (c.id, c.verdict)


def test_every_claim_has_text():
    for c in catalog.claims():
        assert c.claim.strip() and c.correction.strip(), c.id


def test_every_claim_cites_allowed_sources():
    for c in catalog.claims():
        assert c.sources, c.id
        for url in c.sources:
            assert _allowed_source(url), (c.id, url)


def test_every_claim_concerns_at_least_one_path():
    for c in catalog.claims():
        assert c.paths, c.id
        assert len(c.paths) == len(set(c.paths)), c.id


def test_every_claim_asserts_at_least_one_edge():
    for c in catalog.claims():
        assert c.seed_edges, c.id


def test_seed_edges_use_known_names():
    known = set(catalog.components()) | SEED_ONLY_NAMES
    for c in catalog.claims():
        for e in c.seed_edges:
            assert e.from_ in known, (c.id, e.from_)
            assert e.to in known, (c.id, e.to)
            assert isinstance(e.real, bool)


def test_real_edges_between_components_are_catalog_paths():
    ids = {p.id for p in catalog.paths()}
    comps = set(catalog.components())
    for c in catalog.claims():
        for e in c.seed_edges:
            if e.real and e.from_ in comps and e.to in comps:
                assert e.id in ids, (c.id, e.id)


def test_false_edges_that_name_a_real_path_explain_themselves():
    ids = {p.id for p in catalog.paths()}
    for c in catalog.claims():
        for e in c.seed_edges:
            if not e.real and e.id in ids:
                assert e.note.strip(), (c.id, e.id)


def test_the_seed_edges_the_brief_names():
    def edges(cid):
        return {(e.from_, e.to): e.real for e in catalog.claim(cid).seed_edges}

    b4 = edges("B4")
    for comp in ("kube-scheduler", "kube-controller-manager", "kubelet"):
        assert b4[(comp, "etcd")] is False
    assert edges("B13")[("rescheduler", "kube-scheduler")] is False
    assert edges("B14")[("rescheduler", "kubelet")] is False
    assert edges("B15")[("kube-scheduler", "kube-controller-manager")] is False
    assert edges("B16")[("kube-apiserver", "cloud-api")] is False
    assert edges("B17")[("kube-proxy", "kubelet")] is False
    assert edges("B18")[("kube-dns", "coredns")] is False
    assert edges("B5")[("kube-apiserver", "kubelet")] is False
    assert catalog.claim("B5").verdict == "inaccurate"


# --- paths ----------------------------------------------------------------------------------


def test_no_duplicate_path_ids_in_the_file():
    ids = [p["id"] for p in _raw("paths.toml")["path"]]
    assert len(ids) == len(set(ids))


def test_paths_are_sorted_by_id():
    ids = [p.id for p in catalog.paths()]
    assert ids == sorted(ids)


def test_path_id_is_initiator_arrow_target():
    for p in catalog.paths():
        assert p.id == f"{p.initiator}->{p.target}"


def test_the_required_paths_are_present():
    assert REQUIRED_PATHS <= {p.id for p in catalog.paths()}


def test_components_are_the_named_ones():
    assert set(catalog.components()) <= DEVELOPING_COMPONENTS | EXTRA_COMPONENTS
    assert catalog.components() == sorted(set(catalog.components()))


def test_every_path_is_on_a_plane():
    for p in catalog.paths():
        assert p.plane in PLANES, (p.id, p.plane)


def test_every_path_has_text():
    for p in catalog.paths():
        for field in ("protocol", "identity", "flows", "on_failure"):
            assert getattr(p, field).strip(), (p.id, field)


def test_ports_are_plausible():
    for p in catalog.paths():
        if p.port is None:
            assert p.port_note.strip(), f"{p.id}: no port and no port_note"
        else:
            assert type(p.port) is int, p.id
            assert 1 <= p.port <= 65535, p.id


def test_known_port_numbers():
    expected = {
        "kube-apiserver->etcd": 2379,
        "etcd->etcd": 2380,
        "kube-apiserver->kubelet": 10250,
        "metrics-server->kubelet": 10250,
        "kubelet->kube-apiserver": 6443,
        "kubectl->kube-apiserver": 6443,
        "kube-scheduler->kube-apiserver": 6443,
        "pod->coredns": 53,
    }
    for pid, port in expected.items():
        assert catalog.path(pid).port == port, pid
    for pid in (
        "kubelet->container-runtime",
        "container-runtime->cni-plugin",
        "container-runtime->oci-runtime",
        "kubelet->csi-node-plugin",
    ):
        assert catalog.path(pid).port is None, pid
    assert "10259" in catalog.path("kube-scheduler->kube-apiserver").port_note
    assert "10257" in catalog.path("kube-controller-manager->kube-apiserver").port_note
    assert "10258" in catalog.path("cloud-controller-manager->kube-apiserver").port_note


def test_every_path_cites_allowed_sources():
    for p in catalog.paths():
        assert p.sources, p.id
        for url in p.sources:
            assert _allowed_source(url), (p.id, url)


# --- the two sides agree --------------------------------------------------------------------


def test_paths_named_by_claims_exist():
    ids = {p.id for p in catalog.paths()}
    for c in catalog.claims():
        for pid in c.paths:
            assert pid in ids, (c.id, pid)


def test_claims_named_by_paths_exist():
    for p in catalog.paths():
        for cid in p.claims:
            assert cid in CLAIM_IDS, (p.id, cid)
        assert len(p.claims) == len(set(p.claims)), p.id


def test_claim_paths_and_path_claims_agree():
    from_claims = {(c.id, pid) for c in catalog.claims() for pid in c.paths}
    from_paths = {(cid, p.id) for p in catalog.paths() for cid in p.claims}
    assert from_claims == from_paths


# --- chapters -------------------------------------------------------------------------------


def _chapter_fields():
    for c in catalog.claims():
        yield c.id, c.chapter, c.planned_chapter
    for p in catalog.paths():
        yield p.id, p.chapter, p.planned_chapter


def test_chapter_names_are_from_developing_md():
    for owner, chapter, planned in _chapter_fields():
        assert chapter is None or chapter in CHAPTERS, (owner, chapter)
        assert planned is None or planned in CHAPTERS, (owner, planned)


def test_a_set_chapter_exists_as_a_notebook():
    for owner, chapter, _ in _chapter_fields():
        if chapter is not None:
            assert (ROOT / "notebooks" / f"{chapter}.ipynb").exists(), (owner, chapter)


def test_everything_has_a_planned_or_actual_chapter():
    for owner, chapter, planned in _chapter_fields():
        assert chapter or planned, owner


# --- API ------------------------------------------------------------------------------------


def test_lookup_by_id():
    assert catalog.claim("B5").paths == ("kubelet->kube-apiserver", "kube-apiserver->kubelet")
    p = catalog.path("kubelet->kube-apiserver")
    assert (p.initiator, p.target, p.plane) == ("kubelet", "kube-apiserver", "control")


def test_unknown_ids_raise_key_error_with_a_clear_message():
    with pytest.raises(KeyError, match="no seed claim 'B21'"):
        catalog.claim("B21")
    with pytest.raises(KeyError, match="no path 'kube-proxy->kubelet'"):
        catalog.path("kube-proxy->kubelet")
    with pytest.raises(KeyError, match="initiator->target"):
        catalog.path("kubelet")


def test_results_are_cached_and_immutable():
    assert catalog.claims()[0] is catalog.claims()[0]
    assert catalog.paths()[0] is catalog.paths()[0]
    lst = catalog.claims()
    lst.clear()
    assert len(catalog.claims()) == 29
    with pytest.raises(AttributeError):
        catalog.path("pod->pod").port = 1  # type: ignore[misc]
