"""The model runs without matplotlib, cryptography, PyJWT and PyYAML until it uses them.

The browser edition bundles only pure-Python wheels; matplotlib, cryptography and PyYAML are
compiled, so it fetches them from Pyodide's package index online (scripts/browser_edition.py,
``FETCHED``). Offline, a chapter must still run every cell that draws, signs, checks and prints
none of those, so the model imports them where it uses them. This runs CPython with the four
made unimportable (a meta path finder, as Pyodide without them answers:
``ModuleNotFoundError``).
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCK = textwrap.dedent("""
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in BLOCKED:
                raise ModuleNotFoundError(f"No module named {top!r}", name=top)
            return None

    sys.meta_path.insert(0, Block())
""")
ALL = ("cryptography", "jwt", "yaml", "matplotlib")


def _run(code: str, blocked: tuple[str, ...] = ALL) -> str:
    program = f"BLOCKED = {blocked!r}\n" + BLOCK + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", program],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run_here(code: str) -> str:
    """What ``code`` prints run in this process, where everything is importable: the
    reference a blocked run is compared with (a second interpreter would only repeat the
    imports)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(textwrap.dedent(code), "<reference run>", "exec"), {})  # noqa: S102
    return out.getvalue()


def test_every_module_but_the_servers_imports_without_them():
    out = _run("""
        import importlib, pkgutil
        import k8sbook
        failed = []
        for m in pkgutil.walk_packages(k8sbook.__path__, "k8sbook."):
            if m.name.startswith("k8sbook.serve."):  # k8sbook serve: sockets, not in a browser
                continue
            try:
                importlib.import_module(m.name)
            except ModuleNotFoundError as err:
                failed.append(f"{m.name}: {err}")
        print(failed)
    """)
    assert out.strip() == "[]", out


def test_a_cluster_without_service_accounts_runs_and_a_token_says_what_it_needs():
    out = _run("""
        from k8sbook.textbook import scenarios
        print(scenarios.run("hub-write-and-watch").facts["etcd_clients"])
        from k8sbook.core.keys import rsa_key
        try:
            rsa_key("sa")
        except ModuleNotFoundError as err:
            print(err)
    """)
    assert out.splitlines() == ["['kube-apiserver']", "No module named 'cryptography'"], out


def test_field_sets_do_not_depend_on_kubernetes_validate():
    """kubernetes-validate is a test and serve extra: without it, the package's copy of its
    schemas gives the same managedFields, hence the same bytes in etcd (chapter 15)."""
    code = """
        from k8sbook.textbook.scenarios import scale
        run = scale.heartbeats(3, 10, report_frequency=300.0)
        print(run["etcd_lease_bytes_per_write"], run["etcd_node_bytes_per_write"])
    """
    hidden = "import importlib.util\nimportlib.util.find_spec = lambda name, *a: None\n"
    assert _run(hidden + textwrap.dedent(code)) == _run_here(code)


def test_service_account_tokens_without_cryptography_are_the_same_tokens():
    """PyJWT is bundled; without cryptography it gets the model's pure-Python RS256
    (k8sbook.core.rs256) over the same key numbers: every controller's client still
    authenticates, and the tokens are the same bytes."""
    code = """
        from k8sbook.cluster import Cluster
        c = Cluster(seed=7)
        client = c.service_account_client("kube-controller-manager", "kube-system", "x")
        print(client.credentials.token)
        try:
            client.list("pods", "default")
        except Exception as err:  # authenticated as x, who may not list pods: 403, not 401
            print(err)
        print(c.apiserver.tokens.claims(client.credentials.token)["sub"])
    """
    out = _run(code, blocked=("cryptography",))
    assert out == _run_here(code), out
    forbidden = ('pods is forbidden: User "system:serviceaccount:kube-system:x" cannot list '
                 'resource "pods" in API group "" in the namespace "default"')
    assert out.splitlines()[1:] == [forbidden, "system:serviceaccount:kube-system:x"]
