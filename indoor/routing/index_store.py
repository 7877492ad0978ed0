"""The route index's files, shared by the workers of one machine (ROUTE_INDEX_DIR).

One directory per database and graph version, written once and never changed: any dict of named
numpy arrays (one .npy each, mapped read-only by every worker: the pages are the page cache's,
held once per machine) and, optionally, a pyroutingkit CCHTopology (its vertex order: loading it
skips the nested dissection, the costly part of a build). A version is written to a temporary
directory and renamed into place, so a reader sees it whole or not at all. The first worker that
needs a version builds it under an exclusive flock on the database's lock file; the others keep
answering through the searches meanwhile (index.py) and then map what it wrote. flock, not a
PostgreSQL advisory lock: the build is per machine, and pgbouncer in transaction mode has no
session locks. The kernel releases the lock of a worker that dies mid-build.

Old versions are removed by the builder (under the lock), keeping the newest few: a worker that
still maps a removed version's arrays keeps its pages (unlinking a mapped file does not unmap
it), and one that was about to load it finds no directory and builds or waits again.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

import numpy as np

KEEP_VERSIONS = 3  # per database: the newest few, for workers still on an older snapshot
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,120}$")
_TOPOLOGY = "topology"
_META = "meta.json"


def default_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "indoor-route-index")


def database_dir(root: str, database_url: str) -> Path:
    """The directory of one database's versions: graph keys count per database, so two databases
    on one machine (or one re-created) never share files. Named by a hash (no password on disk)."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path(root or default_dir()) / digest


def _check_name(name: str) -> str:
    if not _NAME.match(name) or name.startswith("."):
        raise ValueError(f"not a store name: {name!r}")
    return name


def save(base: Path, key: str, arrays: dict[str, np.ndarray], topology=None, meta: dict | None = None) -> Path:
    """Write version `key`: `arrays` (name -> array) and the topology, atomically. A version
    already there is kept (written by another worker: the same graph, the same contents)."""
    final = base / _check_name(key)
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=base))
    try:
        for name, array in arrays.items():
            np.save(staging / f"{_check_name(name)}.npy", np.ascontiguousarray(array), allow_pickle=False)
        if topology is not None:
            (staging / _TOPOLOGY).mkdir()
            topology.save(str(staging / _TOPOLOGY))
        (staging / _META).write_text(json.dumps({"arrays": sorted(arrays), **(meta or {})}))
        try:
            os.rename(staging, final)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def exists(base: Path, key: str) -> bool:
    return (base / _check_name(key) / _META).is_file()


def load(base: Path, key: str, topology_factory=None):
    """(arrays mapped read-only, topology or None, meta) of version `key`; None when it is not
    there (never written, or removed meanwhile)."""
    where = base / _check_name(key)
    try:
        meta = json.loads((where / _META).read_text())
        arrays = {name: np.load(where / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in meta["arrays"]}
        topology = None
        if topology_factory is not None and (where / _TOPOLOGY).is_dir():
            topology = topology_factory()
            topology.load(str(where / _TOPOLOGY))
    except (OSError, RuntimeError, ValueError):  # removed meanwhile (pyroutingkit: RuntimeError)
        return None
    return arrays, topology, meta


def ensure_private(base: Path) -> None:
    """Create a database's directory readable and writable by this user only, and refuse one
    another user owns or may write: its files are trusted as an index (another local user must
    not plant one through a shared root such as the temp dir). Raises OSError."""
    base.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    base.mkdir(mode=0o700, exist_ok=True)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise PermissionError(errno.EACCES, "not a directory of this user's only", str(base))


class BuildLock:
    """The exclusive right to build a version of one database on this machine (flock). Polled
    without blocking, so a waiting greenlet never holds its worker's event loop."""

    def __init__(self, base: Path):
        base.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self, ready=lambda: False, timeout_s: float = 600.0, poll_s: float = 0.05) -> bool:
        """True with the lock held; False when `ready()` became true first (another worker
        wrote what was needed) or after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            if ready() or time.monotonic() > deadline:
                return False
            time.sleep(poll_s)  # gevent's sleep under gunicorn: the worker goes on serving

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def prune(base: Path, newest_first: list[str]) -> list[str]:
    """Remove all but the first KEEP_VERSIONS of `newest_first`, plus versions not in it and
    staging directories left by a worker that died mid-write (older than a minute). Call with
    the build lock held. Returns what was removed."""
    keep = set(newest_first[:KEEP_VERSIONS])
    removed = []
    for entry in base.iterdir():
        if not entry.is_dir() or entry.name in keep:
            continue
        if entry.name.startswith(".tmp-") and time.time() - entry.stat().st_mtime < 60:
            continue  # written without the lock (the store was locked by a stuck worker): give it time
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def versions(base: Path) -> list[str]:
    """The complete versions in the store."""
    if not base.is_dir():
        return []
    return [e.name for e in base.iterdir() if e.is_dir() and not e.name.startswith(".") and (e / _META).is_file()]
