"""Links into the Kubernetes repositories point at the release the book describes, not master.

Files on ``master`` move and change under the link; a tag does not. The book pins
kubernetes/kubernetes at v1.35.0 and its staging repositories (client-go, cloud-provider) at
the matching v0.35.0. (Design documents in kubernetes/enhancements and kubernetes/community have
no release tags, so they stay on master.)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(
    r"https://github\.com/kubernetes/(kubernetes|client-go|cloud-provider)/(blob|tree)/([^/]+)/")
TAGS = {"kubernetes": "v1.35.0", "client-go": "v0.35.0", "cloud-provider": "v0.35.0"}


def _texts():
    for pattern in ("notebooks/*.ipynb", "book/*.md", "src/k8sbook/**/*.py",
                    "src/k8sbook/**/*.toml", "DEVELOPING.md"):
        for path in sorted(ROOT.glob(pattern)):
            yield path, path.read_text(encoding="utf-8")


def test_kubernetes_source_links_point_at_the_release_tag():
    wrong = sorted({f"{path.relative_to(ROOT)}: {m.group(0)}" for path, text in _texts()
                    for m in PINNED.finditer(text) if m.group(3) != TAGS[m.group(1)]})
    assert not wrong, "links not pinned to the book's release:\n" + "\n".join(wrong[:20])
