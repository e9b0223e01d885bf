"""Chapter 2's write-and-watch run: the scheduler, not the scenario, decides and binds."""

from __future__ import annotations

import pytest

from k8sbook.client.rest import Client
from k8sbook.textbook.scenarios import run


def test_the_scheduler_binds_the_pod_to_the_node_it_scored_best() -> None:
    r = run("hub-write-and-watch")
    f = r.facts
    totals = {n: sum(s.values()) for n, s in f["scores"].items()}
    assert f["chosen"] == max(totals, key=lambda n: (totals[n], n)) == f["node_name"]
    assert f["binding"]["src"] == "kube-scheduler" and f["binding"]["result"].startswith("201")
    assert [m.src for m in r.messages if m.resource == "pods/binding"] == ["kube-scheduler"]


def test_without_the_schedulers_binding_the_pod_stays_unbound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """If the component stops doing the work, nothing else does it for it."""
    monkeypatch.setattr(Client, "bind", lambda self, ns, pod, node: {})
    with pytest.raises(StopIteration):  # no Binding message in the trace at all
        run("hub-write-and-watch")
