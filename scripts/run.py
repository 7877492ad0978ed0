"""`make run`: a local cluster under .data/ (unless DATABASE_URL is set), init-db, the demo
building when the database is empty, then gunicorn with gevent workers on 127.0.0.1:8000."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import PostgresCluster, free_port  # noqa: E402

DEFAULT_LOCAL_PORT = 54329


def local_port() -> int:
    """LOCAL_PG_PORT, else the port this checkout's cluster was given, else 54329 when it is free
    (another checkout's cluster may hold it) or any free port; remembered in .data/pg.port."""
    if os.environ.get("LOCAL_PG_PORT"):
        return int(os.environ["LOCAL_PG_PORT"])
    saved = ROOT / ".data" / "pg.port"
    if saved.exists():
        return int(saved.read_text())
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", DEFAULT_LOCAL_PORT))
            port = DEFAULT_LOCAL_PORT
        except OSError:
            port = free_port()
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(str(port))
    return port


def main() -> int:
    # `kill`/timeout sends SIGTERM: stop gunicorn and the local cluster as Ctrl-C would.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "text")
    env.setdefault("ENVIRONMENT", "development")  # a local server: any Host (README: TRUSTED_HOSTS)
    cluster = None
    if not env.get("DATABASE_URL") and not env.get("POSTGRES_HOST"):
        cluster = PostgresCluster(ROOT / ".data" / "pg", port=local_port()).init()
        if not cluster.is_running():
            cluster.start()
        env["DATABASE_URL"] = cluster.create_database("indoor")
        print(f"local database: {env['DATABASE_URL']} (data in .data/pg)", flush=True)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "indoor"]
    subprocess.run([*flask, "init-db", "--demo-if-empty"], cwd=ROOT, env=env, check=True)
    address = env.get("BIND", "127.0.0.1:8000")
    print(f"serving on http://{address}: the map at http://{address}/, the API under /api/", flush=True)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    try:
        return subprocess.call([str(gunicorn), "-c", "config/gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
