"""What a cloud provider implements for Kubernetes: the interface, and nothing of a cloud.

Mirrors ``k8s.io/cloud-provider`` (``cloud.go``): ``Interface`` hands out the parts a
provider supports, each with an ``ok`` flag: ``InstancesV2`` (``InstanceExists``,
``InstanceShutdown``, ``InstanceMetadata``: provider ID, instance type, addresses, zone and
region), ``Routes`` (``ListRoutes``, ``CreateRoute``, ``DeleteRoute``) and ``LoadBalancer``
(``GetLoadBalancer``, ``GetLoadBalancerName``, ``EnsureLoadBalancer``,
``UpdateLoadBalancer``, ``EnsureLoadBalancerDeleted``). cloud-controller-manager's
controllers call only these; how a provider reaches its cloud (an HTTPS API, here
:mod:`k8sbook.controlplane.cloud.model`) is its own business.

Simplified: no ``Instances`` (v1), ``Zones`` or ``Clusters``, no ``Initialize`` with a client
builder, and no context arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Obj = dict[str, Any]


class CloudError(Exception):
    """A call to the cloud failed (the provider's API refused, or could not be reached)."""


class InstanceNotFound(CloudError):
    """``cloudprovider.InstanceNotFound``."""


@dataclass(frozen=True)
class Route:
    """``cloudprovider.Route``."""

    name: str
    target_node: str
    destination_cidr: str


@dataclass(frozen=True)
class InstanceMetadata:
    """``cloudprovider.InstanceMetadata``."""

    provider_id: str
    instance_type: str
    node_addresses: list[Obj] = field(default_factory=list)
    zone: str = ""
    region: str = ""


def default_load_balancer_name(service: Obj) -> str:
    """``cloudprovider.DefaultLoadBalancerName``: "a" + the UID without dashes, 32 chars."""
    return ("a" + service["metadata"]["uid"].replace("-", ""))[:32]


class InstancesV2(Protocol):
    def instance_exists(self, node: Obj) -> bool: ...
    def instance_shutdown(self, node: Obj) -> bool: ...
    def instance_metadata(self, node: Obj) -> InstanceMetadata: ...


class Routes(Protocol):
    def list_routes(self, cluster_name: str) -> list[Route]: ...
    def create_route(self, cluster_name: str, name_hint: str, route: Route) -> None: ...
    def delete_route(self, cluster_name: str, route: Route) -> None: ...


class LoadBalancer(Protocol):
    def get_load_balancer_name(self, cluster_name: str, service: Obj) -> str: ...
    def ensure_load_balancer(self, cluster_name: str, service: Obj,
                             nodes: list[Obj]) -> list[Obj]: ...
    def update_load_balancer(self, cluster_name: str, service: Obj,
                             nodes: list[Obj]) -> None: ...
    def ensure_load_balancer_deleted(self, cluster_name: str, service: Obj) -> None: ...


class Interface(Protocol):
    """``cloudprovider.Interface``: each accessor returns the part and whether it exists."""

    def provider_name(self) -> str: ...
    def instances_v2(self) -> tuple[InstancesV2 | None, bool]: ...
    def routes(self) -> tuple[Routes | None, bool]: ...
    def load_balancer(self) -> tuple[LoadBalancer | None, bool]: ...
