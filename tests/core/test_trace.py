"""k8sbook.core.trace: the trace table a notebook prints."""

from __future__ import annotations

from k8sbook.core.trace import Trace


def test_table_puts_the_result_right_after_the_time():
    trace = Trace()
    trace.record(1.0, "kubectl", "kube-apiserver", "kubectl->kube-apiserver", "HTTPS", "CREATE",
                 "pods", "default/web", result="409 Conflict")
    trace.record(2.0, "kube-apiserver", "kubelet/node-a", "kubelet->kube-apiserver", "HTTPS",
                 "ADDED", "pods", "default/web", result="105")
    header, conflict, event = trace.table().splitlines()
    assert header.split() == ["t(s)", "result", "from", "to", "message"]
    assert conflict.split()[:2] == ["1.00", "409"]
    assert conflict.endswith("CREATE pods/default/web (Conflict)")
    assert event.split()[:2] == ["2.00", "rv=105"]
