"""``kubectl rollout status|history|undo`` for DaemonSets and StatefulSets through
``k8sbook serve``, with the real kubectl (1.32 and 1.37): what kubectl reads are the
ControllerRevisions the controllers keep, and ``undo`` sends a revision's ``data`` back as a
strategic merge patch (``k8s.io/kubectl/pkg/polymorphichelpers``: ``history.go``,
``rollback.go``, ``rollout_status.go``)."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.slow

DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: a, image: busybox:1.36}]}
"""
STATEFULSET = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: busybox:1.36}]}
"""


def ok(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr
    return str(proc.stdout)


def namespace(kubectl, name: str) -> str:  # type: ignore[no-untyped-def]
    ns = f"{name}-{kubectl.binary.rsplit('-', 1)[-1].replace('.', '').replace('/', '')}"[:40]
    ok(kubectl("create", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\n"
                                          f"metadata: {{name: {ns}}}\n"))
    return ns


def image_of(kubectl, ns: str, what: str) -> str:  # type: ignore[no-untyped-def]
    obj = json.loads(ok(kubectl("get", what, "-n", ns, "-o", "json")))
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def wait_for(check, timeout: float = 40) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_daemonset_rollout_history_and_undo(kubectl) -> None:  # type: ignore[no-untyped-def]
    ns = namespace(kubectl, "ds")
    ok(kubectl("create", "-n", ns, "-f", "-", stdin=DAEMONSET))
    out = ok(kubectl("rollout", "status", "-n", ns, "daemonset/agent", "--timeout=40s"))
    assert 'daemon set "agent" successfully rolled out' in out
    ok(kubectl("set", "image", "-n", ns, "daemonset/agent", "a=busybox:1.37"))
    ok(kubectl("rollout", "status", "-n", ns, "daemonset/agent", "--timeout=60s"))
    history = ok(kubectl("rollout", "history", "-n", ns, "daemonset/agent"))
    assert history.split("\n")[:4] == ["daemonset.apps/agent ", "REVISION  CHANGE-CAUSE",
                                       "1         <none>", "2         <none>"]
    one = ok(kubectl("rollout", "history", "-n", ns, "daemonset/agent", "--revision=1"))
    assert "busybox:1.36" in one and "busybox:1.37" not in one
    assert ok(kubectl("rollout", "undo", "-n", ns, "daemonset/agent")).strip() == \
        "daemonset.apps/agent rolled back"
    ok(kubectl("rollout", "status", "-n", ns, "daemonset/agent", "--timeout=60s"))
    assert image_of(kubectl, ns, "daemonset/agent") == "busybox:1.36"
    table = ok(kubectl("get", "controllerrevisions", "-n", ns)).splitlines()
    assert table[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    rows = sorted(line.split()[1:3] for line in table[1:])
    assert rows == [["daemonset.apps/agent", "2"], ["daemonset.apps/agent", "3"]]
    revs = json.loads(ok(kubectl("get", "controllerrevisions", "-n", ns, "-o", "json")))
    newest = max(revs["items"], key=lambda r: r["revision"])
    wait_for(lambda: {p["metadata"]["labels"]["controller-revision-hash"] for p in json.loads(
        ok(kubectl("get", "pods", "-n", ns, "-l", "app=agent", "-o", "json")))["items"]} ==
        {newest["metadata"]["labels"]["controller-revision-hash"]})


def test_statefulset_partitioned_rollout_history_and_undo(  # type: ignore[no-untyped-def]
        kubectl) -> None:
    ns = namespace(kubectl, "sts")
    ok(kubectl("create", "-n", ns, "-f", "-", stdin=STATEFULSET))
    out = ok(kubectl("rollout", "status", "-n", ns, "statefulset/db", "--timeout=60s"))
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    ok(kubectl("patch", "-n", ns, "statefulset/db", "-p",
               '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}'))
    ok(kubectl("set", "image", "-n", ns, "statefulset/db", "db=busybox:1.37"))
    out = ok(kubectl("rollout", "status", "-n", ns, "statefulset/db", "--timeout=60s"))
    assert "partitioned roll out complete: 1 new pods have been updated..." in out
    sts = json.loads(ok(kubectl("get", "statefulset/db", "-n", ns, "-o", "json")))
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    history = ok(kubectl("rollout", "history", "-n", ns, "statefulset/db"))
    assert history.split("\n")[:4] == ["statefulset.apps/db ", "REVISION  CHANGE-CAUSE",
                                       "1         <none>", "2         <none>"]
    assert ok(kubectl("rollout", "undo", "-n", ns, "statefulset/db")).strip() == \
        "statefulset.apps/db rolled back"
    assert image_of(kubectl, ns, "statefulset/db") == "busybox:1.36"
    ok(kubectl("patch", "-n", ns, "statefulset/db", "-p",
               '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'))
    out = ok(kubectl("rollout", "status", "-n", ns, "statefulset/db", "--timeout=60s"))
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    revs = json.loads(ok(kubectl("get", "controllerrevisions", "-n", ns, "-o", "json")))
    assert sorted(r["revision"] for r in revs["items"]) == [2, 3]
    sts = json.loads(ok(kubectl("get", "statefulset/db", "-n", ns, "-o", "json")))
    wait_for(lambda: json.loads(ok(kubectl("get", "statefulset/db", "-n", ns, "-o", "json")))[
        "status"].get("currentRevision") == sts["status"]["updateRevision"])
    undone = kubectl("rollout", "undo", "-n", ns, "statefulset/db", "--to-revision=9")
    assert undone.returncode != 0
    assert "unable to find specified revision 9 in history" in undone.stderr
