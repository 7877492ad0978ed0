"""Operating a building live: bearer tokens (auth.py), closures (closures.py), change events
pushed to open maps (events.py)."""
