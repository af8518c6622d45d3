"""gunicorn settings for production: `gunicorn "app:create_app()"` reads this file from the working folder.

Each setting can be overridden on the command line (-w, -b, ...) or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers: one request at a time each, simple and robust; the database does the waiting.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = "sync"
# A request that runs longer is killed and the worker replaced (the statement timeout stops queries first).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
# On SIGTERM or SIGHUP, workers finish the requests they have before they exit.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
# Bounded memory: each worker is replaced after this many requests (jittered so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 10000))
max_requests_jitter = max_requests // 10
# The app writes one JSON line per request to stdout; gunicorn's own access log would repeat it.
accesslog = None
errorlog = "-"
