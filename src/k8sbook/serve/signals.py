"""How ``k8sbook serve`` stops: on SIGINT (^C) and SIGTERM, as every Kubernetes component does
(``k8s.io/apiserver/pkg/server.SetupSignalHandler``, which ``signal.Notify``-s both).

Go's ``signal.Notify`` installs its handler even over a SIGINT the process inherited as ignored
(a background job of a shell without job control starts so, and ``nohup`` keeps a terminal's
^C away the same way); CPython installs its KeyboardInterrupt handler only where SIGINT was not
ignored, so without :func:`stop_on_signals` such a server could not be stopped by SIGINT.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main thread (a no-op in any
    other thread, where Python cannot set handlers)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)
