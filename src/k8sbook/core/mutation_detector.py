"""Catching a component that changes an object it was handed from a shared cache.

Mirrors client-go's ``tools/cache/mutation_detector.go``: with the environment variable
``KUBE_CACHE_MUTATION_DETECTOR`` set to ``true``, informers keep a copy of every object they
hand out and fail when one has been changed ("cache mutation detected"), because the objects
a shared informer returns are shared and must be copied before they are changed. In the
model the watch cache hands every watcher its own decoded object (:mod:`k8sbook.storage.cacher`),
so the detector sits there: each event's encoding is kept, and :func:`check` encodes the
events again and compares.
"""

from __future__ import annotations

import json
import os
from typing import Any


def enabled_by_environment() -> bool:
    """``KUBE_CACHE_MUTATION_DETECTOR=true``, as client-go reads it."""
    return os.environ.get("KUBE_CACHE_MUTATION_DETECTOR", "") == "true"


#: (the event as sent, its encoding), while detecting
_SENT: list[tuple[Any, str]] | None = [] if enabled_by_environment() else None


def detect(on: bool = True) -> None:
    """Start (afresh) or stop keeping what is sent, for :func:`check`."""
    global _SENT
    _SENT = [] if on else None


def detecting() -> bool:
    """Whether what is sent is being kept (so its encoding is needed)."""
    return _SENT is not None


def sent(payload: Any, text: str) -> None:
    """Note an object handed out, with its encoding (nothing unless detecting)."""
    if _SENT is not None:
        _SENT.append((payload, text))


def check() -> None:
    """Fail (``AssertionError``) if an object handed out since detection started has been
    changed since."""
    for payload, text in _SENT or []:
        now = json.dumps(payload, separators=(",", ":"))
        if now != text:
            raise AssertionError(f"cache mutation detected: sent {text[:300]}, now {now[:300]}")
