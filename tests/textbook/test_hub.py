"""Chapter 2's write-and-watch run: the scheduler, not the scenario, decides and binds."""

from __future__ import annotations

import re

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


def test_without_compaction_the_watch_resumes_and_nothing_relists() -> None:
    """Chapter 2's exercise 2: the history is still there, so the old resourceVersion works."""
    from k8sbook.textbook.scenarios.hub import compaction_relist

    f = compaction_relist(compact=False).facts
    assert f["compacted_to"] is None and f["relists_after_410"] == 0
    (listed,) = [what for _, what in f["reflector"] if what.startswith("list")]
    found = re.fullmatch(r"list rv=0 -> 2 items at rv (\d+)", listed)
    assert found, listed
    rv = int(found.group(1))
    assert f["reflector"][-1][1] == f"watch from rv {rv}"
    after = f["handled"][f["handled"].index("-- connection back --") + 1:]
    assert after == [f"update a rv {rv - 1}->{rv + 1}", "delete b", "add c"]
    assert f["informer_state"] == f["server_state"]
