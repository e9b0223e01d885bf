"""The RBAC authorizer (``k8sbook.apiserver.authorization``): its indexes answer as a scan.

``PlainRBAC`` is the authorizer as it was before it indexed bindings by subject: it scans every
ClusterRoleBinding, then every RoleBinding of the namespace, in key order. On generated
policies and users both must give the same decision and reason, the same rules and the same
role lookups, also after the lists change.
"""

import random

from k8sbook.apiserver.authentication import UserInfo
from k8sbook.apiserver.authorization import Attributes, RBACAuthorizer
from k8sbook.cluster import Cluster


class PlainRBAC:
    def __init__(self, list_objects):
        self._list = list_objects

    def _rules(self, ref, namespace):
        if ref.get("kind") == "ClusterRole":
            pool = self._list("clusterroles")
        else:
            pool = [r for r in self._list("roles") if r["metadata"].get("namespace") == namespace]
        for role in pool:
            if role["metadata"]["name"] == ref.get("name"):
                return role.get("rules") or []
        return []

    def role_rules(self, ref, namespace):
        if ref.get("kind") == "ClusterRole":
            pool = self._list("clusterroles")
        else:
            pool = [r for r in self._list("roles") if r["metadata"].get("namespace") == namespace]
        role = next((r for r in pool if r["metadata"]["name"] == ref.get("name")), None)
        return None if role is None else list(role.get("rules") or [])

    @staticmethod
    def matches(subject, user, namespace):
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User":
            return name == user.name
        if kind == "Group":
            return name in user.groups
        if kind == "ServiceAccount":
            ns = subject.get("namespace") or namespace
            return user.name == f"system:serviceaccount:{ns}:{name}"
        return False

    def rules_for(self, user, namespace):
        out = []
        for crb in self._list("clusterrolebindings"):
            if any(self.matches(s, user, "") for s in crb.get("subjects") or []):
                out += self._rules(crb["roleRef"], "")
        if namespace:
            for rb in self._list("rolebindings"):
                if rb["metadata"].get("namespace") == namespace and any(
                        self.matches(s, user, namespace) for s in rb.get("subjects") or []):
                    out += self._rules(rb["roleRef"], namespace)
        return out

    def authorize(self, attrs):
        allows = RBACAuthorizer.rule_allows
        for crb in self._list("clusterrolebindings"):
            if any(self.matches(s, attrs.user, "") for s in crb.get("subjects") or []) and any(
                    allows(r, attrs) for r in self._rules(crb["roleRef"], "")):
                return "allow", f'RBAC: allowed by ClusterRoleBinding "{crb["metadata"]["name"]}"'
        if attrs.namespace:
            for rb in self._list("rolebindings"):
                ns = rb["metadata"].get("namespace")
                if ns != attrs.namespace:
                    continue
                if any(self.matches(s, attrs.user, ns) for s in rb.get("subjects") or []) and \
                        any(allows(r, attrs) for r in self._rules(rb["roleRef"], ns)):
                    return "allow", f'RBAC: allowed by RoleBinding "{rb["metadata"]["name"]}/{ns}"'
        return "no-opinion", ""


NAMES = ["alice", "bob", "system:serviceaccount:a:sa", "system:serviceaccount:b:sa"]
GROUPS = ["dev", "ops", "system:authenticated"]
VERBS = ["get", "list", "create", "*"]
RESOURCES = ["pods", "pods/status", "secrets", "*", "*/status"]


def policy(rng):
    def rules():
        return [{"verbs": rng.sample(VERBS, rng.randint(1, 2)), "apiGroups": [""],
                 "resources": rng.sample(RESOURCES, rng.randint(1, 2))}
                for _ in range(rng.randint(0, 2))]

    def subjects(namespaced):
        out = []
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(["User", "Group", "ServiceAccount", "Other"])
            if kind == "User":
                out.append({"kind": kind, "name": rng.choice(NAMES + [None, 7])})
            elif kind == "Group":
                out.append({"kind": kind, "name": rng.choice(GROUPS + [None])})
            elif kind == "ServiceAccount":
                s = {"kind": kind, "name": "sa"}
                if rng.random() < 0.5 or not namespaced:
                    s["namespace"] = rng.choice(["a", "b"])
                out.append(s)
            else:
                out.append({"kind": kind, "name": "alice"})
        return out

    role_names = ["r0", "r1", "r2", "r3"]
    lists = {
        "clusterroles": [{"metadata": {"name": n}, "rules": rules()}
                         for n in rng.sample(role_names, 3)],
        "roles": [{"metadata": {"name": n, "namespace": ns}, "rules": rules()}
                  for ns in ("a", "b") for n in rng.sample(role_names, 2)],
        "clusterrolebindings": [
            {"metadata": {"name": f"crb{i}"}, "subjects": subjects(False),
             "roleRef": {"kind": "ClusterRole", "name": rng.choice(role_names)}}
            for i in range(rng.randint(0, 6))],
        "rolebindings": [
            {"metadata": {"name": f"rb{i}", "namespace": rng.choice(["a", "b"])},
             "subjects": subjects(True),
             "roleRef": {"kind": rng.choice(["Role", "ClusterRole"]),
                         "name": rng.choice(role_names)}}
            for i in range(rng.randint(0, 6))],
    }
    return {k: sorted(v, key=lambda o: (o["metadata"].get("namespace", ""),
                                        o["metadata"]["name"])) for k, v in lists.items()}


def test_indexed_rbac_answers_as_a_scan_of_every_binding():
    rng = random.Random(11)
    state = policy(rng)
    lister = lambda plural: list(state[plural])  # a new list each time, as the cache
    indexed, plain = RBACAuthorizer(lister), PlainRBAC(lister)
    allowed = 0
    for step in range(600):
        if step % 20 == 0:  # new objects: the indexes must follow
            state = policy(rng)
        user = UserInfo(rng.choice(NAMES), tuple(rng.sample(GROUPS, rng.randint(0, 2))))
        ns = rng.choice(["", "a", "b"])
        attrs = Attributes(user, rng.choice(VERBS[:3]), "", "pods",
                           rng.choice(["", "status"]), ns)
        assert indexed.authorize(attrs) == plain.authorize(attrs)
        allowed += indexed.authorize(attrs)[0] == "allow"
        assert indexed.rules_for(user, ns) == plain.rules_for(user, ns)
        ref = {"kind": rng.choice(["Role", "ClusterRole"]), "name": rng.choice(["r0", "r4"])}
        assert indexed.role_rules(ref, ns) == plain.role_rules(ref, ns)
    assert 50 < allowed < 550  # both outcomes were exercised


def test_a_binding_made_through_the_api_is_seen_by_the_next_request():
    cluster = Cluster(seed=3)
    admin = cluster.admin()
    rbac = cluster.apiserver.rbac
    user = UserInfo("carol", ("system:authenticated",))
    attrs = Attributes(user, "list", "", "secrets", "", "default")
    assert rbac.authorize(attrs) == ("no-opinion", "")
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                  "metadata": {"name": "read-secrets", "namespace": "default"},
                  "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["secrets"]}]})
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                  "metadata": {"name": "carol-reads", "namespace": "default"},
                  "subjects": [{"kind": "User", "name": "carol"}],
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                              "name": "read-secrets"}})
    cluster.settle(1)
    assert rbac.authorize(attrs) == ("allow", 'RBAC: allowed by RoleBinding "carol-reads/default"')
