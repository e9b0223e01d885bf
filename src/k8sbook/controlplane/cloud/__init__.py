"""A small cloud, inside the model: instances, routes and load balancers behind an API.

No Kubernetes package mirrors the cloud itself; what is mirrored is the *interface* a cloud
provider implements for Kubernetes, ``k8s.io/cloud-provider`` (``cloud.go``):
``InstancesV2`` (``InstanceExists``, ``InstanceShutdown``, ``InstanceMetadata``: provider ID,
instance type, addresses, zone and region), ``Routes`` (``ListRoutes``, ``CreateRoute``,
``DeleteRoute``) and ``LoadBalancer`` (``GetLoadBalancer``, ``EnsureLoadBalancer``,
``UpdateLoadBalancer``, ``EnsureLoadBalancerDeleted``). Every call goes over the path
``cloud-controller-manager->cloud-api`` and is recorded on the trace: only the
cloud-controller-manager calls the cloud; kube-apiserver never does.

The provider is called ``model``: provider IDs look like ``model://<zone>/<instance-id>``,
load balancers get addresses from 203.0.113.0/24 (TEST-NET-3, reserved for documentation).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace

PROVIDER = "model"
PROTOCOL = "HTTPS (cloud provider API)"
LB_RANGE = "203.0.113.0/24"
EXTERNAL_RANGE = "198.51.100.0/24"  # TEST-NET-2: the instances' public addresses


class CloudError(Exception):
    pass


class InstanceNotFound(CloudError):
    """``cloudprovider.InstanceNotFound``."""


@dataclass
class Instance:
    id: str
    name: str
    zone: str
    region: str
    instance_type: str
    internal_ip: str
    external_ip: str
    state: str = "running"

    @property
    def provider_id(self) -> str:
        return f"{PROVIDER}://{self.zone}/{self.id}"


@dataclass
class Route:
    name: str
    target_node: str
    destination_cidr: str


@dataclass
class LoadBalancer:
    name: str
    ip: str
    ports: list[dict[str, Any]]
    backends: list[str] = field(default_factory=list)  # node names


class CloudAPI:
    """The provider's side: state, and the calls it serves."""

    def __init__(self, region: str = "region-1") -> None:
        self.region = region
        self.instances: dict[str, Instance] = {}
        self.routes: dict[str, Route] = {}
        self.load_balancers: dict[str, LoadBalancer] = {}
        self._lb_ips = (str(ip) for ip in ipaddress.ip_network(LB_RANGE).hosts())
        self._ext_ips = (str(ip) for ip in ipaddress.ip_network(EXTERNAL_RANGE).hosts())

    def launch(self, name: str, internal_ip: str, zone: str = "zone-a",
               instance_type: str = "standard-4") -> Instance:
        """What the cluster's operator does before the node exists: start a machine."""
        iid = f"i-{len(self.instances) + 1:08x}"
        inst = Instance(iid, name, zone, self.region, instance_type, internal_ip,
                        next(self._ext_ips))
        self.instances[name] = inst
        return inst

    def terminate(self, name: str) -> None:
        self.instances.pop(name, None)

    def instance(self, name: str) -> Instance:
        inst = self.instances.get(name)
        if inst is None:
            raise InstanceNotFound(f"instance not found: {name}")
        return inst

    def ensure_load_balancer(self, name: str, ports: list[dict[str, Any]],
                             nodes: list[str]) -> LoadBalancer:
        lb = self.load_balancers.get(name)
        if lb is None:
            lb = LoadBalancer(name, next(self._lb_ips), ports)
            self.load_balancers[name] = lb
        lb.ports, lb.backends = ports, sorted(nodes)
        return lb

    def delete_load_balancer(self, name: str) -> None:
        self.load_balancers.pop(name, None)


class CloudClient:
    """The cloud-controller-manager's connection to the provider API: every call traced."""

    def __init__(self, api: CloudAPI, instance: str, clock: Clock, trace: Trace) -> None:
        self.api, self.instance, self.clock, self.trace = api, instance, clock, trace
        self.path = "cloud-controller-manager->cloud-api"

    def _call(self, verb: str, what: str, name: str, fn: Any) -> Any:
        msg = self.trace.record(self.clock.now(), self.instance, "cloud-api", self.path,
                                PROTOCOL, verb, what, name, "")
        try:
            out = fn()
        except CloudError as err:
            self.trace.complete(msg, f"404 {type(err).__name__}")
            raise
        self.trace.complete(msg, "200")
        return out

    # InstancesV2
    def instance_exists(self, node: str) -> bool:
        return self._call("InstanceExists", "instances", node,
                          lambda: node in self.api.instances)

    def instance_metadata(self, node: str) -> dict[str, Any]:
        def meta() -> dict[str, Any]:
            i = self.api.instance(node)
            return {"providerID": i.provider_id, "instanceType": i.instance_type,
                    "nodeAddresses": [{"type": "InternalIP", "address": i.internal_ip},
                                      {"type": "ExternalIP", "address": i.external_ip},
                                      {"type": "Hostname", "address": i.name}],
                    "zone": i.zone, "region": i.region}
        return self._call("InstanceMetadata", "instances", node, meta)

    # Routes
    def list_routes(self, cluster: str) -> list[Route]:
        return self._call("ListRoutes", "routes", cluster,
                          lambda: [self.api.routes[k] for k in sorted(self.api.routes)])

    def create_route(self, cluster: str, route: Route) -> None:
        def create() -> None:
            self.api.routes[route.name] = route
        self._call("CreateRoute", "routes", route.name, create)

    def delete_route(self, cluster: str, name: str) -> None:
        self._call("DeleteRoute", "routes", name, lambda: self.api.routes.pop(name, None))

    # LoadBalancer
    def ensure_load_balancer(self, name: str, ports: list[dict[str, Any]],
                             nodes: list[str]) -> LoadBalancer:
        return self._call("EnsureLoadBalancer", "loadbalancers", name,
                          lambda: self.api.ensure_load_balancer(name, ports, nodes))

    def ensure_load_balancer_deleted(self, name: str) -> None:
        self._call("EnsureLoadBalancerDeleted", "loadbalancers", name,
                   lambda: self.api.delete_load_balancer(name))
