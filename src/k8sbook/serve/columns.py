"""The cells and columns the server-side printers share (``pkg/printers/internalversion``).

Mirrors the helpers of ``printers.go`` (v1.35): the column definitions every kind repeats
(``Name``, ``Age``), ``translateTimestampSince`` (AGE from the server's clock, rendered by
``duration.HumanDuration``), ``<none>`` for an empty cell, a label selector's string form and a
pod template's containers and images.
"""

from __future__ import annotations

from typing import Any

from k8sbook.core.clock import Clock

Obj = dict[str, Any]


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def col(name: str, kind: str = "string", priority: int = 0, fmt: str = "",
         description: str = "") -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": description,
            "priority": priority}


NAME = col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = col("Age", description="CreationTimestamp is a timestamp representing the server time "
           "when this object was created.")


def none(value: Any) -> str:
    return str(value) if value not in (None, "") else "<none>"


def age(obj: Obj, clock: Clock) -> str:
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    return human_duration(clock.now() - Clock.parse(stamp))


def label_selector(sel: Obj | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        vals = ",".join(e.get("values") or [])
        op = e.get("operator")
        if op == "Exists":
            parts.append(e["key"])
        elif op == "DoesNotExist":
            parts.append(f"!{e['key']}")
        else:
            parts.append(f"{e['key']} {op.lower()} ({vals})")
    return ",".join(parts) or "<none>"


def containers_and_images(obj: Obj) -> tuple[str, str]:
    cs = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)
