"""``kubectl rollout undo|pause|resume`` for Deployments: what the client does, not a server.

Mirrors ``k8s.io/kubectl/pkg/polymorphichelpers`` (``rollback.go``'s ``DeploymentRollbacker``,
``objectpauser.go``, ``objectresumer.go``). Since ``apps/v1`` has no ``rollback``
subresource, the rollback happens in kubectl: it lists the Deployment's ReplicaSets, picks the
one whose ``deployment.kubernetes.io/revision`` is the one asked for (by default the highest
below the current), and sends one JSON patch that replaces the Deployment's
``spec.template`` with that ReplicaSet's template (without its ``pod-template-hash`` label)
and its annotations with the ReplicaSet's (keeping the Deployment's own bookkeeping ones). The
Deployment controller then sees a template it already has a ReplicaSet for, gives that
ReplicaSet the next revision and rolls to it. Pause and resume are merge patches of
``spec.paused``.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api.patch import JSON_PATCH, MERGE
from k8sbook.client.rest import Client

REVISION = "deployment.kubernetes.io/revision"
#: ``annotationsToSkip`` in rollback.go: kept from the Deployment, never copied from an RS
SKIPPED = ("kubectl.kubernetes.io/last-applied-configuration", REVISION,
           "deployment.kubernetes.io/revision-history",
           "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
           "deprecated.deployment.rollback.to")


class RolloutError(Exception):
    """What kubectl prints as ``error: ...``."""


def _revision(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)


def _template_without_hash(rs: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(rs["spec"]["template"])
    labels = (template.get("metadata") or {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    return template


def rollout_undo(client: Client, namespace: str, name: str, to_revision: int = 0) -> str:
    """``kubectl rollout undo deployment/NAME [--to-revision=N]``: kubectl's message."""
    d = client.get("deployments", name, namespace)
    if d["spec"].get("paused"):
        raise RolloutError('you cannot rollback a paused deployment; resume it first with '
                           "'kubectl rollout resume' and try again")
    uid = d["metadata"]["uid"]
    owned = [rs for rs in client.list("replicasets", namespace)["items"]
             if any(r.get("uid") == uid and r.get("controller")
                    for r in rs["metadata"].get("ownerReferences") or [])]
    if to_revision:
        target = next((rs for rs in owned if _revision(rs) == to_revision), None)
        if target is None:
            raise RolloutError(f"unable to find specified revision {to_revision} in history")
    else:
        current = max([_revision(rs) for rs in owned] + [0])
        older = sorted((rs for rs in owned if _revision(rs) < current), key=_revision)
        if not older:
            raise RolloutError(f'no rollout history found for deployment "{name}"')
        target = older[-1]
    template = _template_without_hash(target)
    if template == d["spec"]["template"]:
        return (f"deployment.apps/{name} skipped rollback (current template already matches "
                f"revision {_revision(target)})")
    annotations = {k: v for k, v in (d["metadata"].get("annotations") or {}).items()
                   if k in SKIPPED}
    annotations.update({k: v for k, v in (target["metadata"].get("annotations") or {}).items()
                        if k not in SKIPPED})
    client.patch("deployments", name, [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations}],
        namespace, content_type=JSON_PATCH)
    return f"deployment.apps/{name} rolled back"


def rollout_pause(client: Client, namespace: str, name: str) -> str:
    """``kubectl rollout pause``."""
    if client.get("deployments", name, namespace)["spec"].get("paused"):
        raise RolloutError(f"deployments.apps \"{name}\" is already paused")
    client.patch("deployments", name, {"spec": {"paused": True}}, namespace, content_type=MERGE)
    return f"deployment.apps/{name} paused"


def rollout_resume(client: Client, namespace: str, name: str) -> str:
    """``kubectl rollout resume``."""
    if not client.get("deployments", name, namespace)["spec"].get("paused"):
        raise RolloutError(f"deployments.apps \"{name}\" is not paused")
    client.patch("deployments", name, {"spec": {"paused": None}}, namespace,
                 content_type=MERGE)
    return f"deployment.apps/{name} resumed"
