"""The OCI runtime: ``runc``, the binary containerd's shim executes for every container.

Mirrors ``opencontainers/runc`` as ``containerd-shim-runc-v2`` drives it: ``runc create``
sets up a container from a *bundle* (its root filesystem and mounts, its process: argv,
environment, hostname), ``runc start`` runs the process, ``runc kill`` signals it,
``runc delete`` removes it, and ``runc exec`` starts another process in the same container:
what ``kubectl exec`` ends in. The binary is "installed" on the node: it listens on
``Address.exec(node, "/usr/bin/runc")``, and the runtime dials it once per invocation (path
``container-runtime->oci-runtime``).

An ``exec``'d process runs the model's tiny shell (:mod:`k8sbook.node.shell`) against the
bundle's view of the files and the environment, so its output and exit code are what the
container really holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.client.network import Address, Network
from k8sbook.node import shell

RUNC_PATH = "/usr/bin/runc"
OCI_PROTOCOL = "exec runc (containerd-shim-runc-v2)"


@dataclass(frozen=True)
class OCIRequest:
    """One invocation: ``runc <verb> <id>`` (with the bundle for ``create``, the process for
    ``exec``, the signal for ``kill``)."""

    verb: str
    id: str
    bundle: shell.Process | None = None
    argv: tuple[str, ...] = ()
    signal: str = ""
    #: what the exec'd process reads on standard input (``runc exec`` keeps it open)
    stdin: str = ""
    #: ``runc exec`` of a shell whose standard input stays open: the live process
    #: (:class:`~k8sbook.node.shell.Interactive`) is returned, fed as input arrives; with a
    #: terminal (``runc exec --tty``) this gives its window size
    interactive: bool = False
    winsize: Callable[[], tuple[int, int]] | None = None


def oci_result(reply: Any) -> str:
    if isinstance(reply, shell.Result):
        return f"exit {reply.exit_code}"
    if isinstance(reply, shell.Interactive):
        return "running"
    return str(reply)


def exec_runc(network: Network, src: str, node: str, verb: str, cid: str, *,
              bundle: shell.Process | None = None, argv: list[str] | None = None,
              signal: str = "", stdin: str = "", interactive: bool = False,
              winsize: Callable[[], tuple[int, int]] | None = None) -> Any:
    """What ``containerd-shim-runc-v2`` does to run ``runc <verb> <id>`` on ``node``."""
    return network.dial(src, Address.exec(node, RUNC_PATH),
                        OCIRequest(verb, cid, bundle, tuple(argv or ()), signal, stdin,
                                   interactive, winsize),
                        protocol=OCI_PROTOCOL, verb=verb, resource=cid[:13], result=oci_result)


@dataclass
class Runc:
    """``/usr/bin/runc`` on one node: the containers it created, by id."""

    node: str
    network: Network
    bundles: dict[str, shell.Process] = field(default_factory=dict)

    @property
    def instance(self) -> str:
        return f"oci-runtime/{self.node}"

    @property
    def address(self) -> Address:
        return Address.exec(self.node, RUNC_PATH)

    def install(self) -> Runc:
        self.network.listen(self.address, self.instance, self.handle, protocol=OCI_PROTOCOL)
        return self

    def handle(self, req: OCIRequest) -> Any:
        if req.verb == "create":
            assert req.bundle is not None
            self.bundles[req.id] = req.bundle
            return "ok"
        if req.verb == "delete":
            self.bundles.pop(req.id, None)
            return "ok"
        if req.verb == "kill":
            return req.signal or "ok"
        if req.verb == "exec":
            bundle = self.bundles.get(req.id)
            if bundle is None:
                return shell.Result(1, f'container "{req.id}" does not exist\n')
            if req.interactive:
                return shell.Interactive(dataclasses.replace(bundle, winsize=req.winsize),
                                         interactive=req.winsize is not None)
            return shell.run(list(req.argv), bundle, req.stdin)
        return "ok"  # start
