"""Work a worker does beside its requests (the route index build, the overlay rebuild): routes go
on without it, so it never raises, and it never dies silently."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from indoor.db import DatabaseUnavailable, gevent_active


def run_logged(log: logging.Logger, work: Callable[[], object], unavailable: str, failed: str) -> None:
    """work(); database trouble is a warning (`unavailable: why`), anything else `failed` with
    its traceback."""
    try:
        work()
    except DatabaseUnavailable as exc:
        log.warning("%s: %s", unavailable, exc.why)
    except Exception:
        log.exception(failed)


def run_off_loop(fn, *args):
    """fn(*args) in an OS thread when gevent runs this process (C++ work that releases the GIL:
    the event loop goes on serving); else here (already a thread of its own)."""
    if gevent_active():
        import gevent

        return gevent.get_hub().threadpool.apply(fn, args)
    return fn(*args)


def start_once(state: dict, busy: str, target, args: tuple, name: str, not_before: str | None = None) -> bool:
    """target(*args) in a daemon thread, unless one runs (`state[busy]`, which target clears when
    it ends) or it is not yet `state[not_before]` (monotonic); whether it started."""
    with state["lock"]:
        if state[busy] or (not_before is not None and time.monotonic() < state[not_before]):
            return False
        state[busy] = True
    threading.Thread(target=target, args=args, name=name, daemon=True).start()
    return True
