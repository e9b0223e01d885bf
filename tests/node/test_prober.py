"""Probes dial the pod's IP through the network (pkg/kubelet/prober)."""

from k8sbook.api import objects
from k8sbook.client.network import Address
from k8sbook.node.kubelet import http_probe


def ready(c) -> str:
    pod = c.admin().get("pods", "web", "default")
    return next(x["status"] for x in pod["status"]["conditions"] if x["type"] == "Ready")


def test_probe_is_a_dial_and_a_closed_port_is_refused(node_a):
    c, _ = node_a
    ct = objects.container("app", "nginx:1.27", ports=[8080])
    ct["readinessProbe"] = http_probe(8080, "/healthz", period=1)
    c.admin().create(objects.pod("web", node_name="node-a", containers=[ct]))
    c.run_for(3)
    assert ready(c) == "True"
    ip = c.admin().get("pods", "web", "default")["status"]["podIP"]
    probes = c.trace.filter(path="kubelet->pod")
    assert probes and {m.resource for m in probes} == {f"http://{ip}:8080/healthz"}
    assert probes[-1].result == "200 (readiness probe)"
    # the application stops listening (nothing else changes): the dials are refused
    c.network.close(Address.tcp(ip, 8080))
    m = c.trace.mark()
    c.run_for(4)
    assert ready(c) == "False"
    refused = [x for x in c.trace.since(m) if x.src == "kubelet/node-a" and x.verb == "GET"]
    assert refused and {x.result for x in refused} == {"connection refused"}
    events = [e["message"] for e in c.admin().list("events", "default")["items"]
              if e["reason"] == "Unhealthy"]
    assert events[-1] == (f'Readiness probe failed: Get "http://{ip}:8080/healthz": dial tcp '
                          f"{ip}:8080: connect: connection refused")


def test_slow_answer_is_a_timeout(node_a):
    c, _ = node_a
    ct = objects.container("app", "nginx:1.27", ports=[8080])
    ct["readinessProbe"] = http_probe(8080, period=1)
    c.admin().create(objects.pod("web", node_name="node-a", containers=[ct]))
    c.run_for(3)
    ip = c.admin().get("pods", "web", "default")["status"]["podIP"]
    c.network.set_latency(Address.tcp(ip, 8080), 2.0)  # over timeoutSeconds=1
    c.run_for(4)
    assert ready(c) == "False"
