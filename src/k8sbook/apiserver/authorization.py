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


class RBACAuthorizer:
    """Role-based access control over Role/ClusterRole/RoleBinding/ClusterRoleBinding."""

    name = "RBAC"

    def __init__(self, list_objects: Callable[[str], list[dict[str, Any]]]) -> None:
        self._list = list_objects

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

    def _rules(self, role_ref: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        if role_ref.get("kind") == "ClusterRole":
            pool = self._list("clusterroles")
        else:
            pool = [r for r in self._list("roles") if r["metadata"].get("namespace") == namespace]
        for role in pool:
            if role["metadata"]["name"] == role_ref.get("name"):
                return role.get("rules") or []
        return []

    def rules_for(self, user: UserInfo, namespace: str) -> list[dict[str, Any]]:
        """Every rule bound to ``user`` cluster-wide, and in ``namespace`` if one is given
        (``DefaultRuleResolver.RulesFor``, what escalation prevention compares against)."""
        out: list[dict[str, Any]] = []
        for crb in self._list("clusterrolebindings"):
            if any(self._subject_matches(s, user, "") for s in crb.get("subjects") or []):
                out += self._rules(crb["roleRef"], "")
        if namespace:
            for rb in self._list("rolebindings"):
                if rb["metadata"].get("namespace") == namespace and any(
                        self._subject_matches(s, user, namespace)
                        for s in rb.get("subjects") or []):
                    out += self._rules(rb["roleRef"], namespace)
        return out

    def role_rules(self, role_ref: dict[str, Any], namespace: str) -> list[dict[str, Any]] | None:
        """The rules of the role a binding refers to (``GetRoleReferenceRules``), ``None`` if
        it does not exist."""
        if role_ref.get("kind") == "ClusterRole":
            pool = self._list("clusterroles")
        else:
            pool = [r for r in self._list("roles") if r["metadata"].get("namespace") == namespace]
        role = next((r for r in pool if r["metadata"]["name"] == role_ref.get("name")), None)
        return None if role is None else list(role.get("rules") or [])

    def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        for crb in self._list("clusterrolebindings"):
            subjects = crb.get("subjects") or []
            if any(self._subject_matches(s, attrs.user, "") for s in subjects) and any(
                    self.rule_allows(r, attrs) for r in self._rules(crb["roleRef"], "")):
                name = crb["metadata"]["name"]
                return "allow", f'RBAC: allowed by ClusterRoleBinding "{name}"'
        if attrs.namespace:
            for rb in self._list("rolebindings"):
                ns = rb["metadata"].get("namespace")
                if ns != attrs.namespace:
                    continue
                subjects = rb.get("subjects") or []
                if any(self._subject_matches(s, attrs.user, ns) for s in subjects) and any(
                        self.rule_allows(r, attrs) for r in self._rules(rb["roleRef"], ns)):
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
