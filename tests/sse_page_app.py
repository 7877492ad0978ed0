"""A test-only wrapper around the production app: one page that consumes a stream with a real
browser EventSource, and one endpoint where the page reports what it saw. Served by gunicorn in
the browser test (`GunicornServer(app="tests.sse_page_app:app")`); never part of the service."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Response, request

from indoor import create_app

app = create_app()

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>EventSource test</title></head><body>
<script>
const source = new EventSource(%(url)s);
const seen = {ids: [], ends: [], opens: 0, errors: 0, states: []};
source.onopen = () => { seen.opens += 1; };
source.addEventListener("features", (e) => {
  for (const feature of JSON.parse(e.data).features) seen.ids.push(feature.id);
});
source.addEventListener("end", (e) => { seen.ends.push(JSON.parse(e.data).count); });
source.onerror = () => {
  seen.errors += 1;
  seen.states.push(source.readyState);
  // After `end` the server closes the stream: the browser reconnects on its own with
  // Last-Event-ID, gets 204 and gives up (CLOSED). Report only then.
  if (source.readyState === EventSource.CLOSED) {
    fetch("/test/report", {method: "POST", body: JSON.stringify(seen)});
  }
};
</script></body></html>
"""


@app.get("/test/page")
def page():
    import json

    page = Response(PAGE % {"url": json.dumps(request.args["stream"])}, content_type="text/html")
    # The service's own CSP forbids all scripts (it serves no HTML); this test page needs its one.
    page.headers["Content-Security-Policy"] = "default-src 'none'; script-src 'unsafe-inline'; connect-src 'self'"
    return page


@app.post("/test/report")
def report():
    Path(os.environ["SSE_PAGE_REPORT"]).write_bytes(request.get_data())
    return Response(status=204)
