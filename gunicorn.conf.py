"""gunicorn settings, read automatically by `gunicorn wsgi:app` from this folder.

Command-line flags override these; the environment sets them for deployments
(docs/deployment.md).
"""

import glob
import json
import logging
import os
import shutil
import tempfile
import time

from gunicorn import glogging

# gunicorn's own default bind (127.0.0.1:8000, or 0.0.0.0:$PORT) applies unless BIND is set.
if os.environ.get("BIND"):
    bind = [address.strip() for address in os.environ["BIND"].split(",")]
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
# Each worker serves GUNICORN_THREADS requests at once, on threads: requests waiting on a
# stalled database leave threads free for /health/live and for requests that need no
# database (docs/decisions.md, "Time limits"). More than 8 per worker, so that a worker that
# took 8 such requests still answers: the workers share out new connections by chance.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 10))
# A worker whose main loop stops (it no longer takes new connections) for this long is
# replaced. Every wait on the database has a limit below it (app/config.py, checked in
# post_worker_init), so a request ends in 503 before.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On SIGTERM, finish the requests in flight for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = 5
# Recycling: a worker exits after this many requests (plus a random 0 to jitter, so that
# the workers do not all restart at once) and a fresh one takes its place. What a worker's
# heap grew to for one large response, or any slow leak, goes with it. 0 turns it off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10_000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10))
# Bound the request line and headers; bodies are bounded by MAX_BODY_BYTES in the app.
limit_request_line = 8190
limit_request_fields = 100
# gunicorn's control socket (gunicornc) defaults to one path per user, which instances
# sharing a host would fight over: off unless GUNICORN_CONTROL_SOCKET names a path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Metrics: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR, and /metrics
# adds up the files of all workers, whichever worker answers the scrape. The directory must
# start empty: one of our own is made (and removed on exit) unless the operator names one,
# whose old value files are then cleared when gunicorn starts. Set before any worker
# imports prometheus_client, which reads the variable on import.
_OWN_METRICS_DIR = "NEVISIDM_OWN_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="nevisidm-metrics-")
    os.environ[_OWN_METRICS_DIR] = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db*")):
        os.remove(stale)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    # gunicorn does not guard this hook: an error here would stop the master.
    try:
        _fold_into_archive(os.environ["PROMETHEUS_MULTIPROC_DIR"], worker.pid)
    except Exception:
        server.log.exception("Could not fold the metrics of worker %s", worker.pid)


def _fold_into_archive(directory, pid):
    """A worker that exits (recycled after max_requests) leaves its counters and histograms
    in files of its own, whose counts must stay in the totals. Kept as they are, one more
    set per recycled worker, every scrape would read more files the longer the instance
    runs. The master adds them into one file per type (``<type>_archive.db``) and removes
    them. The archive is replaced whole (a copy written beside it, then renamed), so a
    scrape reads either the old or the new one; one at the very instant between the rename
    and the removal would count the dead worker twice."""
    from prometheus_client.mmap_dict import MmapedDict

    for kind in ("counter", "histogram"):
        dead = os.path.join(directory, f"{kind}_{pid}.db")
        if not os.path.exists(dead):
            continue
        archive = os.path.join(directory, f"{kind}_archive.db")
        staged = f"{archive}.next"  # not *.db: no scrape reads it
        if os.path.exists(archive):
            shutil.copyfile(archive, staged)
        elif os.path.exists(staged):
            os.remove(staged)
        totals = MmapedDict(staged)
        try:
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(dead):
                total, _ = totals.read_value(key)
                totals.write_value(key, total + value, timestamp)
        finally:
            totals.close()
        os.replace(staged, archive)
        os.remove(dead)


# Python's cycle collector walks every tracked object of the generations it collects. Once
# a worker has loaded the app, its hundred thousand or so objects (modules, mappers,
# schemas) live as long as the worker: freezing them takes them out of every collection,
# and a larger first generation makes collections rarer. Together they take roughly a
# tenth off the CPU time of a request that creates a credential (BENCHMARKS.md).
GC_GENERATION0_THRESHOLD = int(os.environ.get("GC_GENERATION0_THRESHOLD", 10_000))


def post_worker_init(worker):
    import gc

    from app.config import TIME_LIMITS, check_time_limits

    # The app is loaded: a time limit at or above the worker timeout stops start-up. (Not
    # for another app served with these settings: bench/'s reference.)
    config = getattr(worker.wsgi, "config", {})
    if all(name in config for name in TIME_LIMITS):
        check_time_limits(config, worker.cfg.timeout)

    gc.collect()
    gc.freeze()
    _, generation1, generation2 = gc.get_threshold()
    gc.set_threshold(GC_GENERATION0_THRESHOLD, generation1, generation2)


def on_exit(server):
    own = os.environ.get(_OWN_METRICS_DIR)
    if own and own == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(own, ignore_errors=True)


# Logs: gunicorn's own lines are JSON objects too, with the keys of the app's lines
# (app/observability.py). The formatter is defined here rather than imported from the app,
# so that the master never imports the app and new workers (after a HUP) load new code.
# gunicorn's access log stays off: the app logs each request once, without query strings.
class GunicornJsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class AppLogsRequests(glogging.Logger):
    """The app logs each request (app/observability.py). gunicorn builds the fields of an
    access-log line for every request whenever logconfig_dict is set, even with its access
    logger silenced; this skips that unless an access log file is asked for. With
    ``--statsd-host``, gunicorn's statsd logger is used instead, as gunicorn would."""

    def __new__(cls, cfg):
        if cfg.statsd_host:
            from gunicorn.instrument.statsd import Statsd

            return Statsd(cfg)
        return super().__new__(cls)

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = AppLogsRequests

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": GunicornJsonFormatter}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    # The app adds its own root handler in each worker (configure_logging).
    "root": {"handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}
