# Gunicorn settings. Imports nothing of the app: gevent patches inside each worker,
# and the app (with its connection pool) is created per worker, after the fork.
import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count())))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", 2000))
# SSE streams are long: the gevent worker's timeout only watches the arbiter heartbeat.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
preload_app = False  # never: the pool and the gevent wait callback must be per worker
accesslog = None  # the app logs one structured line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
