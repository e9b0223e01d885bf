"""API Priority and Fairness: classification by the v1.35 bootstrap FlowSchemas, a flood
refused with 429 and Retry-After while other flows and levels are served, and no effect on
normal loads."""

from k8sbook.api.request import Request
from k8sbook.apiserver.authentication import UserInfo
from k8sbook.apiserver.flowcontrol import FLOW_SCHEMAS, FlowControl
from k8sbook.cluster import Cluster
from k8sbook.textbook.scenarios import run


def test_bootstrap_flow_schemas_in_precedence_order() -> None:
    names = [s.name for s in FLOW_SCHEMAS]
    assert names[0] == "exempt" and names[-2:] == ["global-default", "catch-all"]
    assert {"system-leader-election", "system-node-high", "system-nodes",
            "service-accounts"} <= set(names)


def test_classification() -> None:
    apf = FlowControl(Cluster(seed=0).clock)
    def level(user: UserInfo, req: Request) -> str:
        return apf.classify(user, req).priority_level
    node = UserInfo("system:node:a", ("system:nodes",))
    assert level(node, Request("get", "nodes")) == "node-high"
    assert level(node, Request("update", "leases", "coordination.k8s.io")) == "node-high"
    assert level(node, Request("list", "pods")) == "system"
    kcm = UserInfo("system:kube-controller-manager")
    assert level(kcm, Request("update", "leases", "coordination.k8s.io")) == "leader-election"
    assert level(kcm, Request("list", "pods")) == "workload-high"
    sa = UserInfo("system:serviceaccount:default:app", ("system:serviceaccounts",))
    assert level(sa, Request("list", "pods")) == "workload-low"
    assert level(UserInfo("system:apiserver", ("system:masters",)),
                 Request("list", "pods")) == "exempt"
    assert level(UserInfo("bob", ("system:authenticated",)),
                 Request("list", "pods")) == "global-default"


def test_flood_is_refused_and_others_served() -> None:
    facts = run("fairness-flood").facts
    assert facts["codes"]["flooder"] == {200: 14, 429: 26}
    assert facts["codes"]["alice"] == {200: 1}
    assert facts["codes"]["kubelet node-a"] == {200: 1}
    assert facts["status"] == {"code": 429, "reason": "TooManyRequests",
                               "message": "Too many requests, please try again later."}
    assert facts["retry_after_seconds"] == 1 and facts["retry_after_wait"] == 200


def test_normal_load_is_never_throttled() -> None:
    cluster = Cluster(seed=0)
    admin = cluster.admin()
    for i in range(700):  # more than the server's 600 seats, in one virtual instant
        admin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    outcomes = cluster.apiserver.flowcontrol.outcomes
    assert not any(429 in counts for counts in outcomes.values())
