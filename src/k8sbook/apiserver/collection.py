"""``deletecollection``: DELETE on a collection, with label and field selectors.

Mirrors ``Store.DeleteCollection`` (``k8s.io/apiserver/pkg/registry/generic/registry/store.go``,
v0.35.0) behind ``DeleteCollection`` in ``endpoints/handlers/delete.go``: the registry lists the
collection with the request's ``labelSelector`` and ``fieldSelector``, deletes every item it
listed with the request's ``DeleteOptions`` (each through the ordinary delete: admission,
preconditions, graceful deletion, finalizers; an item already gone is skipped), and answers
with the list as it was read, before the deletions. A dry run lists and checks, deletes nothing.
"""

from __future__ import annotations

from typing import Any

from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType
from k8sbook.core.status import StatusError

#: the list options a deletecollection reads; the rest of its parameters are DeleteOptions
LIST_OPTIONS = ("labelSelector", "fieldSelector", "resourceVersion", "resourceVersionMatch")


def delete_collection(apiserver: Any, rt: ResourceType, req: Request,
                      user: UserInfo) -> Response:
    """Serve ``deletecollection`` on ``rt`` (in ``req.namespace`` for namespaced kinds)."""
    listed: Response = apiserver.list_resource(rt, Request(
        "list", rt.plural, rt.group, req.namespace,
        params={k: v for k, v in req.params.items() if k in LIST_OPTIONS}, user=user), user)
    delete_params = {k: v for k, v in req.params.items() if k not in LIST_OPTIONS}
    for obj in listed.body["items"]:
        meta = obj["metadata"]
        one = Request("delete", rt.plural, rt.group, meta.get("namespace", ""), meta["name"],
                      params=dict(delete_params), user=user)
        try:
            apiserver.delete_resource(rt, one, user)
        except StatusError as err:
            if err.code != 404:
                raise
    return Response(200, listed.body)
