# Gunicorn settings. Imports nothing of the app: gevent patches inside each worker,
# and the app (with its connection pool) is created per worker, after the fork.
import multiprocessing
import os
import sys


def _settings_or_exit():
    """Every setting checked before gunicorn starts anything: a bad one is one line on stderr and
    exit status 1 (a worker failing in create_app would be restarted forever, with tracebacks)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from config.settings import Settings, SettingsError  # the settings only, not the app

    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


_settings = _settings_or_exit()

bind = os.environ.get("BIND", "127.0.0.1:8000")
# gunicorn's own request-parsing errors in the API's JSON shape, never its HTML pages.
worker_class = "config.gunicorn_worker.JsonErrorsWorker"
logger_class = "config.gunicorn_worker.Logger"
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count())))
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", 2000))
# SSE streams are long: the gevent worker's timeout only watches the arbiter heartbeat.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 20
keepalive = 5
# gunicorn answers a request line over its limit with an HTML 414 the API cannot shape; 0 lifts
# the limit to gunicorn's hard 1 MB, and the app refuses long query strings as JSON 400s.
limit_request_line = 0
# Likewise its HTML 431 for more than 100 header fields (which nginx passes on): the header size
# limits in front (nginx: 4 buffers of 8 KB) bound them instead; a field may be a little longer
# than nginx's 8 KB line, so gunicorn never refuses what nginx let through.
limit_request_fields = 32768
limit_request_field_size = 16384
preload_app = False  # never: the pool and the gevent wait callback must be per worker
accesslog = None  # the app logs one structured line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# -- JSON lines: gunicorn's own messages in the same shape as the app's (LOG_FORMAT=json) ---------
if os.environ.get("LOG_FORMAT", "json").strip().lower() == "json":
    logconfig_dict = {
        "root": {"level": "WARNING", "handlers": []},  # each worker's app installs its own handler
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            }
        },
    }

# -- Prometheus metrics across workers (METRICS_ENABLED) -----------------------------------------
# Each worker writes its metric values to files in PROMETHEUS_MULTIPROC_DIR; a scrape of any worker
# sums them. The directory must be set before a worker imports prometheus_client, so it is set here.
if os.environ.get("METRICS_ENABLED", "").strip().lower() in ("1", "true", "yes", "on"):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="indoor-metrics-")


def on_starting(server):
    _require_trusted_hosts(server)
    # Values left by a previous run of the service would be counted again: start from nothing.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def post_worker_init(worker):
    # The app is loaded and the worker's signal handlers are set: from here on it serves and
    # stops when told (a SIGTERM in its first milliseconds, before gunicorn installs them, is
    # lost and costs GRACEFUL_TIMEOUT). What the test harness and the bench wait for.
    worker.log.info("worker ready (pid: %s)", worker.pid)


def child_exit(server, worker):
    # A dead worker's gauges (pool in use, open streams) must stop counting; its counters stay.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _require_trusted_hosts(server):
    """Production (ENVIRONMENT, the default) refuses to serve without TRUSTED_HOSTS: every Host a
    client sends would be answered, and a cache in front would keep what it chose. Development
    starts, and says so."""
    if _settings.trusted_hosts:
        return
    if _settings.environment == "production":
        server.log.error(
            "refusing to start: TRUSTED_HOSTS is not set. In production list the host names clients"
            " and health checks use (TRUSTED_HOSTS=maps.example.org,localhost), or set"
            " ENVIRONMENT=development to answer any Host"
        )
        sys.exit(1)
    server.log.warning("TRUSTED_HOSTS is not set: answering any Host header (ENVIRONMENT=development)")
