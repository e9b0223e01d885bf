"""The trace, the figures drawn from it, the scenarios and the command line."""

import json

from k8sbook.cli import main
from k8sbook.textbook import figures
from k8sbook.textbook.scenarios import run


def test_only_the_apiserver_talks_to_etcd():
    result = run("hub-write-and-watch")
    assert result.facts["etcd_clients"] == ["kube-apiserver"]
    assert result.paths() == ["kube-apiserver->etcd", "kube-controller-manager->kube-apiserver",
                              "kube-scheduler->kube-apiserver", "kubectl->kube-apiserver"]
    for m in result.messages:
        initiator, target = m.path.split("->")
        assert {m.src.split("/")[0], m.dst.split("/")[0]} == {initiator, target}


def test_figures_render_identical_svg():
    msgs = run("hub-optimistic-concurrency").messages
    a = figures.svg(figures.sequence_diagram(msgs))
    b = figures.svg(figures.sequence_diagram(msgs))
    assert a == b and a.startswith("<?xml") and "<dc:date>" not in a
    assert "kube-apiserver" in a  # text is kept as text
    g = figures.svg(figures.communication_graph([("kubelet", "kube-apiserver", {})]))
    assert "kubelet" in g
    t = figures.svg(figures.timeline(["lane"], [("lane", 0, 5, "x", "#326ce5")]))
    assert "lane" in t


def test_cli_json_outputs(capsys):
    assert main(["claims", "--json"]) == 0
    claims = json.loads(capsys.readouterr().out)
    assert len(claims) == 29 and claims[0]["id"] == "A1"
    assert main(["paths", "--json"]) == 0
    paths = json.loads(capsys.readouterr().out)
    assert "kube-apiserver->etcd" in [p["id"] for p in paths]
    assert main(["scenarios", "--json"]) == 0
    names = [s["name"] for s in json.loads(capsys.readouterr().out)]
    assert "hub-compaction-relist" in names
    assert main(["trace", "hub-optimistic-concurrency", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["facts"]["conflict"]["code"] == 409


def test_cli_text_and_unknown_scenario(capsys):
    assert main(["trace", "hub-write-and-watch"]) == 0
    assert "paths used: kube-apiserver->etcd" in capsys.readouterr().out
    assert main(["trace", "no-such-scenario"]) == 2
    assert "no scenario 'no-such-scenario'" in capsys.readouterr().err
