#!/bin/sh
# migrate: bring the database schema up to date (run once before web and worker start).
# web: serve with gunicorn. worker: run background tasks. maintenance: daily pruning of old task
# results and reconcile_runs. Anything else runs as given.
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
  maintenance)
    # Daily: prune finished task results older than LOUPE_TASK_RESULT_DAYS (default 14) and fail
    # runs whose worker died without anybody watching.
    while true; do
      python manage.py prune_db_task_results --min-age-days "${LOUPE_TASK_RESULT_DAYS:-14}"
      python manage.py reconcile_runs
      sleep 86400
    done
    ;;
  *)
    exec "$@"
    ;;
esac
