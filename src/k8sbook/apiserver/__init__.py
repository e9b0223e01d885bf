"""kube-apiserver: the handler chain, authentication, authorization, admission, the
generic registry, and the extension points (webhooks, the aggregation layer, the kubelet client).

Mirrors ``k8s.io/apiserver`` (``pkg/server``, ``pkg/endpoints``, ``pkg/authentication``,
``pkg/authorization``, ``pkg/admission``, ``pkg/registry/generic``), ``k8s.io/kube-aggregator``
and ``pkg/kubeapiserver`` / ``pkg/registry`` of ``kubernetes/kubernetes``.
"""
