#!/bin/sh
# migrate: bring the database schema up to date (run once before web and worker start).
# web: serve with gunicorn. worker: run background tasks. Anything else runs as given.
set -e
case "$1" in
  migrate)
    exec python manage.py migrate --noinput
    ;;
  web)
    exec gunicorn config.wsgi:application --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-3}" --timeout 120 --access-logfile -
    ;;
  worker)
    exec python manage.py db_worker --interval 1
    ;;
  *)
    exec "$@"
    ;;
esac
