"""containerd's CRI image service: image references, the registry, pulls and image status.

Mirrors containerd's ``internal/cri/server/images`` (``PullImage``, ``ImageStatus``; the
reference normalization of ``github.com/distribution/reference``'s ``ParseNormalizedNamed``).
Simplified: pulls take no virtual time and every image exists unless the registry marks it
missing (:class:`Registry`); pulling a missing one fails with gRPC ``NotFound`` and
containerd's message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.node.cri import RPCError


def normalize_image(image: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as containerd's reference parser."""
    name, tag = image, "latest"
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


@dataclass
class Registry:
    """The image registries the node can reach: every image exists unless marked missing."""

    missing: set[str] = field(default_factory=set)

    def has(self, image: str) -> bool:
        return normalize_image(image) not in {normalize_image(i) for i in self.missing}


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
        if not self.registry.has(image):
            raise RPCError("NotFound", f'failed to pull and unpack image "{ref}": failed '
                                            f'to resolve reference "{ref}": {ref}: not found')
        if ref not in self.images:
            self.images[ref] = "sha256:" + self.new_id()[:64]
        return self.images[ref]

    def image_ref(self, image: str) -> str:
        """The id of a pulled image, or ``""`` (a container status's ``imageRef``)."""
        return self.images.get(normalize_image(image), "")

    def has_image(self, image: str) -> bool:
        return normalize_image(image) in self.images
