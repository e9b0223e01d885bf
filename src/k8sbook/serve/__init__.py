"""``k8sbook serve``: the model's kube-apiserver over real HTTPS for kubectl and client libraries.

Mirrors ``k8s.io/apiserver/pkg/endpoints`` (REST mapping, discovery, watch streams),
``pkg/printers`` (server-side tables) and kubeadm's certificates (``cmd/kubeadm/app/phases/certs``).
"""
