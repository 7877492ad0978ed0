# The service image: gunicorn with gevent workers, and the map client's built assets. The database
# (PostGIS + pgRouting) and Redis run elsewhere; point DATABASE_URL and REDIS_URL at them.
# README, Deployment: deploy/docker-compose.yml builds and runs it with everything around it.

# -- the map client (indoor/client/): npm ci && npm run build -> indoor/client/dist/ ------------
FROM node:22-bookworm-slim AS client
WORKDIR /src/indoor/client
COPY indoor/client/package.json indoor/client/package-lock.json ./
RUN npm ci
COPY indoor/client/ ./
RUN npm run build

# -- the service ---------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LOG_FORMAT=json BIND=0.0.0.0:8000
# pg_dump/pg_restore for scripts/backup.sh and scripts/restore.sh
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home /app indoor
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY config ./config
COPY indoor ./indoor
# The words: every catalogue compiled here, so the image never carries a stale or missing one.
RUN pybabel compile -d indoor/translations -D messages && pybabel compile -d indoor/translations -D page
COPY --from=client /src/indoor/client/dist ./indoor/client/dist
COPY scripts/backup.sh scripts/restore.sh scripts/pg_env.py ./scripts/
COPY wsgi.py .
USER indoor
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/api/health/', timeout=2)" || exit 1
# One-off schema set-up: docker run IMAGE flask --app wsgi indoor init-db
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"]
