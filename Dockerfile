# syntax=docker/dockerfile:1
# One image for every role: docker-compose.yml runs it as migrate, web, worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --create-home app
WORKDIR /app

COPY . .
# Editable, so the code runs from /app alone, with its translations and templates beside it.
# The cache mount keeps downloaded wheels between builds, out of the image.
RUN --mount=type=cache,target=/root/.cache/pip pip install -e .

# A throwaway key for this one step (not ENV): the image never carries a key, the real
# one comes at run time. var/ then belongs to the app user, since beat writes its schedule there.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input \
    && chown -R 10001:10001 /app/var

# Numeric, so that platforms checking for a non-root user can tell without /etc/passwd.
USER 10001:10001
EXPOSE 8000
# Worker processes come from WEB_CONCURRENCY, which gunicorn reads itself.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
