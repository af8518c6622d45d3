"""gunicorn settings for production: `gunicorn "app:create_app()"` reads this file from the working folder.

Each setting can be overridden on the command line (-w, -b, ...) or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os
import shutil
import tempfile

from config import GunicornSettings

settings = GunicornSettings.from_env()
bind = settings.bind
# Sync workers: one request at a time each, simple and robust; the database does the waiting. A client that
# sends its request slowly holds a sync worker until it is done: behind a proxy that buffers requests (nginx
# does by default) that cannot happen; exposed directly, use GUNICORN_WORKER_CLASS=gthread (measured with
# bench/slow_clients.py: two slow clients stall 2 sync workers, not 2 x 4 threads).
workers = settings.workers if settings.workers is not None else multiprocessing.cpu_count() * 2
worker_class = settings.worker_class
threads = settings.threads if settings.threads is not None else 4 if worker_class == "gthread" else 1
# A request that runs longer is killed and the worker replaced (the statement timeout stops queries first).
timeout = settings.timeout
# On SIGTERM or SIGHUP, workers finish the requests they have before they exit.
graceful_timeout = settings.graceful_timeout
# Bounded memory: each worker is replaced after this many requests (jittered so they do not all restart at once).
max_requests = settings.max_requests
max_requests_jitter = max_requests // 10
# The app writes one JSON line per request to stdout; gunicorn's own access log would repeat it.
accesslog = None
errorlog = "-"

# Metrics (metrics.py): each worker writes its counts to files in one folder, and a scrape adds them up. The
# folder must be in the environment before a worker imports prometheus_client, and empty when gunicorn starts.
metrics_dir = settings.metrics_dir or tempfile.mkdtemp(prefix="scim-metrics-")
made_metrics_dir = not settings.metrics_dir
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir


def on_starting(server):
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(metrics_dir, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if made_metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)
