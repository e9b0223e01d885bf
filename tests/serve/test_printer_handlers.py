"""The table columns of ``printers.go`` for the kinds of ``k8sbook.serve.printer_handlers``."""

from k8sbook.core.clock import Clock
from k8sbook.serve import printers


def cells(kind: str, obj: dict, clock: Clock) -> dict:
    table = printers.table(kind, [obj], clock)
    names = [c["name"] for c in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


def test_event_secret_binding_and_job_rows():
    clock = Clock()
    clock.run_for(90)
    meta = {"name": "x", "namespace": "default", "creationTimestamp": Clock().timestamp()}
    event = cells("Event", {"metadata": meta, "type": "Normal", "reason": "Pulled",
                            "involvedObject": {"kind": "Pod", "name": "web"},
                            "source": {"component": "kubelet", "host": "node-a"},
                            "message": " done ", "firstTimestamp": Clock().timestamp()}, clock)
    assert event == {"Last Seen": "90s", "Type": "Normal", "Reason": "Pulled",
                     "Object": "pod/web", "Subobject": "", "Source": "kubelet, node-a",
                     "Message": "done", "First Seen": "90s", "Count": 1, "Name": "x"}
    secret = cells("Secret", {"metadata": meta, "type": "Opaque", "data": {"a": "", "b": ""}},
                   clock)
    assert secret == {"Name": "x", "Type": "Opaque", "Data": 2, "Age": "90s"}
    binding = cells("RoleBinding", {"metadata": meta, "roleRef": {"kind": "ClusterRole",
                                                                   "name": "view"},
                                    "subjects": [{"kind": "User", "name": "ann"},
                                                 {"kind": "ServiceAccount", "name": "sa",
                                                  "namespace": "ns"}]}, clock)
    assert (binding["Role"], binding["Users"], binding["ServiceAccounts"]) == (
        "ClusterRole/view", "ann", "ns:sa")
    job = cells("Job", {"metadata": meta, "spec": {"completions": 3, "template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"succeeded": 3, "startTime": Clock().timestamp(),
                   "completionTime": Clock().timestamp(60),
                   "conditions": [{"type": "Complete", "status": "True"}]}}, clock)
    assert (job["Status"], job["Completions"], job["Duration"]) == ("Complete", "3/3", "60s")


def test_kinds_without_a_printer_get_the_default_table():
    clock = Clock()
    role = cells("Role", {"metadata": {"name": "r", "creationTimestamp": clock.timestamp()}},
                 clock)
    assert role == {"Name": "r", "Created At": clock.timestamp()}  # RFC 3339, not an age


def test_controller_revision_row_names_its_controller_with_kind_and_group():
    clock = Clock()
    clock.run_for(30)
    meta = {"name": "agent-5d8f9", "namespace": "default",
            "creationTimestamp": Clock().timestamp(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                 "uid": "u", "controller": True}]}
    row = cells("ControllerRevision", {"metadata": meta, "revision": 2, "data": {}}, clock)
    assert row == {"Name": "agent-5d8f9", "Controller": "daemonset.apps/agent", "Revision": 2,
                   "Age": "30s"}
    orphan = cells("ControllerRevision", {"metadata": {**meta, "ownerReferences": []},
                                          "revision": 1}, clock)
    assert orphan["Controller"] == "<none>"
