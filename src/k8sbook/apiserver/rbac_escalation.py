"""RBAC escalation prevention: nobody grants, or binds, permissions they do not hold.

Mirrors the policy-based storage of ``pkg/registry/rbac`` (``role/policybased``,
``clusterrole/policybased``, ``rolebinding/policybased``, ``clusterrolebinding/policybased``)
and ``pkg/registry/rbac/validation`` (``ConfirmNoEscalation``, ``Covers``, ``BreakdownRule``,
``CompactRules``, ``CompactString``):

* creating or updating a Role or ClusterRole is allowed if the caller is in ``system:masters``
  (``EscalationAllowed``), or may ``escalate`` that role (``RoleEscalationAuthorized``), or
  already holds every permission the rules grant; else ``403``
  ``user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not
  currently held:`` followed by the missing rules, one a line, sorted;
* creating or updating a RoleBinding or ClusterRoleBinding is allowed if the caller is in
  ``system:masters``, or may ``bind`` the role it refers to (``BindingAuthorized``), or holds
  every permission of that role (in the binding's namespace); a role that does not exist is
  ``404``.

"Holds" means: granted by the caller's RBAC bindings (cluster-wide, plus the namespace of the
object), as ``DefaultRuleResolver.RulesFor`` resolves them.

Simplified: an update that leaves a role's rules (a binding's roleRef and subjects) as they
were is not checked (upstream skips only updates that touch nothing but the fields the garbage
collector writes); aggregated ClusterRoles are not modelled.
"""

from __future__ import annotations

import json
from typing import Any

from k8sbook.api.request import UserInfo
from k8sbook.apiserver.authorization import Attributes, RBACAuthorizer, UnionAuthorizer
from k8sbook.core.status import StatusError, forbidden, not_found

__all__ = ["GROUP", "EscalationCheck", "compact_string", "covers"]

GROUP = "rbac.authorization.k8s.io"
ROLES = ("roles", "clusterroles")
BINDINGS = ("rolebindings", "clusterrolebindings")
Atom = tuple[str, str, str, str, str]  # group, resource, resourceName, nonResourceURL, verb


def _breakdown(rule: dict[str, Any]) -> list[Atom]:
    """``BreakdownRule``: one atom per group x resource x name x verb (and URL x verb)."""
    out: list[Atom] = []
    for group in rule.get("apiGroups") or []:
        for res in rule.get("resources") or []:
            for verb in rule.get("verbs") or []:
                out += [(group, res, n, "", verb) for n in rule.get("resourceNames") or [""]]
    for url in rule.get("nonResourceURLs") or []:
        out += [("", "", "", url, verb) for verb in rule.get("verbs") or []]
    return out


def _has(values: list[str] | None, want: str) -> bool:
    return bool(values) and ("*" in values or want in values)  # type: ignore[operator]


def _rule_covers(owner: dict[str, Any], atom: Atom) -> bool:
    group, res, name, url, verb = atom
    if not _has(owner.get("verbs"), verb):
        return False
    if url:
        return any(u == "*" or u == url or (u.endswith("*") and url.startswith(u[:-1]))
                   for u in owner.get("nonResourceURLs") or [])
    resources = owner.get("resources") or []
    sub = res.partition("/")[2]
    names = owner.get("resourceNames") or []
    return (_has(owner.get("apiGroups"), group)
            and ("*" in resources or res in resources or (bool(sub) and f"*/{sub}" in resources))
            and (not names or (name != "" and name in names)))


def covers(owner: list[dict[str, Any]], requested: list[dict[str, Any]]) -> list[Atom]:
    """``Covers``: the atoms of ``requested`` no rule of ``owner`` covers."""
    return [a for r in requested for a in _breakdown(r)
            if not any(_rule_covers(o, a) for o in owner)]


def _q(values: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["get" "list"]``."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def compact_string(atoms: list[Atom]) -> list[str]:
    """``CompactRules`` then ``CompactString`` of each: the verbs of one group/resource/name
    merged into one rule, sorted as a string set."""
    merged: dict[tuple[str, str, str, str], list[str]] = {}
    for group, res, name, url, verb in atoms:
        verbs = merged.setdefault((group, res, name, url), [])
        if verb not in verbs:
            verbs.append(verb)
    out = set()
    for (group, res, name, url), verbs in merged.items():
        parts = [f"NonResourceURLs:{_q([url])}"] if url else \
            [f"APIGroups:{_q([group])}", f"Resources:{_q([res])}"] + \
            ([f"ResourceNames:{_q([name])}"] if name else [])
        out.add("{" + ", ".join([*parts, f"Verbs:{_q(verbs)}"]) + "}")
    return sorted(out)


class EscalationCheck:
    """Run by the apiserver on every create and update of the four RBAC kinds."""

    def __init__(self, rbac: RBACAuthorizer, authz: UnionAuthorizer) -> None:
        self.rbac = rbac
        self.authz = authz

    def check(self, op: str, resource: str, group: str, namespace: str, user: UserInfo,
              obj: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
        """Raise the 403 (or 404) of the policy-based storage; return if allowed."""
        if group != GROUP or op not in ("CREATE", "UPDATE") or obj is None or \
                resource not in ROLES + BINDINGS:
            return
        if UnionAuthorizer.PRIVILEGED_GROUP in user.groups:  # EscalationAllowed
            return
        name = (obj.get("metadata") or {}).get("name", "")
        ns = namespace if resource in ("roles", "rolebindings") else ""
        if resource in ROLES:
            if old is not None and (old.get("rules") or []) == (obj.get("rules") or []):
                return
            if self._allowed(user, "escalate", resource, ns, name):
                return
            rules = list(obj.get("rules") or [])
        else:
            if old is not None and old.get("roleRef") == obj.get("roleRef") and \
                    old.get("subjects") == obj.get("subjects"):
                return
            ref = obj.get("roleRef") or {}
            kind = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
            if self._allowed(user, "bind", kind, ns, ref.get("name", "")):
                return
            found = self.rbac.role_rules(ref, ns)
            if found is None:
                raise not_found(kind, GROUP, ref.get("name", ""))
            rules = found
        missing = covers(self.rbac.rules_for(user, ns), rules)
        if missing:
            raise self.refusal(resource, name, user, missing)

    def _allowed(self, user: UserInfo, verb: str, resource: str, ns: str, name: str) -> bool:
        decision, _ = self.authz.authorize(Attributes(user, verb, GROUP, resource,
                                                      namespace=ns, name=name))
        return decision == "allow"

    @staticmethod
    def refusal(resource: str, name: str, user: UserInfo, missing: list[Atom]) -> StatusError:
        """``ConfirmNoEscalation``'s error, wrapped by ``errors.NewForbidden``."""
        return forbidden(resource, GROUP, name,
                         f"user {json.dumps(user.name)} (groups={_q(list(user.groups))}) is "
                         "attempting to grant RBAC permissions not currently held:\n"
                         + "\n".join(compact_string(missing)))
