"""`make run`: a local cluster under .data/ (unless DATABASE_URL is set), init-db, the demo
building when the database is empty, then gunicorn with gevent workers on 127.0.0.1:8000."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import PostgresCluster  # noqa: E402

LOCAL_PORT = int(os.environ.get("LOCAL_PG_PORT", "54329"))


def main() -> int:
    # `kill`/timeout sends SIGTERM: stop gunicorn and the local cluster as Ctrl-C would.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "text")
    cluster = None
    if not env.get("DATABASE_URL") and not env.get("POSTGRES_HOST"):
        cluster = PostgresCluster(ROOT / ".data" / "pg", port=LOCAL_PORT).init()
        if not cluster.is_running():
            cluster.start()
        env["DATABASE_URL"] = cluster.create_database("indoor")
        print(f"local database: {env['DATABASE_URL']} (data in .data/pg)", flush=True)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "indoor"]
    subprocess.run([*flask, "init-db", "--demo-if-empty"], cwd=ROOT, env=env, check=True)
    print(f"serving on http://{env.get('BIND', '127.0.0.1:8000')}", flush=True)
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
