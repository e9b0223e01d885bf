"""containerd's image service and the registry's catalog (node/containerd_images.py)."""

import pytest

from k8sbook.node.containerd_images import KNOWN_IMAGES, ImageService, Registry
from k8sbook.node.cri import RPCError


def test_every_image_exists_without_a_catalog_unless_marked_missing():
    registry = Registry(missing={"nginx:gone"})
    assert registry.has("anything/at:all") and not registry.has("docker.io/library/nginx:gone")


def test_the_catalog_decides_which_images_exist():
    registry = Registry(catalog=KNOWN_IMAGES)
    assert registry.has("nginx") and registry.has("nginx:1.27") and registry.has("busybox")
    assert registry.has("nginx@sha256:" + "0" * 64)  # a digest of a known repository
    images = ImageService(registry, lambda: "f" * 64)
    with pytest.raises(RPCError) as tag:
        images.pull_image("nginx:nope")
    ref = "docker.io/library/nginx:nope"
    want = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
            f'failed to resolve reference "{ref}": {ref}: not found')
    assert (tag.value.code, str(tag.value)) == ("NotFound", want)
    with pytest.raises(RPCError) as repo:
        images.pull_image("ngnix")
    denied = ("pull access denied, repository does not exist or may require authorization: "
              "server message: insufficient_scope")
    assert repo.value.code == "Unknown" and denied in str(repo.value)
