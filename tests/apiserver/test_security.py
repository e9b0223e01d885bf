"""Issue 14 holes, closed as upstream closes them: each refusal leaves etcd unchanged."""

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from tests.helpers import snapshot, status_error


@pytest.fixture()
def cluster() -> Cluster:
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.run_for(1)
    adm = c.admin()
    adm.create(objects.configmap("cfg", data={"k": "v"}))
    adm.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3cret",
                                                                  "namespace": "default"},
                "data": {"k": "dg=="}})
    adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "robot", "namespace": "default"}})
    c.run_for(1)
    return c


def mirror_pod(c: Cluster, name: str = "static-web", node: str = "node-a", **spec):
    pod = objects.pod(name, node_name=node)
    uid = c.admin().get("nodes", node)["metadata"]["uid"]
    pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node,
                                           "uid": uid, "controller": True}]
    pod["spec"].update(spec)
    return pod


# -- 1. NodeRestriction: mirror pods only, referencing nothing ---------------------------------
def test_node_creates_its_own_mirror_pod(cluster: Cluster):
    created = cluster.client("kubelet/node-a").create(mirror_pod(cluster))
    assert created["metadata"]["annotations"]["kubernetes.io/config.mirror"] == "hash"


@pytest.mark.parametrize("change, message", [
    (lambda p: p["metadata"].pop("annotations"),
     ('pod does not have "kubernetes.io/config.mirror" annotation, node "node-a" can only '
      "create mirror pods")),
    (lambda p: p["metadata"].pop("ownerReferences"),
     'node "node-a" can only create pods with an owner reference set to itself'),
    (lambda p: p["metadata"]["ownerReferences"][0].pop("controller"),
     'node "node-a" can only create pods with a controller owner reference set to itself'),
    (lambda p: p["metadata"]["ownerReferences"][0].update(uid="x"),
     "node node-a UID mismatch: expected x got "),
    (lambda p: p["spec"].update(serviceAccountName="robot"),
     'node "node-a" can not create pods that reference serviceaccounts'),
    (lambda p: p["spec"].update(volumes=[{"name": "s", "secret": {"secretName": "s3cret"}}]),
     'node "node-a" can not create pods that reference secrets (via secret volumes)'),
    (lambda p: p["spec"]["containers"][0].update(
        env=[{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s3cret", "key": "k"}}}]),
     'node "node-a" can not create pods that reference secrets'),
    (lambda p: p["spec"].update(volumes=[{"name": "c", "configMap": {"name": "cfg"}}]),
     'node "node-a" can not create pods that reference configmaps (via configmap volumes)'),
    (lambda p: p["spec"].update(volumes=[{"name": "c", "persistentVolumeClaim": {
        "claimName": "data"}}]),
     'node "node-a" can not create pods that reference persistentvolumeclaims'),
    (lambda p: p["spec"].update(volumes=[{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}]}}]),
     'can not create pods that reference serviceaccounts (via projected volumes)'),
    (lambda p: p["spec"].update(volumes=[{"name": "e", "ephemeral": {
        "volumeClaimTemplate": {"spec": {}}}}]),
     'can not create pods that reference persistentvolumeclaims (via ephemeral volumes)'),
    (lambda p: p["spec"].update(resourceClaims=[{"name": "gpu",
                                                 "resourceClaimName": "gpu"}]),
     'node "node-a" can not create pods that reference resourceclaims'),
])
def test_node_cannot_create_pods_that_reach_other_objects(cluster: Cluster, change, message):
    pod = mirror_pod(cluster)
    change(pod)
    before = snapshot(cluster)
    code, got = status_error(lambda: cluster.client("kubelet/node-a").create(pod))
    assert code == 403 and message in got, got
    assert got.startswith('pods "static-web" is forbidden: ')
    assert snapshot(cluster) == before


def test_refused_mirror_pod_gives_no_access_to_its_secret_or_account_token(cluster: Cluster):
    ka = cluster.client("kubelet/node-a")
    status_error(lambda: ka.create(mirror_pod(cluster, volumes=[
        {"name": "s", "secret": {"secretName": "s3cret"}}])))
    ka.create(mirror_pod(cluster))  # a mirror pod naming no account: no edge to "default"
    cluster.run_for(1)
    assert status_error(lambda: ka.get("secrets", "s3cret", "default"))[0] == 403
    token_request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {}}
    for account in ("robot", "default"):
        code, _ = status_error(lambda a=account: ka.request(Request(
            "create", "serviceaccounts", "", "default", a, "token", body=token_request)))
        assert code == 403


# -- 6. service-account tokens stop working -----------------------------------------------------
def token_for(c: Cluster, account: str, **spec) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    out = c.admin().request(Request("create", "serviceaccounts", "", "default", account,
                                    "token", body=body))
    return out["status"]["token"]


def as_token(c: Cluster, token: str):
    from k8sbook.apiserver.authentication import BearerToken
    return c.client("curl", BearerToken(token))


def test_token_of_deleted_service_account_is_401(cluster: Cluster):
    token = token_for(cluster, "robot")
    code, _ = status_error(lambda: as_token(cluster, token).get("pods", "x", "default"))
    assert code == 403  # authenticated (as robot), not authorized
    cluster.admin().delete("serviceaccounts", "robot", "default")
    cluster.run_for(1)
    code, message = status_error(lambda: as_token(cluster, token).get("pods", "x", "default"))
    assert (code, message) == (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == 'serviceaccount "robot" not found'
    # recreated under the same name: a new UID, the old token still refused
    cluster.admin().create({"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": "robot", "namespace": "default"}})
    cluster.run_for(1)
    assert status_error(lambda: as_token(cluster, token).get("pods", "x", "default"))[0] == 401
    assert "does not match claim" in cluster.apiserver.authn.last_failure


def test_expired_token_is_401(cluster: Cluster):
    token = token_for(cluster, "robot", expirationSeconds=600)
    cluster.run_for(600 + 30)  # inside the one-minute leeway
    assert status_error(lambda: as_token(cluster, token).get("pods", "x", "default"))[0] == 403
    cluster.run_for(60)
    assert status_error(lambda: as_token(cluster, token).get("pods", "x", "default")) == \
        (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == "service account token has expired"


def test_pod_bound_token_dies_with_its_pod(cluster: Cluster):
    adm = cluster.admin()
    pod = objects.pod("worker", node_name="node-a")
    pod["spec"]["serviceAccountName"] = "robot"
    uid = adm.create(pod)["metadata"]["uid"]
    token = token_for(cluster, "robot", boundObjectRef={"apiVersion": "v1", "kind": "Pod",
                                                        "name": "worker", "uid": uid})
    assert status_error(lambda: as_token(cluster, token).get("pods", "x", "default"))[0] == 403
    adm.delete("pods", "worker", "default", gracePeriodSeconds=0)
    cluster.run_for(5)
    assert status_error(lambda: as_token(cluster, token).get("pods", "x", "default")) == \
        (401, "Unauthorized")
    assert cluster.apiserver.authn.last_failure == "service account token has been invalidated"


# -- 2. RBAC escalation prevention --------------------------------------------------------------
RBAC_V1 = "rbac.authorization.k8s.io/v1"


def role(name: str, rules, kind: str = "Role"):
    meta = {"name": name, "namespace": "default"} if kind == "Role" else {"name": name}
    return {"apiVersion": RBAC_V1, "kind": kind, "metadata": meta, "rules": rules}


def binding(name: str, role_kind: str, role_name: str, user: str = "bob"):
    return {"apiVersion": RBAC_V1, "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": role_name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": user}]}


def user_client(c: Cluster, name: str):
    from k8sbook.apiserver.authentication import ClientCertificate
    return c.client("curl", ClientCertificate(name))


@pytest.fixture()
def rbac_manager(cluster: Cluster) -> Cluster:
    """alice may manage Roles and RoleBindings in default, and read pods there."""
    adm = cluster.admin()
    adm.create(role("rbac-manager", [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
         "verbs": ["create", "update", "get"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]))
    adm.create(binding("alice-manager", "Role", "rbac-manager", user="alice"))
    adm.create(role("pod-killer", [{"apiGroups": [""], "resources": ["pods"],
                                    "verbs": ["delete", "get"]}]))
    cluster.run_for(1)
    return cluster


def test_role_with_rules_not_held_is_403(rbac_manager: Cluster):
    alice = user_client(rbac_manager, "alice")
    before = snapshot(rbac_manager)
    code, message = status_error(lambda: alice.create(role("escalated", [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete", "patch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])))
    assert code == 403
    assert message == (
        'roles.rbac.authorization.k8s.io "escalated" is forbidden: user "alice" '
        '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not '
        'currently held:\n{APIGroups:[""], Resources:["pods"], Verbs:["delete" "patch"]}\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
    assert snapshot(rbac_manager) == before
    # rules she holds are fine
    alice.create(role("reader", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))


def test_binding_to_role_not_held_is_403_unless_bind(rbac_manager: Cluster):
    alice = user_client(rbac_manager, "alice")
    before = snapshot(rbac_manager)
    code, message = status_error(lambda: alice.create(binding("bob-killer", "Role",
                                                              "pod-killer")))
    assert code == 403 and message.startswith(
        'rolebindings.rbac.authorization.k8s.io "bob-killer" is forbidden: user "alice" ')
    assert message.endswith('{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}')
    assert snapshot(rbac_manager) == before
    assert status_error(lambda: alice.create(binding("x", "ClusterRole", "cluster-admin")))[0] \
        == 403
    adm = rbac_manager.admin()
    adm.create(role("binder", [{"apiGroups": ["rbac.authorization.k8s.io"],
                                "resources": ["roles"], "verbs": ["bind"],
                                "resourceNames": ["pod-killer"]}]))
    adm.create(binding("alice-binder", "Role", "binder", user="alice"))
    rbac_manager.run_for(1)
    alice.create(binding("bob-killer", "Role", "pod-killer"))


def test_escalate_verb_and_masters_may_grant_anything(rbac_manager: Cluster):
    alice = user_client(rbac_manager, "alice")
    adm = rbac_manager.admin()
    adm.create(role("escalator", [{"apiGroups": ["rbac.authorization.k8s.io"],
                                   "resources": ["roles"], "verbs": ["escalate"]}]))
    adm.create(binding("alice-escalator", "Role", "escalator", user="alice"))
    rbac_manager.run_for(1)
    alice.create(role("wide", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]))
    adm.create(role("wider", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
                    kind="ClusterRole"))  # kubernetes-admin: cluster-admin


# -- 3. impersonation ---------------------------------------------------------------------------
@pytest.fixture()
def impersonator(cluster: Cluster) -> Cluster:
    """bob may impersonate the user alice, group devs and extra scopes=read, nothing else."""
    adm = cluster.admin()
    adm.create(role("impersonator", [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
         "resourceNames": ["alice"]},
        {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
         "resourceNames": ["devs"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"],
         "verbs": ["impersonate"], "resourceNames": ["read"]}], kind="ClusterRole"))
    adm.create({"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
                "metadata": {"name": "bob-impersonator"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "impersonator"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": "bob"}]})
    adm.create(role("pod-reader", [{"apiGroups": [""], "resources": ["pods"],
                                    "verbs": ["get", "list"]}]))
    adm.create(binding("devs-read", "Role", "pod-reader", user="alice"))
    adm.create(objects.pod("web", node_name="node-a"))
    cluster.run_for(1)
    return cluster


@pytest.mark.parametrize("kwargs, message", [
    ({"user": "carol"}, ('users "carol" is forbidden: User "bob" cannot impersonate resource '
                        '"users" in API group "" at the cluster scope')),
    ({"user": "system:serviceaccount:default:robot"},
     ('serviceaccounts "robot" is forbidden: User "bob" cannot impersonate resource '
     '"serviceaccounts" in API group "" in the namespace "default"')),
    ({"user": "alice", "groups": ("system:masters",)},
     'groups "system:masters" is forbidden: User "bob" cannot impersonate resource "groups"'),
    ({"user": "alice", "uid": "1234"},
     ('uids.authentication.k8s.io "1234" is forbidden: User "bob" cannot impersonate resource '
     '"uids" in API group "authentication.k8s.io" at the cluster scope')),
    ({"user": "alice", "extra": (("scopes", "write"),)},
     ('userextras.authentication.k8s.io "write" is forbidden: User "bob" cannot impersonate '
     'resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope')),
])
def test_impersonation_not_allowed_is_403(impersonator: Cluster, kwargs, message):
    bob = user_client(impersonator, "bob").impersonating(**kwargs)
    before = snapshot(impersonator)
    code, got = status_error(lambda: bob.delete("pods", "web", "default"))
    assert (code, got) == (403, message) or (code == 403 and got.startswith(message)), got
    assert snapshot(impersonator) == before


def test_groups_without_user_is_500(impersonator: Cluster):
    bob = user_client(impersonator, "bob").impersonating("", groups=("devs",))
    code, got = status_error(lambda: bob.get("pods", "web", "default"))
    assert code == 500 and got.endswith("without impersonating a user")


def test_impersonated_request_is_authorized_as_the_impersonated_user(impersonator: Cluster):
    bob = user_client(impersonator, "bob")
    assert status_error(lambda: bob.get("pods", "web", "default"))[0] == 403
    as_alice = bob.impersonating("alice", groups=("devs",), extra=(("scopes", "read"),))
    assert as_alice.get("pods", "web", "default")["metadata"]["name"] == "web"
    before = snapshot(impersonator)
    code, got = status_error(lambda: as_alice.delete("pods", "web", "default"))
    assert (code, got) == (403, ('pods "web" is forbidden: User "alice" cannot delete resource '
                                '"pods" in API group "" in the namespace "default"'))
    assert snapshot(impersonator) == before
    req = Request("get", "pods", "", "default", "web")
    as_alice.request(req)
    assert req.original_user is not None and req.original_user.name == "bob"
