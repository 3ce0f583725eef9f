"""The production web server's settings; `gunicorn config.wsgi` reads this file itself.

Chosen by `make bench` on 2 cores (README, "Performance and scaling").
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1))
worker_class = "sync"
