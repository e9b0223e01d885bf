"""Components report what happened to an object by writing ``Event`` objects.

Mirrors ``k8s.io/client-go/tools/record`` (``EventRecorder``, ``EventBroadcaster`` and the
``EventCorrelator``'s de-duplication): an Event names the object it is about
(``involvedObject``), a ``type`` (Normal or Warning), a CamelCase ``reason``, a message, and
the component that saw it (``source``). Its name is the object's name, a dot, and the time in
hexadecimal nanoseconds. The same event seen again is not written twice: the recorder patches
the existing one, raising ``count`` and ``lastTimestamp``. The apiserver stores Events with a
one-hour etcd lease (``--event-ttl``), so they vanish on their own. Like the correlator's
``eventLogger`` (``events_cache.go``: an LRU of ``maxLruCacheEntries`` = 4096 entries holding
each event's name and count, not the event), the recorder remembers at most 4096 events.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from weakref import WeakKeyDictionary

from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.core.clock import EPOCH
from k8sbook.core.status import StatusError


def object_reference(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    ref = {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", ""),
           "name": meta["name"], "uid": meta.get("uid", ""),
           "resourceVersion": meta.get("resourceVersion", "")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}


#: the last event-name timestamp used on each clock: virtual time does not advance between
#: two events recorded at the same instant, so each one gets the next nanosecond (real clocks
#: never return the same UnixNano twice in practice)
_LAST_NANOS: WeakKeyDictionary[Any, int] = WeakKeyDictionary()
#: ``maxLruCacheEntries`` of client-go's ``tools/record/events_cache.go``
MAX_LRU_CACHE_ENTRIES = 4096


class EventRecorder:
    """``recorder.Eventf(obj, type, reason, message)`` for one component."""

    def __init__(self, client: Client, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        #: event key -> (name, count) of the Event written for it, least recently used first
        self._seen: OrderedDict[tuple[str, ...], tuple[str, int]] = OrderedDict()
        self.dropped = 0  # events that could not be written (the real recorder drops them too)

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        if type_ not in ("Normal", "Warning"):
            raise ValueError(f"event type must be Normal or Warning, not {type_!r}")
        ref = object_reference(obj)
        ns = ref.get("namespace", "default")
        clock = self.client.clock
        key = (ref["kind"], ns, ref["name"], ref.get("uid", ""), type_, reason, message)
        try:
            if key in self._seen:
                name, count = self._seen[key]
                patched = self.client.patch("events", name,
                                            {"count": count + 1,
                                             "lastTimestamp": clock.timestamp()}, ns)
                self._remember(key, patched)
                return
            now = clock.timestamp()
            nanos = max(int((EPOCH.timestamp() + clock.now()) * 1e9),
                        _LAST_NANOS.get(clock, 0) + 1)
            _LAST_NANOS[clock] = nanos
            name = f"{ref['name']}.{nanos:x}"
            source = {"component": self.component}
            if self.host:
                source["host"] = self.host
            body = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": ns},
                    "involvedObject": ref, "reason": reason, "message": message,
                    "type": type_, "source": source, "count": 1,
                    "firstTimestamp": now, "lastTimestamp": now,
                    "reportingComponent": self.component,
                    "reportingInstance": self.host or self.component}
            self._remember(key, self.client.create(body))
        except (StatusError, DialError):
            self.dropped += 1

    def _remember(self, key: tuple[str, ...], event: dict[str, Any]) -> None:
        self._seen[key] = (event["metadata"]["name"], event["count"])
        self._seen.move_to_end(key)
        if len(self._seen) > MAX_LRU_CACHE_ENTRIES:
            self._seen.popitem(last=False)
