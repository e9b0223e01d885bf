"""Impersonation: a caller allowed to ``impersonate`` is served as someone else.

Mirrors ``staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go``
(``WithImpersonation``, ``buildImpersonationRequests``), which runs after authentication and
before API Priority and Fairness and authorization. Each thing asked for is authorized on its
own, with verb ``impersonate``, against the real caller:

* ``Impersonate-User: alice`` -> resource ``users`` (API group ``""``), name ``alice``; a
  service-account name ``system:serviceaccount:<ns>:<name>`` -> ``serviceaccounts`` ``<name>``
  in namespace ``<ns>`` (and, if no group is asked for, the account's groups);
* each ``Impersonate-Group`` -> ``groups``; ``Impersonate-Uid`` -> ``uids`` in
  ``authentication.k8s.io``; each ``Impersonate-Extra-<key>`` value -> ``userextras/<key>`` in
  ``authentication.k8s.io``.

The first refusal is ``403`` with the authorizer's sentence (``users "alice" is forbidden:
User "bob" cannot impersonate resource "users" in API group "" at the cluster scope``); groups,
a uid or extras without a user is ``500`` (``requested [...] without impersonating a user``).
Allowed, the request continues as the new identity: ``system:authenticated`` is added unless
the groups asked for include it or ``system:unauthenticated`` (``system:unauthenticated`` for
``system:anonymous``), and the original user is kept on the request (``Request.original_user``,
what the audit log records).
"""

from __future__ import annotations

from k8sbook.api.request import Impersonation, UserInfo
from k8sbook.apiserver.authorization import Attributes, UnionAuthorizer
from k8sbook.core.status import StatusError, forbidden, status_object

__all__ = ["AUTHENTICATION_GROUP", "impersonate"]

AUTHENTICATION_GROUP = "authentication.k8s.io"
SA_PREFIX = "system:serviceaccount:"
#: (verb-less) attributes of one thing asked for, and how Go prints its ObjectReference
Ask = tuple[str, str, str, str, str]  # group, resource, subresource, namespace, name


def _asks(imp: Impersonation) -> list[tuple[Ask, str]]:
    out: list[tuple[Ask, str]] = []
    if imp.user:
        if imp.user.startswith(SA_PREFIX) and imp.user.count(":") == 3:
            ns, name = imp.user[len(SA_PREFIX):].split(":")
            out.append((("", "serviceaccounts", "", ns, name),
                        f"{{ServiceAccount {ns} {name}    }}"))
        else:
            out.append((("", "users", "", "", imp.user), f"{{User  {imp.user}    }}"))
    out += [(("", "groups", "", "", g), f"{{Group  {g}    }}") for g in imp.groups]
    out += [((AUTHENTICATION_GROUP, "userextras", key, "", value),
             f"{{UserExtra  {value}  {AUTHENTICATION_GROUP}/v1  {key}}}")
            for key, value in imp.extra]
    if imp.uid:
        out.append(((AUTHENTICATION_GROUP, "uids", "", "", imp.uid),
                    f"{{UID  {imp.uid}  {AUTHENTICATION_GROUP}/v1  }}"))
    return out


def impersonate(authz: UnionAuthorizer, requestor: UserInfo, imp: Impersonation) -> UserInfo:
    """The identity ``requestor`` may act as, or the StatusError upstream answers."""
    asks = _asks(imp)
    if not imp.user:
        listed = " ".join(text for _, text in asks)
        msg = f"requested [{listed}] without impersonating a user"
        raise StatusError(status_object(500, "InternalError",
                                        f"Internal error occurred: {msg}",
                                        causes=[{"message": msg}]))
    groups: list[str] = []
    for (group, resource, sub, ns, name), _ in asks:
        attrs = Attributes(requestor, "impersonate", group, resource, sub, ns, name)
        decision, reason = authz.authorize(attrs)
        if decision != "allow":
            raise forbidden(resource, group, name,
                            attrs.describe() + (f": {reason}" if reason else ""))
        if resource == "serviceaccounts" and not imp.groups:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
        elif resource == "groups":
            groups.append(name)
    username = imp.user
    if username != "system:anonymous":
        if not {"system:authenticated", "system:unauthenticated"} & set(groups):
            groups.append("system:authenticated")
    elif "system:unauthenticated" not in groups:
        groups.append("system:unauthenticated")
    return UserInfo(username, tuple(groups), imp.uid, tuple(imp.extra))
