"""The load balancer in front of several kube-apiservers: the address every client dials.

Mirrors HAProxy in TCP mode as kubeadm's guide to highly available control planes configures
it (https://github.com/kubernetes/kubeadm/blob/main/docs/ha-considerations.md: ``mode tcp``,
``option tcp-check``, ``balance roundrobin``, ``default-server inter 10s downinter 5s rise 2
fall 2``): a TCP connection to the frontend is passed to the next backend marked up, in turn;
every ``inter`` (10 s) HAProxy checks each backend with a TCP connect, marks it down after
``fall`` (2) failed checks in a row and up again after ``rise`` (2) good ones. Until a dead
backend is marked down, new connections may still be sent to it and are refused, so clients
retry. A client keeps using the connection it has (client-go holds one HTTP/2 connection to
the apiserver), so its requests go to the same backend until that connection breaks.

In the fabric it is a virtual IP (:meth:`k8sbook.client.network.Network.set_vip`): the dial
is recorded once, from the client to the apiserver that answers it (a TCP balancer is not a
party to the conversation); :attr:`LoadBalancer.connections` says who is sent where. Simplified: the health checks are not on the trace,
``downinter`` is not modelled (a down backend is checked every ``inter`` too), and no
keepalived: the balancer itself never fails.
"""

from __future__ import annotations

from k8sbook.client.address import Address, Translation, refused
from k8sbook.client.network import Network
from k8sbook.core.clock import Clock

INTER = 10.0
RISE = 2
FALL = 2


class LoadBalancer:
    """HAProxy on ``address`` for ``backends`` (kube-apiservers' ``<ip>:6443``)."""

    def __init__(self, network: Network, clock: Clock, address: Address,
                 backends: list[Address], *, inter: float = INTER, rise: int = RISE,
                 fall: int = FALL) -> None:
        self.network, self.clock, self.address = network, clock, address
        self.backends = list(backends)
        self.inter, self.rise, self.fall = inter, rise, fall
        #: which backends are marked up
        self.up = {b: True for b in self.backends}
        self._streak = {b: 0 for b in self.backends}
        self._conn: dict[str, Address] = {}
        self._next = 0
        #: (time, client, backend) of every new connection passed on
        self.connections: list[tuple[float, str, Address]] = []
        #: (time, backend, "UP" or "DOWN") each time a check changed a backend's state
        self.transitions: list[tuple[float, Address, str]] = []
        network.set_vip(address, self.pick)
        clock.call_later(inter, self._check, label="haproxy health check")

    def pick(self, src: str) -> Translation:
        """Where ``src``'s connection goes: the one it has, or the next backend up."""
        have = self._conn.get(src)
        if have is not None and self.network.listener(have) is not None:
            return Translation(have)
        candidates = [b for b in self.backends if self.up[b]]
        if not candidates:  # no server available: HAProxy closes the connection
            raise refused(self.address)
        backend = candidates[self._next % len(candidates)]
        self._next += 1
        self._conn[src] = backend
        self.connections.append((self.clock.now(), src, backend))
        return Translation(backend)

    def _healthy(self, backend: Address) -> bool:
        return self.network.listener(backend) is not None and not self.network.is_down(backend)

    def _check(self) -> None:
        for b in self.backends:
            ok = self._healthy(b)
            if ok == self.up[b]:
                self._streak[b] = 0
                continue
            self._streak[b] += 1
            if self._streak[b] >= (self.rise if ok else self.fall):
                self.up[b], self._streak[b] = ok, 0
                self.transitions.append((self.clock.now(), b, "UP" if ok else "DOWN"))
        self.clock.call_later(self.inter, self._check, label="haproxy health check")
