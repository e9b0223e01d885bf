"""May this user do this verb on this resource? Allow, deny, or no opinion.

Mirrors ``k8s.io/apiserver/pkg/authorization``: ``authorizer.Attributes`` (user, verb,
API group, resource, subresource, namespace, name), the three decisions, and the union
authorizer that asks each mode in the order of ``--authorization-mode`` (kubeadm: ``Node,RBAC``)
and stops at the first allow or deny. Members of ``system:masters`` are allowed before any mode
is asked (the apiserver's privileged-group authorizer). The RBAC mode mirrors
``plugin/pkg/auth/authorizer/rbac``: it reads Roles, ClusterRoles and their bindings (from the
apiserver's own cache of them, as the real one reads them from informers) and allows a request
if any rule bound to the user, one of their groups, or their service account covers it.
A non-resource request (a URL path such as ``/healthz`` or ``/api``) is matched against the
rules' ``nonResourceURLs`` (``rbac.NonResourceURLMatches``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from k8sbook.apiserver.authentication import UserInfo

Decision = Literal["allow", "deny", "no-opinion"]


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    api_group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    #: the request's ``fieldSelector`` (``authorizer.Attributes.GetFieldSelector``, v1.31+)
    field_selector: str = ""
    #: set for a non-resource request (``/healthz``, ``/api``, ``/version``): its URL path
    path: str = ""

    def describe(self) -> str:
        """The sentence the Forbidden message uses (``responsewriters`` ``forbiddenMessage``)."""
        if self.path:
            return f'User "{self.user.name}" cannot {self.verb} path "{self.path}"'
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        where = f' in the namespace "{self.namespace}"' if self.namespace else \
            " at the cluster scope"
        return (f'User "{self.user.name}" cannot {self.verb} resource "{res}" in API group '
                f'"{self.api_group}"{where}')


class Authorizer(Protocol):
    name: str

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]: ...


@dataclass
class AlwaysAllow:
    name: str = "AlwaysAllow"

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        return "allow", ""


class _Bindings:
    """The bindings of one list (ClusterRoleBindings, or the RoleBindings of one namespace),
    in list order, indexed by the user name and the groups their subjects name, so a request
    looks only at the bindings that can name its user. A subject whose name is not a string
    is kept aside and always looked at (``_subject_matches`` decides, as for the others)."""

    def __init__(self, items: list[dict[str, Any]], namespace: str) -> None:
        self.items = items
        self.by_user: dict[str, list[int]] = {}
        self.by_group: dict[str, list[int]] = {}
        self.always: list[int] = []
        for i, binding in enumerate(items):
            for subject in binding.get("subjects") or []:
                kind, name = subject.get("kind"), subject.get("name")
                if kind == "ServiceAccount":  # the user name _subject_matches compares with
                    ns = subject.get("namespace") or namespace
                    self.by_user.setdefault(f"system:serviceaccount:{ns}:{name}", []).append(i)
                elif kind in ("User", "Group") and not isinstance(name, str):
                    self.always.append(i)
                elif kind == "User":
                    self.by_user.setdefault(name, []).append(i)
                elif kind == "Group":
                    self.by_group.setdefault(name, []).append(i)

    def candidates(self, user: UserInfo) -> list[dict[str, Any]]:
        """The bindings with a subject that may match ``user``, in list order: a superset of
        those ``_subject_matches`` accepts, none of the others."""
        found = set(self.by_user.get(user.name, ()))
        found.update(self.always)
        for group in user.groups:
            if isinstance(group, str):
                found.update(self.by_group.get(group, ()))
            else:  # an odd group value: compare it with every Group subject, as ``in`` does
                found.update(i for i, b in enumerate(self.items) if any(
                    s.get("kind") == "Group" and s.get("name") == group
                    for s in b.get("subjects") or []))
        return [self.items[i] for i in sorted(found)]


class RBACAuthorizer:
    """Role-based access control over Role/ClusterRole/RoleBinding/ClusterRoleBinding.

    ``list_objects`` returns a resource's objects in key order (the apiserver's watch cache);
    an object that changes is replaced by a new one, never changed in place (the cache's
    objects are shared with every watcher). The authorizer keeps indexes of the last lists
    it saw (bindings by subject, roles by name) and rebuilds one when its list holds other
    objects, so it answers exactly as a scan of every binding (upstream's ``VisitRulesFor``
    scans them all) would, without the scan."""

    name = "RBAC"

    def __init__(self, list_objects: Callable[[str], list[dict[str, Any]]]) -> None:
        self._list = list_objects
        self._seen: dict[str, tuple[list[dict[str, Any]], Any]] = {}

    def _indexed(self, plural: str, build: Callable[[list[dict[str, Any]]], Any]) -> Any:
        items = self._list(plural)
        seen = self._seen.get(plural)
        if seen is not None and len(seen[0]) == len(items) and \
                all(map(operator.is_, seen[0], items)):
            return seen[1]
        index = build(items)
        self._seen[plural] = (items, index)
        return index

    def _cluster_bindings(self) -> _Bindings:
        return self._indexed("clusterrolebindings", lambda items: _Bindings(items, ""))

    def _namespace_bindings(self, namespace: str) -> _Bindings:
        def build(items: list[dict[str, Any]]) -> dict[str, _Bindings]:
            by_ns: dict[str, list[dict[str, Any]]] = {}
            for rb in items:
                by_ns.setdefault(rb["metadata"].get("namespace"), []).append(rb)
            return {ns: _Bindings(rbs, ns) for ns, rbs in by_ns.items()}
        index: dict[str, _Bindings] = self._indexed("rolebindings", build)
        return index.get(namespace) or _Bindings([], namespace)

    @staticmethod
    def _subject_matches(subject: dict[str, Any], user: UserInfo, namespace: str) -> bool:
        kind, name = subject.get("kind"), subject.get("name")
        if kind == "User":
            return name == user.name
        if kind == "Group":
            return name in user.groups
        if kind == "ServiceAccount":
            ns = subject.get("namespace") or namespace
            return user.name == f"system:serviceaccount:{ns}:{name}"
        return False

    @staticmethod
    def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
        def has(values: list[str] | None, want: str) -> bool:
            if not values:
                return False
            return "*" in values or want in values

        if attrs.path:  # ``NonResourceURLMatches``: exact, "*", or a "prefix*"
            return has(rule.get("verbs"), attrs.verb) and any(
                u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1]))
                for u in rule.get("nonResourceURLs") or [])
        res = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        names = rule.get("resourceNames")
        return (has(rule.get("verbs"), attrs.verb)
                and has(rule.get("apiGroups"), attrs.api_group)
                and (has(rule.get("resources"), res)
                     or (not attrs.subresource and has(rule.get("resources"), attrs.resource))
                     or has(rule.get("resources"), f"*/{attrs.subresource}"))
                and (not names or attrs.name in names))

    def _role(self, role_ref: dict[str, Any], namespace: str,
              fetched: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The role ``role_ref`` names: the first of that name in key order (in
        ``namespace`` for a Role). ``fetched``: the role indexes already read for this
        request (nothing changes while one request is authorized)."""
        def build(items: list[dict[str, Any]]) -> dict[tuple[Any, Any], dict[str, Any]]:
            out: dict[tuple[Any, Any], dict[str, Any]] = {}
            for role in items:
                meta = role["metadata"]
                key = (meta.get("namespace") if plural == "roles" else "", meta["name"])
                out.setdefault(key, role)
            return out
        plural = "clusterroles" if role_ref.get("kind") == "ClusterRole" else "roles"
        index = fetched.get(plural) if fetched is not None else None
        if index is None:
            index = self._indexed(plural, build)
            if fetched is not None:
                fetched[plural] = index
        name = role_ref.get("name")
        try:
            return index.get((namespace if plural == "roles" else "", name))
        except TypeError:  # an unhashable name names no role
            return None

    def _rules(self, role_ref: dict[str, Any], namespace: str,
               fetched: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        role = self._role(role_ref, namespace, fetched)
        return (role.get("rules") or []) if role is not None else []

    def rules_for(self, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        """Every rule bound to ``user`` cluster-wide, and in ``namespace`` if one is given
        (``DefaultRuleResolver.RulesFor``, what escalation prevention compares against)."""
        out: list[dict[str, Any]] = []
        fetched: dict[str, Any] = {}
        for crb in self._cluster_bindings().candidates(user):
            if any(self._subject_matches(s, user, "") for s in crb.get("subjects") or []):
                out += self._rules(crb["roleRef"], "", fetched)
        if namespace:
            for rb in self._namespace_bindings(namespace).candidates(user):
                if any(self._subject_matches(s, user, namespace)
                       for s in rb.get("subjects") or []):
                    out += self._rules(rb["roleRef"], namespace, fetched)
        return out

    def role_rules(self, role_ref: dict[str, Any], namespace: str) -> list[dict[str, Any]] | None:
        """The rules of the role a binding refers to (``GetRoleReferenceRules``), ``None`` if
        it does not exist."""
        role = self._role(role_ref, namespace)
        return None if role is None else list(role.get("rules") or [])

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        fetched: dict[str, Any] = {}
        for crb in self._cluster_bindings().candidates(attrs.user):
            subjects = crb.get("subjects") or []
            if any(self._subject_matches(s, attrs.user, "") for s in subjects) and any(
                    self.rule_allows(r, attrs) for r in self._rules(crb["roleRef"], "", fetched)):
                name = crb["metadata"]["name"]
                return "allow", f'RBAC: allowed by ClusterRoleBinding "{name}"'
        if attrs.namespace:
            ns = attrs.namespace
            for rb in self._namespace_bindings(ns).candidates(attrs.user):
                subjects = rb.get("subjects") or []
                if any(self._subject_matches(s, attrs.user, ns) for s in subjects) and any(
                        self.rule_allows(r, attrs)
                        for r in self._rules(rb["roleRef"], ns, fetched)):
                    name = rb["metadata"]["name"]
                    return "allow", f'RBAC: allowed by RoleBinding "{name}/{ns}"'
        return "no-opinion", ""


class UnionAuthorizer:
    """Ask each authorizer in order; the first allow or deny wins; else forbidden."""

    PRIVILEGED_GROUP = "system:masters"

    def __init__(self, authorizers: list[Authorizer]) -> None:
        self.authorizers = list(authorizers)

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        if self.PRIVILEGED_GROUP in attrs.user.groups:
            return "allow", "system:masters"
        reasons = []
        for authz in self.authorizers:
            decision, reason = authz.authorize(attrs)
            if decision != "no-opinion":
                return decision, reason
            if reason:
                reasons.append(reason)
        return "deny", "; ".join(reasons)
