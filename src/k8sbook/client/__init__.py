"""The client side: the network every connection crosses, and client-go.

Mirrors ``k8s.io/client-go``: ``rest`` (a component's connection to kube-apiserver),
``tools/cache`` (Reflector, DeltaFIFO, Indexer, SharedIndexInformer), ``util/workqueue``,
``tools/record`` (events) and ``tools/leaderelection``. :mod:`k8sbook.client.network` is the
model's one network fabric: every connection in a run is dialled through it.
"""
