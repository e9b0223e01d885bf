"""The ``model`` cloud provider: the :class:`~k8sbook.controlplane.cloud.provider.Interface`
implementation cloud-controller-manager is built with, calling the cloud's HTTPS API.

An out-of-tree provider (``cloud-provider-aws``, ``cloud-provider-gcp`` ...) implements
``k8s.io/cloud-provider``'s interface with its cloud's SDK; this one dials the model's cloud
API (:mod:`k8sbook.controlplane.cloud.api`) at :data:`~k8sbook.controlplane.cloud.api.ENDPOINT_HOST`:443 through the network fabric, so each call is on the trace and network
faults (an isolated cloud-controller-manager, a dropped endpoint) reach it. A call that gets
no answer, or an error, raises :class:`~k8sbook.controlplane.cloud.provider.CloudError`.
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.network import Address, DialError, Network
from k8sbook.controlplane.cloud.api import (
    ENDPOINT_HOST,
    INSTANCE_ROLE,
    PORT,
    PROTOCOL,
    PROVIDER,
)
from k8sbook.controlplane.cloud.provider import (
    CloudError,
    InstanceMetadata,
    InstanceNotFound,
    InstancesV2,
    LoadBalancer,
    Route,
    Routes,
    default_load_balancer_name,
)

Obj = dict[str, Any]


def _result(reply: Obj) -> str:
    return str(reply["code"]) if reply["code"] == 200 else f"{reply['code']} {reply['error']}"


class ModelCloud:
    """The provider: one object that is its InstancesV2, Routes and LoadBalancer."""

    def __init__(self, network: Network, instance: str, endpoint: str = ENDPOINT_HOST, *,
                 credentials: str = INSTANCE_ROLE) -> None:
        self.network = network
        self.instance = instance
        #: the cloud credentials it signs its calls with (default: the machine's role)
        self.credentials = credentials
        self.address = Address.tcp(endpoint, PORT)

    def _call(self, action: str, resource: str, target: str, **params: Any) -> Any:
        """Send ``action`` about ``target`` (what the trace names) with ``params``."""
        try:
            reply: Obj = self.network.dial(
                self.instance, self.address,
                {"action": action, "params": params, "credentials": self.credentials},
                protocol=PROTOCOL, verb=action, resource=resource, name=target,
                result=_result)
        except DialError as err:
            raise CloudError(f"{action}: {err}") from err
        if reply["code"] == 404 and reply.get("error") == "InstanceNotFound":
            raise InstanceNotFound(reply["message"])
        if reply["code"] != 200:
            raise CloudError(f"{action}: {reply['code']} {reply.get('error')}: "
                             f"{reply.get('message')}")
        return reply.get("body")

    # -- Interface -------------------------------------------------------------------------
    def provider_name(self) -> str:
        return PROVIDER

    def instances_v2(self) -> tuple[InstancesV2 | None, bool]:
        return self, True

    def routes(self) -> tuple[Routes | None, bool]:
        return self, True

    def load_balancer(self) -> tuple[LoadBalancer | None, bool]:
        return self, True

    # -- InstancesV2 -----------------------------------------------------------------------
    def _describe(self, node: Obj) -> Obj:
        name = node["metadata"]["name"]
        out: Obj = self._call("InstanceMetadata", "instances", name, name=name)
        return out

    def instance_exists(self, node: Obj) -> bool:
        try:
            self._describe(node)
        except InstanceNotFound:
            return False
        return True

    def instance_shutdown(self, node: Obj) -> bool:
        return bool(self._describe(node)["state"] != "running")

    def instance_metadata(self, node: Obj) -> InstanceMetadata:
        i = self._describe(node)
        return InstanceMetadata(
            i["providerID"], i["instanceType"],
            [{"type": "InternalIP", "address": i["privateIp"]},
             {"type": "ExternalIP", "address": i["publicIp"]},
             {"type": "Hostname", "address": i["hostname"]}],
            i["zone"], i["region"])

    # -- Routes ----------------------------------------------------------------------------
    def list_routes(self, cluster_name: str) -> list[Route]:
        return [Route(r["name"], r["target_node"], r["destination_cidr"])
                for r in self._call("ListRoutes", "routes", cluster_name, cluster=cluster_name)]

    def create_route(self, cluster_name: str, name_hint: str, route: Route) -> None:
        name = f"{cluster_name}-{name_hint}"
        self._call("CreateRoute", "routes", name, name=name, target_node=route.target_node,
                   destination_cidr=route.destination_cidr)

    def delete_route(self, cluster_name: str, route: Route) -> None:
        self._call("DeleteRoute", "routes", route.name, name=route.name)

    # -- LoadBalancer ----------------------------------------------------------------------
    def get_load_balancer_name(self, cluster_name: str, service: Obj) -> str:
        return default_load_balancer_name(service)

    def ensure_load_balancer(self, cluster_name: str, service: Obj,
                             nodes: list[Obj]) -> list[Obj]:
        name = self.get_load_balancer_name(cluster_name, service)
        ports = [{"port": p["port"], "nodePort": p.get("nodePort"),
                  "protocol": p.get("protocol", "TCP")}
                 for p in service["spec"].get("ports", [])]
        lb = self._call("EnsureLoadBalancer", "loadbalancers", name, name=name, ports=ports,
                        nodes=[n["metadata"]["name"] for n in nodes])
        return [{"ip": lb["ip"], "ipMode": "VIP"}]

    def update_load_balancer(self, cluster_name: str, service: Obj, nodes: list[Obj]) -> None:
        self.ensure_load_balancer(cluster_name, service, nodes)

    def ensure_load_balancer_deleted(self, cluster_name: str, service: Obj) -> None:
        name = self.get_load_balancer_name(cluster_name, service)
        self._call("EnsureLoadBalancerDeleted", "loadbalancers", name, name=name)
