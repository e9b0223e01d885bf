"""The kubelet end to end: registration, heartbeats, pods through CRI/CNI/OCI, faults,
deletion (the per-package tests are in test_<module>.py)."""

from itertools import pairwise

import pytest

from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import pod_exec, pod_logs, pod_port_forward
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.node.container_runtime import program_of
from k8sbook.node.csi import CSINodePlugin
from k8sbook.node.kubelet import (
    LEASE_DURATION,
    Backoff,
    Kubelet,
    http_probe,
)
from tests.helpers import snapshot

kubernetes_validate = pytest.importorskip("kubernetes_validate")


def cluster_with(*nodes: str) -> tuple[Cluster, list[Kubelet]]:
    c = Cluster(0)
    kubelets = [c.add_kubelet(n).start() for n in nodes]
    c.run_for(1)
    return c, kubelets


def waiting_reason(c: Cluster, name: str) -> str:
    st = c.admin().get("pods", name, "default")["status"]["containerStatuses"][0]["state"]
    return (st.get("waiting") or {}).get("reason", next(iter(st)))


def event_reasons(c: Cluster, name: str) -> list[str]:
    return [e["reason"] for e in c.admin().list("events", "default")["items"]
            if e["involvedObject"]["name"] == name]


def test_registers_node_and_lease_and_they_validate():
    c, _ = cluster_with("node-a")
    adm = c.admin()
    node = adm.get("nodes", "node-a")
    lease = adm.get("leases", "node-a", "kube-node-lease")
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"
    assert [x["type"] for x in node["status"]["conditions"]][-1] == "Ready"
    assert lease["spec"]["holderIdentity"] == "node-a"
    assert lease["spec"]["leaseDurationSeconds"] == LEASE_DURATION == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    for obj in (node, lease):
        kubernetes_validate.validate(obj, "1.35.0", strict=True)


def test_lease_every_10s_node_status_only_on_change_or_5_min():
    c, _ = cluster_with("node-a")
    m = c.trace.mark()
    c.run_for(300)
    msgs = c.trace.since(m)
    renews = [x.t for x in msgs if x.verb == "UPDATE" and x.resource == "leases"]
    status = [x.t for x in msgs if x.verb == "PATCH" and x.resource == "nodes/status"]
    assert renews[:3] == [10.0, 20.0, 30.0] and len(renews) == 30
    assert status == [300.0]  # nothing changed: only the 5-minute report


def test_pod_runs_with_ip_from_node_cidr_and_valid_status():
    c, [ka, kb] = cluster_with("node-a", "node-b")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-b", image="nginx:1.27"))
    c.run_for(3)
    pod = adm.get("pods", "web", "default")
    st = pod["status"]
    assert st["phase"] == "Running" and st["podIP"] == "10.244.1.2"
    assert st["hostIP"] == kb.address
    assert [(x["type"], x["status"]) for x in st["conditions"]] == [
        ("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", "True"),
        ("ContainersReady", "True"), ("PodScheduled", "True")]
    kubernetes_validate.validate(pod, "1.35.0", strict=True)
    assert ka.records == {}  # node-a never saw it: its watch selects spec.nodeName=node-a
    calls = [m.verb for m in c.trace.filter(path="kubelet->container-runtime")
             if m.verb not in ("ListPodSandbox", "ListContainers")]
    assert calls[:5] == ["RunPodSandbox", "PodSandboxStatus", "ImageStatus", "PullImage",
                         "CreateContainer"]
    assert "StartContainer" in calls
    assert c.trace.filter(path="container-runtime->cni-plugin")[0].verb == "ADD"


def test_pod_cidrs_are_distinct_and_deterministic():
    c = Cluster(0)
    assert [c.ipam.pod_cidr(n) for n in ("a", "b", "a")] == [
        "10.244.0.0/24", "10.244.1.0/24", "10.244.0.0/24"]
    assert [c.add_kubelet(n).pod_cidr for n in ("b", "a")] == ["10.244.1.0/24", "10.244.0.0/24"]
    assert c.components["kubelet/a"].address == c.ipam.node_ip("a")


def test_shared_network_namespace():
    c, _ = cluster_with("node-a")
    adm = c.admin()
    adm.create(objects.pod("two", node_name="node-a", containers=[
        objects.container("web", "nginx:1.27", ports=[8080]),
        objects.container("sidecar", "busybox:1.36")]))
    adm.create(objects.pod("other", node_name="node-a"))
    c.run_for(3)
    ip = adm.get("pods", "two", "default")["status"]["podIP"]

    def nc(pod: str, host: str) -> int:
        return pod_exec_code(adm, pod, ["nc", "-z", host, "8080"])
    m = c.trace.mark()
    assert nc("two", "localhost") == 0  # the sidecar shares web's network namespace
    assert nc("other", "localhost") == 1
    assert nc("other", ip) == 0
    dials = [(x.src, x.resource, x.result) for x in c.trace.since(m) if x.src.startswith("pod/")]
    other_ip = adm.get("pods", "other", "default")["status"]["podIP"]
    assert dials == [("pod/default/two", f"http://{ip}:8080/", "200"),
                     ("pod/default/other", f"http://{other_ip}:8080/", "connection refused"),
                     ("pod/default/other", f"http://{ip}:8080/", "200")]


def pod_exec_code(adm, pod: str, cmd: list[str]) -> int:
    from k8sbook.api.request import Request
    body = adm.request(Request("create", "pods", "", "default", pod, "exec",
                               params={"command": cmd, "container": "sidecar" if pod == "two"
                                       else "app"}))
    return body["exitCode"]


def test_image_pull_error_then_backoff():
    c, [k] = cluster_with("node-a")
    k.runtime.registry.missing.add("nginx:does-not-exist")
    adm = c.admin()
    adm.create(objects.pod("bad", node_name="node-a", image="nginx:does-not-exist"))
    c.run_for(0.5)
    st = adm.get("pods", "bad", "default")["status"]
    cs = st["containerStatuses"][0]["state"]["waiting"]
    assert cs["reason"] == "ErrImagePull" and "code = NotFound" in cs["message"]
    c.run_for(5)
    assert waiting_reason(c, "bad") == "ImagePullBackOff"
    assert adm.get("pods", "bad", "default")["status"]["phase"] == "Pending"
    pulls = [m.t for m in c.trace.filter(verb="PullImage")]
    c.run_for(400)
    pulls = [m.t for m in c.trace.filter(verb="PullImage")]
    gaps = [round(b - a) for a, b in pairwise(pulls)]
    assert all(g >= w for g, w in zip(gaps, [10, 20, 40, 80, 160], strict=False))
    assert max(gaps) < 300 + 15
    assert {"Failed", "BackOff", "Pulling"} <= set(event_reasons(c, "bad"))


def test_crash_loop_backoff_doubles():
    c, [k] = cluster_with("node-a")
    ct = objects.container("app", "busybox:1.36")
    ct["command"] = ["sh", "-c", "exit 1"]
    adm = c.admin()
    adm.create(objects.pod("crash", node_name="node-a", containers=[ct]))
    c.run_for(3)
    pod = adm.get("pods", "crash", "default")
    cs = pod["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"].startswith("back-off 10s restarting failed")
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Running"
    kubernetes_validate.validate(pod, "1.35.0", strict=True)
    c.run_for(1000)
    starts = [m.t for m in c.trace.filter(verb="StartContainer")]
    gaps = [b - a for a, b in pairwise(starts)]
    assert gaps[0] < 2 and all(g >= 10 for g in gaps[1:])
    assert max(gaps) >= 300 and max(gaps) < 300 + 16
    assert k.crash_backoff.get(k.backoff_key(pod, ct)) == 300


def test_backoff_matches_flowcontrol():
    b = Backoff(10, 300)
    assert [b.next("x", t) for t in (0, 1, 2, 3, 4, 5, 6)] == [10, 20, 40, 80, 160, 300, 300]
    assert b.next("x", 1000) == 10  # expired after 2 x max without updates
    assert b.in_backoff_since("x", 1000, 1005) and not b.in_backoff_since("x", 1000, 1010)


def test_program_parsing():
    assert program_of([]) == (None, 0)
    assert program_of(["sh", "-c", "exit 3"]) == (0.0, 3)
    assert program_of(["sh", "-c", "sleep 5; exit 1"]) == (5.0, 1)
    assert program_of(["sleep", "7"]) == (7.0, 0)
    assert program_of(["nginx", "-g", "daemon off;"]) == (None, 0)


def test_cni_failure_leaves_nothing_and_records_event():
    c, [k] = cluster_with("node-a")
    c.components["machine/node-a"].cni.fail_add("failed to allocate for range 0: no IP addresses available")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a"))
    c.run_for(3)
    pod = adm.get("pods", "web", "default")
    conds = {x["type"]: x["status"] for x in pod["status"]["conditions"]}
    assert conds["PodReadyToStartContainers"] == "False" and "podIP" not in pod["status"]
    assert k.runtime.sandboxes == {} and c.components["machine/node-a"].cni.allocations == {}
    ev = [e for e in adm.list("events", "default")["items"]
          if e["reason"] == "FailedCreatePodSandBox"]
    assert ev and "failed to setup network for sandbox" in ev[0]["message"]
    c.components["machine/node-a"].cni.fail_add(None)
    c.run_for(20)
    assert adm.get("pods", "web", "default")["status"]["phase"] == "Running"


def test_readiness_probe_turns_pod_unready_and_back():
    c, [k] = cluster_with("node-a")
    ct = objects.container("app", "nginx:1.27", ports=[8080])
    ct["readinessProbe"] = http_probe(8080, period=1)
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a", containers=[ct]))
    c.run_for(3)

    def ready() -> str:
        pod = adm.get("pods", "web", "default")
        return next(x["status"] for x in pod["status"]["conditions"] if x["type"] == "Ready")
    assert ready() == "True"
    k.set_app_healthy("default", "web", False)
    c.run_for(5)
    assert ready() == "False"
    assert "Unhealthy" in event_reasons(c, "web")
    k.set_app_healthy("default", "web", True)
    c.run_for(2)
    assert ready() == "True"
    assert c.trace.filter(path="kubelet->pod")


def test_liveness_probe_restarts_container():
    c, [k] = cluster_with("node-a")
    ct = objects.container("app", "nginx:1.27", ports=[8080])
    ct["livenessProbe"] = http_probe(8080, period=1)
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a", containers=[ct]))
    c.run_for(3)
    k.set_app_healthy("default", "web", False)
    c.run_for(6)
    cs = adm.get("pods", "web", "default")["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 1 and "running" in cs["state"]


def test_graceful_deletion_stops_then_deletes_with_grace_zero():
    c, [k] = cluster_with("node-a")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a"))
    c.run_for(3)
    m = c.trace.mark()
    adm.delete("pods", "web", "default")
    assert adm.get("pods", "web", "default")["metadata"]["deletionTimestamp"]
    c.run_for(2)
    with pytest.raises(StatusError) as err:
        adm.get("pods", "web", "default")
    assert err.value.code == 404
    verbs = [(x.src, x.verb) for x in c.trace.since(m) if x.src == "kubelet/node-a"
             and x.verb in ("StopContainer", "StopPodSandbox", "DELETE", "RemovePodSandbox")]
    assert verbs == [("kubelet/node-a", "StopContainer"), ("kubelet/node-a", "StopPodSandbox"),
                     ("kubelet/node-a", "DELETE"), ("kubelet/node-a", "RemovePodSandbox")]
    assert k.runtime.sandboxes == {} and c.components["machine/node-a"].cni.allocations == {}


def create_pod_with_csi_volume(adm, driver: str, handle: str) -> None:
    """A CSI PersistentVolume, a claim bound to it, and pod ``db`` on node-a using the claim."""
    adm.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                         "csi": {"driver": driver, "volumeHandle": handle}}})
    adm.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "default"},
                "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv-1",
                         "resources": {"requests": {"storage": "1Gi"}}}})
    pod = objects.pod("db", node_name="node-a")
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    adm.create(pod)


def test_csi_volume_staged_published_and_cleaned_up():
    c, [k] = cluster_with("node-a")
    plugin = CSINodePlugin("hostpath.csi.k8s.io", "node-a", c.network).install()
    k.register_csi_driver("hostpath.csi.k8s.io")
    adm = c.admin()
    create_pod_with_csi_volume(adm, "hostpath.csi.k8s.io", "vol-1")
    c.run_for(3)
    assert list(plugin.staged) == ["vol-1"] and list(plugin.published.values()) == ["vol-1"]
    verbs = [m.verb for m in c.trace.filter(path="kubelet->csi-node-plugin")]
    assert verbs == ["NodeGetInfo", "NodeGetCapabilities", "NodeStageVolume",
                     "NodePublishVolume"]
    adm.delete("pods", "db", "default")
    c.run_for(2)
    assert plugin.staged == {} and plugin.published == {}


def test_csi_unknown_driver_is_a_failed_mount():
    c, [k] = cluster_with("node-a")
    adm = c.admin()
    create_pod_with_csi_volume(adm, "nope.csi.example.com", "v")
    c.run_for(3)
    assert "FailedMount" in event_reasons(c, "db")
    assert k.runtime.sandboxes == {}


def test_logs_exec_port_forward_through_the_apiserver():
    c, _ = cluster_with("node-a")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a",
                           containers=[objects.container("app", "nginx:1.27", ports=[80])]))
    c.run_for(3)
    m = c.trace.mark()
    assert "started" in pod_logs(adm, "default", "web")
    assert pod_exec(adm, "default", "web", ["hostname"]) == "web\n"
    assert "HTTP 200" in pod_port_forward(adm, "default", "web", 80)
    paths = c.trace.paths(c.trace.since(m))
    assert "kube-apiserver->kubelet" in paths and "kubelet->container-runtime" in paths
    sar = c.trace.filter(resource="subjectaccessreviews", messages=c.trace.since(m))
    assert len(sar) == 2  # get (logs) and create (exec); the second create is cached


def test_kubelet_api_refuses_unauthorized_callers():
    c, [k] = cluster_with("node-a")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a"))
    c.run_for(3)
    from k8sbook.apiserver.authentication import ClientCertificate
    code, body = k.server.handle("GET", "/containerLogs/default/web/app",
                                 ClientCertificate("mallory"), {})
    # a plain-text body; upstream's format string ends with a newline (InstallAuthFilter)
    assert code == 403 and body["message"] == (
        "Forbidden (user=mallory, verb=get, resource=nodes, subresource(s)=[proxy])\n")
    code, _ = k.server.handle("GET", "/containerLogs/default/web/app",
                              ClientCertificate("x", issuer="evil"), {})
    assert code == 401


def test_apiserver_to_kubelet_failures_are_500_and_write_nothing():
    c, [k] = cluster_with("node-a")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a"))
    c.run_for(3)
    before = snapshot(c)
    c.apiserver.kubelet_client.certificate_authority = "kubernetes"
    with pytest.raises(StatusError) as err:
        pod_logs(adm, "default", "web")
    assert err.value.code == 500 and "x509" in err.value.status["message"]
    c.apiserver.kubelet_client.certificate_authority = None
    k.stop()
    with pytest.raises(StatusError) as err:
        pod_logs(adm, "default", "web")
    assert err.value.code == 500 and "connection refused" in err.value.status["message"]
    with pytest.raises(StatusError) as err:
        pod_logs(adm, "default", "nope")
    assert err.value.code == 404
    assert snapshot(c) == before


def test_connect_bad_input_is_400_and_writes_nothing():
    from k8sbook.api.request import Request
    c, _ = cluster_with("node-a")
    adm = c.admin()
    adm.create(objects.pod("web", node_name="node-a"))
    adm.create(objects.pod("unbound"))
    adm.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "two"},
                "spec": {"nodeName": "node-a", "containers": [
                    objects.container("a", "nginx:1.27"), objects.container("b", "nginx:1.27")]}})
    c.run_for(3)
    before = snapshot(c)
    cases = [
        (lambda: pod_logs(adm, "default", "web", "nope"), 400,
         "container nope is not valid for pod web"),
        (lambda: pod_logs(adm, "default", "unbound"), 400,
         "pod unbound does not have a host assigned"),
        (lambda: pod_logs(adm, "default", "two"), 400,
         "a container name must be specified for pod two, choose one of: [a b]"),
        (lambda: adm.request(Request("create", "subjectaccessreviews", "authorization.k8s.io",
                                     body={"apiVersion": "authorization.k8s.io/v1",
                                           "kind": "SubjectAccessReview", "spec": {}})), 400,
         "at least one of user or group must be specified"),
    ]
    for call, code, message in cases:
        with pytest.raises(StatusError) as err:
            call()
        assert err.value.code == code and err.value.status["message"] == message
    assert snapshot(c) == before


def test_a_container_whose_script_ends_exits_with_its_code_and_restart_policy_decides():
    """``sh -c 'echo hello; exit 3'`` ends: Never -> Failed (reason Error, exit code 3);
    OnFailure with exit 0 -> Succeeded (reason Completed); the output is in the logs."""
    c, [k] = cluster_with("node-a")
    adm = c.admin()
    for name, script, policy in (("fails", "echo hello; exit 3", "Never"),
                                 ("works", "echo done", "OnFailure")):
        ct = objects.container("app", "busybox:1.36")
        ct["command"] = ["sh", "-c", script]
        adm.create(objects.pod(name, node_name="node-a", containers=[ct],
                               restartPolicy=policy))
    c.run_for(3)
    failed, done = (adm.get("pods", n, "default") for n in ("fails", "works"))
    assert failed["status"]["phase"] == "Failed" and done["status"]["phase"] == "Succeeded"
    term = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == \
        "Completed"
    cid = next(x for x in k.runtime.containers.values() if x.command[-1] == "echo hello; exit 3")
    assert "hello" in cid.logs
    kubernetes_validate.validate(failed, "1.35.0", strict=True)
