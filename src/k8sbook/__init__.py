"""k8sbook: a small, faithful, deterministic model of how Kubernetes components talk.

Start with :class:`k8sbook.cluster.Cluster`. Modules are named after the Kubernetes concept
they model and say in their docstring which real package they mirror.
"""

from k8sbook.cluster import Cluster

__all__ = ["Cluster", "__version__"]
__version__ = "0.1.0"
