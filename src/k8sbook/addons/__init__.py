"""Cluster add-ons that run as pods: cluster DNS, an ingress controller, metrics-server.

Mirror CoreDNS's ``kubernetes`` plugin, ingress-nginx's routing and proxying, and
``kubernetes-sigs/metrics-server``.
"""
