"""Where the apiserver keeps objects: etcd, and the apiserver's storage layer over it.

Mirrors etcd v3 (``go.etcd.io/etcd/server/v3/mvcc``, ``lease``) for the embedded store, etcd's
JSON gateway for a real one, ``k8s.io/apiserver/pkg/storage/etcd3`` (objects to keys,
optimistic concurrency, the compactor) and ``k8s.io/apiserver/pkg/storage/cacher`` (the watch
cache).
"""
