"""The production web server's settings; `gunicorn config.wsgi` reads this file itself.

Sync workers, 2 × cores + 1 of them unless WEB_CONCURRENCY says otherwise: on 2 cores
`make bench` found no better choice (3 or 8 sync workers, or gthread with 2 × 8
threads, moved the figures less than one run differs from the next).
"""

import os

bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
worker_class = "sync"
