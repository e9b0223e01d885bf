"""Controller history: a workload's pod templates kept as ControllerRevisions.

Mirrors ``pkg/controller/history`` (``controller_history.go``). A DaemonSet or StatefulSet
records each template it has run as an ``apps/v1`` ``ControllerRevision`` in its namespace,
owned by it through a controller reference, named ``<owner>-<hash>``
(``ControllerRevisionName``, the owner's name cut to 223 characters), with a ``revision``
number (one more than the highest so far, ``nextRevision``) and as ``data`` a strategic merge
patch that restores the template: ``{"spec":{"template":{...,"$patch":"replace"}}}``
(``getPatch`` of both controllers: the owner marshalled to JSON, its ``spec.template`` taken
out, ``$patch: replace`` added, marshalled again by Go's ``encoding/json``, so with sorted keys,
no spaces, and ``<``, ``>``, ``&`` escaped: :func:`go_json`). ``kubectl rollout undo`` sends
that ``data`` back as the patch.

The hash of a revision is ``HashControllerRevision``: FNV-1 (``fnv.New32``, not FNV-1a) of the
``data`` bytes, then of the collision count in decimal when one is given, printed as a decimal
number and passed through ``rand.SafeEncodeString``. The model computes exactly that over the
bytes of the object as the model stores it; a real apiserver defaults more fields of a
template (``terminationMessagePath``, ``dnsPolicy`` ...), so the same manifest hashes to
another name there. Two revisions are the same (``EqualRevision``) when their hash labels
agree and their ``data`` bytes are equal; the revisions of an owner sort by ``revision``, then
creation time, then name (``SortControllerRevisions``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj, controller_of, controller_ref
from k8sbook.controlplane.controllers.deployment_util import ALPHANUMS
from k8sbook.core.status import StatusError

#: ``ControllerRevisionHashLabel``: the hash of a revision's data, on the revision
HASH_LABEL = "controller.kubernetes.io/hash"
#: ``apps.ControllerRevisionHashLabelKey``: the revision a pod was made from, on the pod
POD_REVISION_LABEL = "controller-revision-hash"


def safe_encode(s: str) -> str:
    """``rand.SafeEncodeString``: each byte as a letter of an alphabet without vowels."""
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in s.encode())


def fnv1_32(data: bytes, h: int = 0x811C9DC5) -> int:
    """``hash/fnv``'s ``New32`` (FNV-1: multiply, then xor)."""
    for b in data:
        h = ((h * 0x01000193) & 0xFFFFFFFF) ^ b
    return h


def go_json(obj: Any) -> bytes:
    """Go's ``json.Marshal`` of a decoded JSON value: map keys sorted, compact, UTF-8, and
    ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``encoding/json`` does."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode()


def get_patch(owner: Obj) -> Obj:
    """``getPatch``: the patch that puts the owner's template back."""
    template = copy.deepcopy(owner["spec"]["template"])
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def hash_controller_revision(data: Obj, probe: int | None) -> str:
    """``HashControllerRevision``."""
    h = fnv1_32(go_json(data))
    if probe is not None:
        h = fnv1_32(str(probe).encode(), h)
    return safe_encode(str(h))


def revision_name(prefix: str, h: str) -> str:
    """``ControllerRevisionName``."""
    return f"{prefix[:223]}-{h}"


def template_of(revision: Obj) -> Obj:
    """The pod template a revision restores (``ApplyRevision`` of its patch)."""
    template = copy.deepcopy(revision["data"]["spec"]["template"])
    template.pop("$patch", None)
    return template


def new_controller_revision(parent: Obj, kind: str, data: Obj, revision: int,
                            collision_count: int | None) -> Obj:
    """``NewControllerRevision``: labelled like the template, plus the hash label."""
    meta = parent["metadata"]
    labels = dict((parent["spec"]["template"].get("metadata") or {}).get("labels") or {})
    h = hash_controller_revision(data, collision_count)
    labels[HASH_LABEL] = h
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {
        "name": revision_name(meta["name"], h), "namespace": meta["namespace"],
        "labels": labels,
        "ownerReferences": [controller_ref(parent, "apps/v1", kind)]},
        "data": data, "revision": revision}


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    """``SortControllerRevisions``: by revision, then creation time, then name."""
    return sorted(revisions, key=lambda r: (r.get("revision", 0),
                                            r["metadata"].get("creationTimestamp", ""),
                                            r["metadata"]["name"]))


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    """``EqualRevision``: the same hash label (where both have one) and the same data."""
    if a is None or b is None:
        return a is b
    ha = (a["metadata"].get("labels") or {}).get(HASH_LABEL)
    hb = (b["metadata"].get("labels") or {}).get(HASH_LABEL)
    if ha and hb and ha != hb:
        return False
    return go_json(a.get("data")) == go_json(b.get("data"))


def next_revision(revisions: list[Obj]) -> int:
    """``nextRevision``: one more than the highest (the list sorted)."""
    return int(revisions[-1].get("revision", 0)) + 1 if revisions else 1


class History:
    """``history.NewHistory``: the revisions through an informer's cache and a client."""

    def __init__(self, client: Client, informer: SharedIndexInformer) -> None:
        self.client, self.informer = client, informer

    def list(self, parent: Obj) -> list[Obj]:
        """``ListControllerRevisions``: the revisions this parent controls (adoption of
        orphans, which upstream also lists, is left out: the model makes none)."""
        uid = parent["metadata"]["uid"]
        return sort_revisions([r for r in self.informer.indexer.by_index(
            "namespace", parent["metadata"]["namespace"])
            if (controller_of(r) or {}).get("uid") == uid])

    def create(self, parent: Obj, revision: Obj, collision_count: int) -> tuple[Obj, int]:
        """``CreateControllerRevision``: on a name taken by other data, count a collision
        and hash again (the name changes, the hash label stays as it was). Returns the
        revision and the collision count."""
        ns = parent["metadata"]["namespace"]
        while True:
            clone = copy.deepcopy(revision)
            h = hash_controller_revision(revision["data"], collision_count)
            clone["metadata"]["name"] = revision_name(parent["metadata"]["name"], h)
            try:
                return self.client.create(clone), collision_count
            except StatusError as err:
                if err.code != 409:
                    raise
            exists = self.client.get("controllerrevisions", clone["metadata"]["name"], ns)
            if go_json(exists.get("data")) == go_json(clone["data"]):
                return exists, collision_count
            collision_count += 1

    def update(self, revision: Obj, new_revision: int) -> Obj:
        """``UpdateControllerRevision``: give it a new number (a rollback to it)."""
        if revision.get("revision") == new_revision:
            return revision
        clone = copy.deepcopy(revision)
        clone["revision"] = new_revision
        return self.client.update(clone)

    def delete(self, revision: Obj) -> None:
        """``DeleteControllerRevision``."""
        try:
            self.client.delete("controllerrevisions", revision["metadata"]["name"],
                               revision["metadata"]["namespace"])
        except StatusError as err:
            if err.code != 404:
                raise
