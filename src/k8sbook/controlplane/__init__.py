"""The control plane's clients of kube-apiserver: controllers, the scheduler, the cloud.

Mirrors ``cmd/kube-controller-manager`` with ``pkg/controller/...``, ``pkg/scheduler`` (one
plugin per file under ``scheduler/plugins``), ``k8s.io/cloud-provider`` with
``cmd/cloud-controller-manager``, and ``kubernetes-sigs/descheduler``.
"""
