"""What the kubelet prepares for each container: environment, mounts, the hosts file.

Mirrors ``pkg/kubelet/kubelet_pods.go`` (v1.35.0): ``makeEnvironmentVariables`` (the Service
variables of the master Service ``default/kubernetes``, then the container's own ``env``),
``makeMounts`` (the pod's ``/etc/hosts`` and its volumes' ``volumeMounts``) and
``ensureHostsFile``/``managedHostsFileContent`` (the Kubernetes-managed hosts file the kubelet
writes to ``/var/lib/kubelet/pods/<uid>/etc-hosts`` for pods not on the host network).

Simplified: the kubelet does not watch Services here, so only the ``kubernetes`` Service's
variables are set, from the kubelet's settings (``enableServiceLinks`` variables of other
Services are not). Of ``env`` entries with ``valueFrom`` only ``fieldRef`` to the pod's own
metadata and spec is resolved (``podFieldSelectorRuntimeValue``: ``metadata.name``,
``metadata.namespace``, ``metadata.uid``, ``metadata.labels['k']``,
``metadata.annotations['k']``, ``spec.nodeName``, ``spec.serviceAccountName``; the Job
controller's ``JOB_COMPLETION_INDEX`` is one); ``status.*`` fields, ``configMapKeyRef``,
``secretKeyRef`` and ``resourceFieldRef`` are skipped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"


def pod_dir(root: str, uid: str) -> str:
    return f"{root}/pods/{uid}"


def hosts_file(pod_ips: list[str], hostname: str, subdomain: str = "") -> str:
    """``managedHostsFileContent``."""
    out = [MANAGED_HOSTS_HEADER, "127.0.0.1\tlocalhost\n",
           "::1\tlocalhost ip6-localhost ip6-loopback\n", "fe00::0\tip6-localnet\n",
           "fe00::0\tip6-mcastprefix\n", "fe00::1\tip6-allnodes\n", "fe00::2\tip6-allrouters\n"]
    for ip in pod_ips:
        out.append(f"{ip}\t{hostname}.{subdomain}\t{hostname}\n" if subdomain
                   else f"{ip}\t{hostname}\n")
    return "".join(out)


def service_env(host: str, port: int, name: str = "kubernetes",
                port_name: str = "https") -> dict[str, str]:
    """``envvars.FromServices`` for one Service with one TCP port (a new dict each call;
    its strings are made once per Service and shared by every container that gets them)."""
    return dict(_service_env_items(host, port, name, port_name))


@lru_cache(maxsize=64)
def _service_env_items(host: str, port: int, name: str,
                       port_name: str) -> tuple[tuple[str, str], ...]:
    prefix = name.upper().replace("-", "_")
    url = f"tcp://{host}:{port}"
    env = {f"{prefix}_SERVICE_HOST": host, f"{prefix}_SERVICE_PORT": str(port)}
    if port_name:
        env[f"{prefix}_SERVICE_PORT_{port_name.upper().replace('-', '_')}"] = str(port)
    env.update({f"{prefix}_PORT": url, f"{prefix}_PORT_{port}_TCP": url,
                f"{prefix}_PORT_{port}_TCP_PROTO": "tcp",
                f"{prefix}_PORT_{port}_TCP_PORT": str(port),
                f"{prefix}_PORT_{port}_TCP_ADDR": host})
    return tuple(env.items())


def field_ref_value(pod: dict[str, Any], path: str) -> str | None:
    """``podFieldSelectorRuntimeValue`` / ``fieldpath.ExtractFieldPathAsString`` for the
    pod's metadata and spec; None for a field the model does not resolve."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for prefix, source in (("metadata.labels['", meta.get("labels")),
                           ("metadata.annotations['", meta.get("annotations"))):
        if path.startswith(prefix) and path.endswith("']"):
            return str((source or {}).get(path[len(prefix):-2], ""))
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName")}
    return str(simple[path] or "") if path in simple else None


def make_environment_variables(container: dict[str, Any], master: tuple[str, int],
                               pod: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The CRI ``envs``: Service variables first, the container's ``env`` over them."""
    env = service_env(*master)
    for e in container.get("env") or []:
        if "value" in e or "valueFrom" not in e:
            env[e["name"]] = str(e.get("value", ""))
            continue
        ref = (e.get("valueFrom") or {}).get("fieldRef")
        if pod is not None and ref and (value := field_ref_value(
                pod, ref.get("fieldPath", ""))) is not None:
            env[e["name"]] = value
    return [{"key": k, "value": v} for k, v in env.items()]
