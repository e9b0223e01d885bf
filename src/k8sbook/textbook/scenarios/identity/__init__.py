"""Chapter 13's scenarios, "Who is calling": the cluster PKI, every catalogued path with the
right identity let in and the wrong one refused (:mod:`.per_path`, with its rows in
:mod:`.api_clients`, :mod:`.node_paths` and :mod:`.server_paths`), TLS bootstrapping, a
service-account token decoded, the escalation attempts refused, and Konnectivity
(:mod:`.credentials`), on the small cluster of :mod:`.common`.

Importing the package registers the scenarios; the chapter uses the names re-exported here
(``from k8sbook.textbook.scenarios import identity``).
"""

from k8sbook.textbook.scenarios.identity.common import (
    CH,
    RBAC,
    TOKEN_REQUEST,
    base_cluster,
    kubelet_api,
    logs_outcome,
    token,
)
from k8sbook.textbook.scenarios.identity.credentials import (
    PKI_EDGES,
    PKI_POSITIONS,
    bootstrap_messages,
    escalations,
    konnectivity,
    pki_figure,
    pki_table,
    tls_bootstrap,
    token_decoded,
)
from k8sbook.textbook.scenarios.identity.per_path import (
    identity_per_path,
    per_path_table,
    verdicts,
)
from k8sbook.textbook.scenarios.identity.rows import CHECKED, KINDS, Row

__all__ = [
    "CH",
    "CHECKED",
    "KINDS",
    "PKI_EDGES",
    "PKI_POSITIONS",
    "RBAC",
    "TOKEN_REQUEST",
    "Row",
    "base_cluster",
    "bootstrap_messages",
    "escalations",
    "identity_per_path",
    "konnectivity",
    "kubelet_api",
    "logs_outcome",
    "per_path_table",
    "pki_figure",
    "pki_table",
    "tls_bootstrap",
    "token",
    "token_decoded",
    "verdicts",
]
