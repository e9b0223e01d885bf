"""The cloud itself, as the model runs it: instances, routes and load balancers behind an
HTTPS API that listens on the network.

No Kubernetes package mirrors this side: it stands for a provider's public API (an EC2, a
Compute Engine). :func:`serve` registers the endpoint's host name with the network's DNS
(:data:`ENDPOINT_HOST` -> :data:`ENDPOINT_IP`) and listens on port 443 as ``cloud-api``, so
the trace shows every call on the path ``cloud-controller-manager->cloud-api``; nothing in
the cluster but cloud-controller-manager dials it, and kube-apiserver never does.

Requests are ``{"action": ..., "params": {...}, "credentials": <access key id>}``; answers
``{"code": 200, "body": ...}`` or ``{"code": 404, "error": "InstanceNotFound", "message": ...}``.

Every call is authenticated and authorized by the cloud, not by Kubernetes: the credentials
name a principal the cloud knows (:attr:`CloudAPI.principals`: access key id -> the actions
its policy allows, ``*`` for all), as a provider's IAM does. By default the only principal is
:data:`INSTANCE_ROLE`, the role attached to the control-plane machine that
cloud-controller-manager runs on (what an instance profile or a workload identity gives it).
Unknown or missing credentials get ``401 AuthFailure``, an action the policy does not allow
``403 UnauthorizedOperation``, worded after EC2's error codes
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html); nothing changes
in the cloud. Provider IDs look like
``model://<zone>/<instance-id>``; load balancers get addresses from 203.0.113.0/24
(TEST-NET-3), instances public ones from 198.51.100.0/24 (TEST-NET-2), and the endpoint
192.0.2.10 (TEST-NET-1): all reserved for documentation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.client.network import Address, Network

PROVIDER = "model"
PROTOCOL = "HTTPS (cloud provider API)"
#: The host name of the cloud's API endpoint, resolved by the network fabric.
ENDPOINT_HOST = "api.cloud.model.example"
ENDPOINT_IP = "192.0.2.10"
PORT = 443
OWNER = "cloud-api"
#: the access key of the control-plane machine's role, allowed every action
INSTANCE_ROLE = "role/control-plane"
LB_RANGE = "203.0.113.0/24"
EXTERNAL_RANGE = "198.51.100.0/24"

Obj = dict[str, Any]


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
class CloudRoute:
    name: str
    target_node: str
    destination_cidr: str


@dataclass
class CloudLoadBalancer:
    name: str
    ip: str
    ports: list[Obj]
    backends: list[str] = field(default_factory=list)  # node names


class NotFound(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


class CloudAPI:
    """The provider's side: its state, and the calls it serves over the network."""

    def __init__(self, region: str = "region-1") -> None:
        self.region = region
        self.instances: dict[str, Instance] = {}
        self.routes: dict[str, CloudRoute] = {}
        self.load_balancers: dict[str, CloudLoadBalancer] = {}
        self._lb_ips = (str(ip) for ip in ipaddress.ip_network(LB_RANGE).hosts())
        self._ext_ips = (str(ip) for ip in ipaddress.ip_network(EXTERNAL_RANGE).hosts())
        self.address = Address.tcp(ENDPOINT_IP, PORT)
        #: access key id -> the actions its policy allows (``*``: every action)
        self.principals: dict[str, frozenset[str]] = {INSTANCE_ROLE: frozenset({"*"})}

    # -- the operator's console (not an API call of the cluster) --------------------------
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

    def serve(self, network: Network) -> None:
        """Put the API on the network: DNS for the endpoint, a listener on 443."""
        network.add_host(ENDPOINT_HOST, ENDPOINT_IP)
        network.listen(self.address, OWNER, self.handle, protocol=PROTOCOL)

    # -- the API ---------------------------------------------------------------------------
    def handle(self, request: Obj) -> Obj:
        actions: dict[str, Callable[[Obj], Any]] = {
            "InstanceMetadata": self._describe_instance, "ListRoutes": self._list_routes,
            "CreateRoute": self._create_route, "DeleteRoute": self._delete_route,
            "EnsureLoadBalancer": self._ensure_lb, "EnsureLoadBalancerDeleted": self._delete_lb,
        }
        allowed = self.principals.get(str(request.get("credentials") or ""))
        if allowed is None:
            return {"code": 401, "error": "AuthFailure",
                    "message": "The provided credentials could not be validated."}
        action = actions.get(request.get("action", ""))
        if action is not None and "*" not in allowed and request["action"] not in allowed:
            return {"code": 403, "error": "UnauthorizedOperation",
                    "message": "You are not authorized to perform this operation. "
                               f"(action {request['action']})"}
        if action is None:
            return {"code": 400, "error": "InvalidAction",
                    "message": f"unknown action {request.get('action')!r}"}
        try:
            return {"code": 200, "body": action(request.get("params") or {})}
        except NotFound as err:
            return {"code": 404, "error": err.error, "message": str(err)}

    def _describe_instance(self, p: Obj) -> Obj:
        i = self.instances.get(p["name"])
        if i is None:
            raise NotFound("InstanceNotFound", f"instance not found: {p['name']}")
        return {"id": i.id, "providerID": i.provider_id, "instanceType": i.instance_type,
                "privateIp": i.internal_ip, "publicIp": i.external_ip, "hostname": i.name,
                "zone": i.zone, "region": i.region, "state": i.state}

    def _list_routes(self, p: Obj) -> list[Obj]:
        prefix = f"{p['cluster']}-"
        return [vars(self.routes[k]).copy() for k in sorted(self.routes)
                if k.startswith(prefix)]

    def _create_route(self, p: Obj) -> Obj:
        route = CloudRoute(p["name"], p["target_node"], p["destination_cidr"])
        self.routes[route.name] = route
        return vars(route).copy()

    def _delete_route(self, p: Obj) -> None:
        self.routes.pop(p["name"], None)

    def _ensure_lb(self, p: Obj) -> Obj:
        lb = self.load_balancers.get(p["name"])
        if lb is None:
            lb = CloudLoadBalancer(p["name"], next(self._lb_ips), p["ports"])
            self.load_balancers[lb.name] = lb
        lb.ports, lb.backends = p["ports"], sorted(p["nodes"])
        return {"name": lb.name, "ip": lb.ip}

    def _delete_lb(self, p: Obj) -> None:
        self.load_balancers.pop(p["name"], None)
