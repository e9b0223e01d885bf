"""The ServiceAccount admission plugin: every pod runs as an account and gets its token.

Mirrors ``plugin/pkg/admission/serviceaccount/admission.go`` (``Admit`` for a pod CREATE):

* an empty ``spec.serviceAccountName`` becomes ``default``;
* the ServiceAccount must exist (read from the apiserver's own cache, then, if the cache does
  not hold it, read live: ``getServiceAccount``'s direct lookup), or the pod is refused
  with 403 ``pods "web" is forbidden: error looking up service account default/default:
  serviceaccount "default" not found``; this is why every namespace needs the ServiceAccount
  controller's ``default`` account;
* unless the pod or the account says ``automountServiceAccountToken: false``, the pod gets a
  projected volume ``kube-api-access-<5 random characters>`` (a ``serviceAccountToken`` of
  3607 s at ``token``, ``ca.crt`` from the ConfigMap ``kube-root-ca.crt``, the pod's
  namespace through the downward API at ``namespace``; ``defaultMode: 420``) and every
  container and init container a read-only mount of it at
  ``/var/run/secrets/kubernetes.io/serviceaccount``, unless something is mounted there.

Mirror pods (``kubernetes.io/config.mirror``) are left alone. The kubelet's token manager
(:mod:`k8sbook.node.token_manager`) fills the volume with a TokenRequest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.apiserver.admission import AdmissionAttributes
from k8sbook.core.status import forbidden

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
#: ``serviceaccount.WarnOnlyBoundTokenExpirationSeconds``: one hour and seven seconds
EXPIRATION_SECONDS = 3607
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def token_volume(name: str) -> dict[str, Any]:
    """``TokenVolumeSource``: the projected volume the plugin adds."""
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt",
                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


class ServiceAccount:
    """The mutating plugin; ``get_service_account(ns, name)`` reads the apiserver's cache,
    ``suffix()`` draws the volume name's five random characters."""

    name = "ServiceAccount"

    def __init__(self, get_service_account: Callable[[str, str], dict[str, Any] | None],
                 suffix: Callable[[], str], enabled: bool = True) -> None:
        self.get_service_account = get_service_account
        self.suffix = suffix
        self.enabled = enabled

    def admit(self, attrs: AdmissionAttributes) -> None:
        if not self.enabled or attrs.operation != "CREATE" or attrs.kind != "Pod" or \
                attrs.subresource or attrs.obj is None:
            return
        pod = attrs.obj
        if MIRROR_ANNOTATION in (pod["metadata"].get("annotations") or {}):
            return
        spec = pod.setdefault("spec", {})
        account = spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccountName"] = account
        sa = self.get_service_account(attrs.namespace, account)
        if sa is None:
            raise forbidden("pods", "", attrs.name, f"error looking up service account "
                            f"{attrs.namespace}/{account}: serviceaccount \"{account}\" "
                            "not found")
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = sa.get("automountServiceAccountToken")
        if automount is False:
            return
        volumes = spec.get("volumes") or []
        existing = next((v["name"] for v in volumes
                         if v.get("name", "").startswith(VOLUME_PREFIX)), None)
        name = existing or VOLUME_PREFIX + self.suffix()
        needed = False
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            mounts = c.setdefault("volumeMounts", [])
            if not any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
                needed = True
            if not c["volumeMounts"]:
                del c["volumeMounts"]
        if needed and existing is None:
            spec["volumes"] = [*volumes, token_volume(name)]
