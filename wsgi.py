"""Gunicorn entry point: `gunicorn -c config/gunicorn.conf.py wsgi:app`."""

from indoor import create_app

app = create_app()
