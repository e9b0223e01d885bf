"""The cloud side of the model, split as Kubernetes splits it.

* :mod:`.provider`: the interface a cloud provider implements (``k8s.io/cloud-provider``,
  ``cloud.go``); cloud-controller-manager's controllers call only it.
* :mod:`.model`: the ``model`` provider, an implementation that calls the cloud's HTTPS API
  through the network fabric.
* :mod:`.api`: the cloud itself (no Kubernetes counterpart): instances, routes and load
  balancers, listening on ``api.cloud.model.example:443``.
"""

from k8sbook.controlplane.cloud.api import CloudAPI
from k8sbook.controlplane.cloud.model import ModelCloud
from k8sbook.controlplane.cloud.provider import (
    CloudError,
    InstanceMetadata,
    InstanceNotFound,
    Interface,
    Route,
    default_load_balancer_name,
)

__all__ = ["CloudAPI", "CloudError", "InstanceMetadata", "InstanceNotFound", "Interface",
           "ModelCloud", "Route", "default_load_balancer_name"]
