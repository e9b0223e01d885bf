"""The API's types and rules, shared by servers and clients.

Mirrors ``k8s.io/api`` and ``k8s.io/apimachinery``: the resource table (group, version, kind,
plural), object builders, label and field selectors, validation, and the three patch formats.
Depends only on :mod:`k8sbook.core`.
"""
