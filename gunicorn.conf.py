"""gunicorn settings, read automatically by `gunicorn wsgi:app` from this folder.

Command-line flags override these; the environment sets them for deployments.
"""

import os

# gunicorn's own default bind (127.0.0.1:8000, or 0.0.0.0:$PORT) applies unless BIND is set.
if os.environ.get("BIND"):
    bind = [address.strip() for address in os.environ["BIND"].split(",")]
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
worker_class = "sync"
# A request that takes longer than this is stuck: its worker is replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On SIGTERM, finish the requests in flight for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = 5
# Bound the request line and headers; bodies are bounded by MAX_BODY_BYTES in the app.
limit_request_line = 8190
limit_request_fields = 100
