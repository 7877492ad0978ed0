"""The command line (`flask --app wsgi indoor ...`): commands, the demo campus, check-graph reports."""
