"""The model's foundations: virtual time, seeded ids, the trace, and ``Status`` errors.

Mirrors ``k8s.io/utils/clock`` (the fake clock), ``k8s.io/apiserver/pkg/storage/names`` (generated
names), and ``k8s.io/apimachinery/pkg/api/errors`` (``StatusError`` and its constructors). The
trace has no single upstream counterpart (see :mod:`k8sbook.core.trace`). Nothing here imports
any other part of the package.
"""
