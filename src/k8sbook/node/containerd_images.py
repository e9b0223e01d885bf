"""containerd's CRI image service: image references, the registry, pulls and image status.

Mirrors containerd's ``internal/cri/server/images`` (``PullImage``, ``ImageStatus``; the
reference normalization of ``github.com/distribution/reference``'s ``ParseNormalizedNamed``).
Simplified: pulls take no virtual time. Which images exist is the :class:`Registry`'s
decision: by default every image exists unless marked missing (the chapters' clusters); with a
catalog (:data:`KNOWN_IMAGES`, what ``k8sbook serve`` uses) an image exists only if its
repository is in the catalog and its tag is one the catalog lists for it (a digest reference
needs only a known repository). A missing tag of a known repository fails as containerd reports
a registry's 404 for the manifest, gRPC ``NotFound`` with ``...: not found``; an unknown
repository as Docker Hub answers one, gRPC ``Unknown`` with ``pull access denied, repository
does not exist or may require authorization: server message: insufficient_scope: authorization
failed`` (``remotes/docker``'s resolver). The kubelet turns either into ``ErrImagePull``, then
``ImagePullBackOff``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.node.cri import RPCError


def normalize_image(image: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as containerd's reference parser
    (a digest reference keeps its digest: ``nginx@sha256:...`` ->
    ``docker.io/library/nginx@sha256:...``)."""
    name, tag, digest = image, "latest", ""
    if "@" in name:
        name, digest = name.split("@", 1)
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}@{digest}" if digest else f"{name}:{tag}"


#: the images ``k8sbook serve``'s registry holds: repository -> tags (the images tutorials
#: and the book use, with tags that exist upstream)
KNOWN_IMAGES: dict[str, tuple[str, ...]] = {
    "docker.io/library/nginx": ("latest", "stable", "alpine", "1.25", "1.26", "1.27", "1.27.5",
                                "1.28", "1.29", "mainline", "stable-alpine"),
    "docker.io/library/busybox": ("latest", "stable", "musl", "glibc", "1.36", "1.36.1",
                                  "1.37", "1.37.0"),
    "docker.io/library/alpine": ("latest", "3", "3.20", "3.21", "3.22"),
    "docker.io/library/ubuntu": ("latest", "22.04", "24.04", "noble", "jammy"),
    "docker.io/library/debian": ("latest", "bookworm", "bookworm-slim", "12", "trixie"),
    "docker.io/library/httpd": ("latest", "2.4", "alpine"),
    "docker.io/library/redis": ("latest", "7", "7.4", "8", "alpine"),
    "docker.io/library/python": ("latest", "3.11", "3.12", "3.13", "3.12-slim", "3.13-slim"),
    "docker.io/library/postgres": ("latest", "16", "17"),
    "registry.k8s.io/pause": ("3.9", "3.10"),
    "registry.k8s.io/coredns/coredns": ("v1.11.3", "v1.12.0", "v1.12.1", "v1.13.1"),
    "registry.k8s.io/kubectl": ("v1.32.0", "v1.35.0"),
    "registry.k8s.io/metrics-server/metrics-server": ("v0.7.2", "v0.8.0"),
    "registry.k8s.io/e2e-test-images/agnhost": ("2.52", "2.53"),
    "registry.k8s.io/ingress-nginx/controller": ("v1.12.1", "v1.13.0"),
    "registry.k8s.io/kube-proxy": ("v1.35.0",),
    "quay.io/prometheus/prometheus": ("latest",),
}


def _split(ref: str) -> tuple[str, str]:
    """(repository, tag or digest) of a normalized reference."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, "@" + digest
    repo, tag = ref.rsplit(":", 1)
    return repo, tag


@dataclass
class Registry:
    """The image registries the node can reach: every image exists unless marked missing, or,
    with a ``catalog``, only the catalog's repositories and tags."""

    missing: set[str] = field(default_factory=set)
    catalog: dict[str, tuple[str, ...]] | None = None

    def has(self, image: str) -> bool:
        return self.error(image) is None

    def error(self, image: str) -> RPCError | None:
        """Why pulling ``image`` fails (containerd's error), or None if it exists."""
        ref = normalize_image(image)
        if ref in {normalize_image(i) for i in self.missing}:
            return RPCError("NotFound", f'failed to pull and unpack image "{ref}": failed to '
                                        f'resolve reference "{ref}": {ref}: not found')
        if self.catalog is None:
            return None
        repo, tag = _split(ref)
        if repo not in self.catalog:
            return RPCError("Unknown", f'failed to pull and unpack image "{ref}": failed to '
                                       f'resolve reference "{ref}": pull access denied, '
                                       "repository does not exist or may require "
                                       "authorization: server message: insufficient_scope: "
                                       "authorization failed")
        if not tag.startswith("@") and tag not in self.catalog[repo]:
            return RPCError("NotFound", f'failed to pull and unpack image "{ref}": failed to '
                                        f'resolve reference "{ref}": {ref}: not found')
        return None


class ImageService:
    """The images one containerd has pulled (normalized reference -> image id)."""

    def __init__(self, registry: Registry, new_id: Callable[[], str]) -> None:
        self.registry = registry
        self.new_id = new_id
        self.images: dict[str, str] = {}

    def image_status(self, image: str) -> dict[str, Any] | None:
        ref = normalize_image(image)
        if ref not in self.images:
            return None
        return {"id": self.images[ref], "repoTags": [ref]}

    def pull_image(self, image: str) -> str:
        ref = normalize_image(image)
        err = self.registry.error(image)
        if err is not None:
            raise err
        if ref not in self.images:
            self.images[ref] = "sha256:" + self.new_id()[:64]
        return self.images[ref]

    def image_ref(self, image: str) -> str:
        """The id of a pulled image, or ``""`` (a container status's ``imageRef``)."""
        return self.images.get(normalize_image(image), "")

    def has_image(self, image: str) -> bool:
        return normalize_image(image) in self.images
