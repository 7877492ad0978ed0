# The service image: gunicorn with gevent workers. The database (PostGIS + pgRouting) and Redis
# run elsewhere; point DATABASE_URL and REDIS_URL at them.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LOG_FORMAT=json BIND=0.0.0.0:8000
RUN useradd --system --uid 10001 --home /app indoor
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY config ./config
COPY indoor ./indoor
COPY wsgi.py .
USER indoor
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/api/health/', timeout=2)" || exit 1
# One-off schema set-up: docker run IMAGE flask --app wsgi indoor init-db
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"]
