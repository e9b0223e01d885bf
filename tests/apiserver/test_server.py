"""kube-apiserver semantics: verbs, resourceVersion, optimistic concurrency, watch, errors.

Every bad request must get the real Status code and reason and leave etcd unchanged.
"""

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.authentication import ClientCertificate
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(seed=1)


def expect_error(cluster, call, code, reason):
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        call()
    assert (err.value.code, err.value.reason) == (code, reason), err.value.status
    assert err.value.status["kind"] == "Status" and err.value.status["status"] == "Failure"
    assert snapshot(cluster) == before, "a refused request changed the store"
    return err.value.status


def test_bootstrap_objects(cluster):
    admin = cluster.admin()
    names = [n["metadata"]["name"] for n in admin.list("namespaces")["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    svc = admin.get("services", "kubernetes", "default")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["targetPort"] == 6443


def test_create_sets_metadata_and_defaults(cluster):
    pod = cluster.admin().create(objects.pod("web"))
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["uid"] and meta["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert meta["resourceVersion"] == str(cluster.etcd.revision)
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    tolerations = {t["key"]: t["tolerationSeconds"] for t in spec["tolerations"]}
    assert tolerations == {"node.kubernetes.io/not-ready": 300,
                           "node.kubernetes.io/unreachable": 300}


def test_generate_name_is_seeded():
    names = []
    for _ in range(2):
        c = Cluster(seed=7)
        body = objects.pod("")
        body["metadata"] = {"generateName": "web-", "namespace": "default"}
        names.append(c.admin().create(body)["metadata"]["name"])
    assert names[0] == names[1] and names[0].startswith("web-") and len(names[0]) == 9


def test_resource_version_is_etcd_mod_revision(cluster):
    admin = cluster.admin()
    cm = admin.create(objects.configmap("c"))
    kv = cluster.etcd.get("/registry/configmaps/default/c")
    assert cm["metadata"]["resourceVersion"] == str(kv.mod_revision)
    assert "resourceVersion" not in kv.value  # never stored, always derived


def test_optimistic_concurrency(cluster):
    admin = cluster.admin()
    cm = admin.create(objects.configmap("c", data={"k": "1"}))
    stale = dict(cm, data={"k": "stale"})
    cm["data"]["k"] = "2"
    admin.update(cm)
    status = expect_error(cluster, lambda: admin.update(stale), 409, "Conflict")
    assert status["message"] == ('Operation cannot be fulfilled on configmaps "c": the object '
                                 'has been modified; please apply your changes to the latest '
                                 'version and try again')
    assert admin.get("configmaps", "c", "default")["data"] == {"k": "2"}


def test_update_that_changes_nothing_writes_nothing(cluster):
    admin = cluster.admin()
    cm = admin.create(objects.configmap("c", data={"k": "1"}))
    before = cluster.etcd.revision
    same = admin.update(cm)
    assert cluster.etcd.revision == before
    assert same["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


def test_merge_patch_and_json_patch(cluster):
    admin = cluster.admin()
    admin.create(objects.configmap("c", data={"a": "1", "b": "2"}))
    out = admin.patch("configmaps", "c", {"data": {"a": None, "c": "3"}}, "default")
    assert out["data"] == {"b": "2", "c": "3"}
    out = admin.patch("configmaps", "c", [{"op": "replace", "path": "/data/b", "value": "9"}],
                      "default", content_type="application/json-patch+json")
    assert out["data"] == {"b": "9", "c": "3"}


def test_already_exists(cluster):
    admin = cluster.admin()
    admin.create(objects.configmap("c"))
    status = expect_error(cluster, lambda: admin.create(objects.configmap("c")), 409,
                          "AlreadyExists")
    assert status["message"] == 'configmaps "c" already exists'


def test_not_found(cluster):
    admin = cluster.admin()
    status = expect_error(cluster, lambda: admin.get("pods", "ghost", "default"), 404, "NotFound")
    assert status["message"] == 'pods "ghost" not found'
    expect_error(cluster, lambda: admin.delete("pods", "ghost", "default"), 404, "NotFound")


def test_namespace_must_exist(cluster):
    status = expect_error(cluster, lambda: cluster.admin().create(objects.pod("p", "nowhere")),
                          404, "NotFound")
    assert status["message"] == 'namespaces "nowhere" not found'


@pytest.mark.parametrize("mutate, field, reason", [
    (lambda p: p["metadata"].update(name="Bad_Name"), "metadata.name", "FieldValueInvalid"),
    (lambda p: p["spec"].update(containers=[]), "spec.containers", "FieldValueRequired"),
    (lambda p: p["spec"]["containers"][0].pop("image"), "spec.containers[0].image",
     "FieldValueRequired"),
    (lambda p: p["spec"].update(restartPolicy="Sometimes"), "spec.restartPolicy",
     "FieldValueNotSupported"),
])
def test_invalid_pods_are_422_with_causes(cluster, mutate, field, reason):
    pod = objects.pod("ok")
    mutate(pod)
    status = expect_error(cluster, lambda: cluster.admin().create(pod), 422, "Invalid")
    assert [(c["field"], c["reason"]) for c in status["details"]["causes"]] == [(field, reason)]
    assert status["message"].startswith(f'Pod "{pod["metadata"]["name"]}" is invalid: {field}:')


def test_invalid_replicaset(cluster):
    rs = objects.replicaset("web", replicas=-1)
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    status = expect_error(cluster, lambda: cluster.admin().create(rs), 422, "Invalid")
    fields = [c["field"] for c in status["details"]["causes"]]
    assert fields == ["spec.replicas", "spec.template.metadata.labels"]


@pytest.mark.parametrize("body, message", [
    ("not an object", "the body of the request must be a JSON object"),
    ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}},
     "the kind in the data ('Service') does not match the expected kind ('Pod')"),
    ({"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "x"}},
     "the API version in the data (v2) does not match the expected API version (v1)"),
])
def test_malformed_bodies_are_400(cluster, body, message):
    def call():
        return cluster.admin().request(Request("create", "pods", "", "default", body=body))
    status = expect_error(cluster, call, 400, "BadRequest")
    assert status["message"] == message


def test_namespace_mismatch_is_400(cluster):
    def call():
        return cluster.admin().request(Request("create", "pods", "", "default",
                                               body=objects.pod("p", "kube-system")))
    expect_error(cluster, call, 400, "BadRequest")


def test_unknown_resource_is_404(cluster):
    resp = cluster.admin().send(Request("get", "widgets", "", "default", "w"))
    assert resp.code == 404 and resp.body["reason"] == "NotFound"


def test_bad_selectors_are_400(cluster):
    admin = cluster.admin()
    expect_error(cluster, lambda: admin.list("pods", fieldSelector="spec.colour=red"), 400,
                 "BadRequest")
    expect_error(cluster, lambda: admin.list("pods", labelSelector="a in b"), 400, "BadRequest")


def test_selectors(cluster):
    admin = cluster.admin()
    admin.create(objects.pod("a", labels={"app": "web", "tier": "front"}))
    admin.create(objects.pod("b", labels={"app": "db"}))
    names = lambda **kw: [p["metadata"]["name"] for p in admin.list("pods", "default", **kw)["items"]]
    assert names(labelSelector="app=web") == ["a"]
    assert names(labelSelector="app in (web,db),!tier") == ["b"]
    assert names(fieldSelector="metadata.name!=a") == ["b"]
    assert names(fieldSelector="spec.nodeName=") == ["a", "b"]


def test_forbidden_is_403_and_changes_nothing(cluster):
    scheduler = cluster.client("kube-scheduler")
    status = expect_error(cluster, lambda: scheduler.create(objects.configmap("x")), 403,
                          "Forbidden")
    assert status["message"] == ('configmaps is forbidden: User "system:kube-scheduler" cannot '
                                 'create resource "configmaps" in API group "" in the '
                                 'namespace "default"')


def test_unauthenticated_certificate_is_401(cluster):
    rogue = cluster.client("kubectl", ClientCertificate("mallory", ("system:masters",),
                                                        issuer="some-other-ca"))
    expect_error(cluster, lambda: rogue.list("pods"), 401, "Unauthorized")


def test_anonymous_gets_403(cluster):
    anon = cluster.client("kubectl", credentials=None)
    anon.credentials = None
    status = expect_error(cluster, lambda: anon.list("secrets", "default"), 403, "Forbidden")
    assert 'User "system:anonymous"' in status["message"]


def test_list_resource_version_semantics(cluster):
    admin = cluster.admin()
    cm = admin.create(objects.configmap("c", data={"v": "1"}))
    old_rv = cm["metadata"]["resourceVersion"]
    admin.patch("configmaps", "c", {"data": {"v": "2"}}, "default")
    exact = admin.list("configmaps", "default", resourceVersion=old_rv,
                       resourceVersionMatch="Exact")
    assert exact["items"][0]["data"] == {"v": "1"}
    assert exact["metadata"]["resourceVersion"] == old_rv
    latest = admin.list("configmaps", "default")
    assert latest["items"][0]["data"] == {"v": "2"}
    cluster.apiserver.compact()
    status = expect_error(cluster, lambda: admin.list("configmaps", "default",
                                                      resourceVersion=old_rv,
                                                      resourceVersionMatch="Exact"),
                          410, "Expired")
    assert status["message"] == "The resourceVersion for the provided list is too old."
    expect_error(cluster, lambda: admin.list("configmaps", "default", resourceVersion="999999"),
                 504, "Timeout")
    expect_error(cluster, lambda: admin.list("configmaps", resourceVersionMatch="Exact"), 422,
                 "Invalid")


def test_watch_from_resource_version_and_410(cluster):
    admin = cluster.admin()
    cm = admin.create(objects.configmap("c", data={"v": "0"}))
    rv = cm["metadata"]["resourceVersion"]
    for v in "12":
        admin.patch("configmaps", "c", {"data": {"v": v}}, "default")
    events = []
    admin.watch("configmaps", lambda e: events.append(e), "default", resourceVersion=rv)
    cluster.settle()
    assert [(e["type"], e["object"]["data"]["v"]) for e in events if e] == [
        ("MODIFIED", "1"), ("MODIFIED", "2")]
    cluster.apiserver.compact()
    events.clear()
    admin.watch("configmaps", lambda e: events.append(e), "default", resourceVersion=rv)
    cluster.settle()
    assert events[0]["type"] == "ERROR"
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")
    assert events[0]["object"]["message"].startswith(f"too old resource version: {rv} (")
    assert events[-1] is None  # and the stream is closed


def test_watch_selector_transitions(cluster):
    admin = cluster.admin()
    events = []
    admin.watch("configmaps", lambda e: events.append(e and (e["type"], e["object"][
        "metadata"]["name"])), "default", labelSelector="team=a")
    cm = admin.create(dict(objects.configmap("c"), metadata={"name": "c",
                                                             "labels": {"team": "a"}}))
    cm["metadata"]["labels"] = {"team": "b"}
    admin.update(cm)
    cluster.settle()
    assert events == [("ADDED", "c"), ("DELETED", "c")]


def test_watch_bookmarks(cluster):
    admin = cluster.admin()
    events = []
    admin.watch("configmaps", lambda e: events.append(e), "default", allowWatchBookmarks=True)
    cluster.run_for(61)
    assert [e["type"] for e in events if e] == ["BOOKMARK"]
    assert events[0]["object"]["metadata"]["resourceVersion"] == str(cluster.etcd.revision)


def test_graceful_pod_deletion(cluster):
    admin = cluster.admin()
    admin.create(objects.pod("unbound"))
    admin.delete("pods", "unbound", "default")
    expect_error(cluster, lambda: admin.get("pods", "unbound", "default"), 404, "NotFound")
    admin.create(objects.pod("bound", node_name="node-a"))
    out = admin.delete("pods", "bound", "default")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30
    assert out["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:30Z"
    assert admin.get("pods", "bound", "default")  # still there until the kubelet confirms
    admin.delete("pods", "bound", "default", gracePeriodSeconds=0)
    expect_error(cluster, lambda: admin.get("pods", "bound", "default"), 404, "NotFound")


def test_finalizers_hold_deletion(cluster):
    admin = cluster.admin()
    cm = objects.configmap("c")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    admin.create(cm)
    held = admin.delete("configmaps", "c", "default")
    assert held["metadata"]["deletionTimestamp"]
    admin.patch("configmaps", "c", {"metadata": {"finalizers": None}}, "default")
    expect_error(cluster, lambda: admin.get("configmaps", "c", "default"), 404, "NotFound")


def test_binding(cluster):
    admin, scheduler = cluster.admin(), cluster.client("kube-scheduler")
    admin.create(objects.pod("p"))
    assert scheduler.bind("default", "p", "node-a")["status"] == "Success"
    pod = admin.get("pods", "p", "default")
    assert pod["spec"]["nodeName"] == "node-a"
    assert [c["type"] for c in pod["status"]["conditions"]] == ["PodScheduled"]
    status = expect_error(cluster, lambda: scheduler.bind("default", "p", "node-b"), 409,
                          "Conflict")
    assert status["message"] == ('Operation cannot be fulfilled on pods/binding "p": pod p is '
                                 'already assigned to node "node-a"')
    expect_error(cluster, lambda: scheduler.bind("default", "ghost", "node-a"), 404, "NotFound")


def test_eviction_and_pdb(cluster):
    admin = cluster.admin()
    for name in ("a", "b"):
        admin.create(objects.pod(name, labels={"app": "web"}, node_name="node-a"))
        pod = admin.get("pods", name, "default")
        pod["status"]["phase"] = "Running"
        admin.update_status(pod)
    pdb = admin.create(objects.pdb("web", selector={"app": "web"}, min_available=2))
    pdb["status"] = {"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 2,
                     "desiredHealthy": 2, "expectedPods": 2}
    admin.update_status(pdb)
    status = expect_error(cluster, lambda: admin.evict("default", "a"), 429, "TooManyRequests")
    assert status["message"] == ("Cannot evict pod as it would violate the pod's disruption "
                                 "budget.")
    assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
    expect_error(cluster, lambda: admin.evict("default", "ghost"), 404, "NotFound")
    pdb = admin.get("poddisruptionbudgets", "web", "default")
    pdb["status"]["disruptionsAllowed"] = 1
    admin.update_status(pdb)
    assert admin.evict("default", "a")["status"] == "Success"
    assert admin.get("pods", "a", "default")["metadata"]["deletionTimestamp"]
    assert admin.get("poddisruptionbudgets", "web", "default")["status"][
        "disruptionsAllowed"] == 0


def test_status_subresource_separates_spec_and_status(cluster):
    admin = cluster.admin()
    pod = admin.create(objects.pod("p"))
    pod["status"]["phase"] = "Running"
    pod["spec"]["containers"][0]["image"] = "nginx:1.27"
    out = admin.update(pod)  # main resource: status change ignored, image change kept
    assert out["status"]["phase"] == "Pending"
    assert out["spec"]["containers"][0]["image"] == "nginx:1.27"
    out["status"]["phase"] = "Running"
    out["spec"]["containers"][0]["image"] = "nginx:1.28"
    out = admin.update_status(out)  # status subresource: spec change ignored
    assert out["status"]["phase"] == "Running"
    assert out["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_pod_spec_is_mostly_immutable(cluster):
    admin = cluster.admin()
    pod = admin.create(objects.pod("p"))
    pod["spec"]["restartPolicy"] = "Never"
    status = expect_error(cluster, lambda: admin.update(pod), 422, "Invalid")
    assert status["details"]["causes"][0]["reason"] == "FieldValueForbidden"


def test_events_expire_after_an_hour(cluster):
    admin = cluster.admin()
    pod = admin.create(objects.pod("p"))
    from k8sbook.client.events import EventRecorder
    EventRecorder(admin, "demo").event(pod, "Normal", "Tested", "hello")
    assert len(admin.list("events", "default")["items"]) == 1
    cluster.run_for(3601)
    assert admin.list("events", "default")["items"] == []


def test_compactor_runs_every_five_minutes(cluster):
    admin = cluster.admin()
    admin.create(objects.configmap("c"))
    cluster.run_for(301)
    first = cluster.etcd.compact_revision
    admin.patch("configmaps", "c", {"data": {"x": "1"}}, "default")
    cluster.run_for(300)
    assert cluster.etcd.compact_revision > first >= 0
