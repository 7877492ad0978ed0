"""Listings as Server-Sent Events under gunicorn + gevent, as deployed: exactly once, resumable,
204 at the end, JSON errors before the first byte, heartbeats while the database is slow."""

from __future__ import annotations

import json
import os

import psycopg2
import pytest

from tests.conftest import run_cli
from tests.feature_data import BIG_LEVEL, BIG_LEVEL_ROOMS, query
from tests.http import get
from tests.sse_client import Comment, Event, EventStream, Retry, feature_ids

LEVEL_PATH = f"/api/rooms/?level={BIG_LEVEL}"


@pytest.fixture(scope="module")
def level_ids(features_url):
    ids = [
        row[0]
        for row in query(features_url, "SELECT ogc_fid FROM room_points WHERE level = %s ORDER BY 1", (BIG_LEVEL,))
    ]
    assert len(ids) == BIG_LEVEL_ROOMS
    return ids


@pytest.fixture(scope="module")
def server(features_url, redis_url, workdir):
    """One server for the read-only tests of this module (others start their own via `serve`)."""
    from scripts.services import GunicornServer

    server = GunicornServer({"DATABASE_URL": features_url, "REDIS_URL": redis_url}).start(workdir / "gunicorn.log")
    yield server
    server.stop()


def read_stream(base_url, path, headers=None):
    stream = EventStream(base_url, path, headers)
    assert stream.status == 200, stream.body()
    items = list(stream.items())
    stream.close()
    return stream, items


def test_stream_delivers_every_feature_exactly_once(server, level_ids):
    stream, items = read_stream(server.base_url, LEVEL_PATH + "&limit=3")  # limit is ignored
    assert stream.headers["content-type"] == "text/event-stream"
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert isinstance(items[0], Retry) and items[0].ms == 3000, "retry comes first"
    events = [item for item in items if isinstance(item, Event)]
    batches = [e for e in events if e.event == "features"]
    assert [len(e.json()["features"]) for e in batches] == [500, 500, 500, 500, 345]  # SSE_BATCH_SIZE 500
    assert all(e.json()["type"] == "FeatureCollection" for e in batches)
    assert feature_ids(events) == level_ids  # each once, in id order
    end = events[-1]
    assert end.event == "end" and end.json() == {"count": BIG_LEVEL_ROOMS}
    assert end.id == batches[-1].id  # the final cursor
    assert len({e.id for e in batches}) == len(batches), "every batch has its own cursor"
    feature = batches[0].json()["features"][0]
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["level"] == BIG_LEVEL


def test_a_crowded_worker_streams_one_batch_at_a_time_and_loses_nothing(serve, features_url, level_ids):
    # SSE_READAHEAD_MAX_STREAMS=0: every stream counts as crowded, so no batch is read ahead and
    # the batches after the first (fetched before the stream starts) are the crowded size.
    crowded = serve(
        workers=1,
        DATABASE_URL=features_url,
        SSE_READAHEAD_MAX_STREAMS=0,
        SSE_BATCH_SIZE=300,
        SSE_CROWDED_BATCH_SIZE=200,
    )
    stream, items = read_stream(crowded.base_url, LEVEL_PATH)
    events = [item for item in items if isinstance(item, Event)]
    assert [len(e.json()["features"]) for e in events if e.event == "features"] == [300] + [200] * 10 + [45]
    assert feature_ids(events) == level_ids
    assert events[-1].event == "end" and events[-1].json() == {"count": BIG_LEVEL_ROOMS}


def test_a_stream_cut_after_the_first_event_resumes_without_loss_or_repeat(server, level_ids):
    for how in ("header", "query"):
        stream = EventStream(server.base_url, LEVEL_PATH)
        first = next(item for item in stream.items() if isinstance(item, Event))
        stream.close(abort=True)
        assert first.event == "features"
        got = feature_ids([first])
        if how == "header":
            _, items = read_stream(server.base_url, LEVEL_PATH, {"Last-Event-ID": first.id})
        else:
            _, items = read_stream(server.base_url, LEVEL_PATH + f"&lastEventId={first.id}")
        rest = [item for item in items if isinstance(item, Event)]
        assert isinstance(items[0], Retry)
        assert feature_ids(rest)[0] > got[-1]
        assert got + feature_ids(rest) == level_ids, how
        assert rest[-1].event == "end" and rest[-1].json() == {"count": len(level_ids) - len(got)}


def test_a_resume_at_the_end_answers_204(server, features_url):
    _, items = read_stream(server.base_url, LEVEL_PATH)
    final = [item for item in items if isinstance(item, Event)][-1].id
    for headers, path in [({"Last-Event-ID": final}, LEVEL_PATH), ({}, LEVEL_PATH + f"&lastEventId={final}")]:
        status, response_headers, body = get(server.base_url + path, {"Accept": "text/event-stream", **headers})
        assert (status, body) == (204, b"")
    # An empty listing streams only `end`; resuming from its cursor is at the end too.
    _, items = read_stream(server.base_url, "/api/rooms/?q=no-such-room")
    (end,) = [item for item in items if isinstance(item, Event)]
    assert end.event == "end" and end.json() == {"count": 0}
    status, _, _ = get(
        server.base_url + "/api/rooms/?q=no-such-room", {"Accept": "text/event-stream", "Last-Event-ID": end.id}
    )
    assert status == 204
    # New rooms after the end are not lost: the same cursor now resumes with them.
    new_id = query(
        features_url,
        "INSERT INTO room_points (text, level, wkb_geometry) VALUES ('late', %s, ST_SetSRID(ST_MakePoint(13.38, 52.53), 4326))"
        " RETURNING ogc_fid",
        (BIG_LEVEL,),
    )[0][0]
    try:
        _, items = read_stream(server.base_url, LEVEL_PATH, {"Last-Event-ID": final})
        assert feature_ids([i for i in items if isinstance(i, Event)]) == [new_id]
    finally:
        query(features_url, "DELETE FROM room_points WHERE ogc_fid = %s RETURNING 1", (new_id,))


def test_errors_before_the_stream_are_json(server):
    sse = {"Accept": "text/event-stream"}
    _, items = read_stream(server.base_url, LEVEL_PATH)
    cursor = [item for item in items if isinstance(item, Event)][0].id
    for path, headers in [
        ("/api/rooms/?level=abc", sse),
        ("/api/rooms/?bbox=1,2,3,4,5", sse),
        (LEVEL_PATH, {**sse, "Last-Event-ID": "garbage"}),
        ("/api/rooms/?level=8", {**sse, "Last-Event-ID": cursor}),  # a cursor of another listing
        ("/api/base-floor/?level=7", {**sse, "Last-Event-ID": cursor}),
        (LEVEL_PATH + "&lastEventId=%00", sse),
    ]:
        status, headers_out, body = get(server.base_url + path, headers)
        assert status == 400, (path, headers)
        assert headers_out["Content-Type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "bad_request"


def test_base_floor_streams_too(server, features_url):
    expected = [row[0] for row in query(features_url, "SELECT ogc_fid FROM base_floor WHERE level = 7 ORDER BY 1")]
    _, items = read_stream(server.base_url, "/api/base-floor/?level=7")
    events = [item for item in items if isinstance(item, Event)]
    assert feature_ids(events) == expected
    assert events[-1].json() == {"count": len(expected)}


# -- heartbeats while a batch waits in PostgreSQL -------------------------------------------

GATE = """
ALTER TABLE room_points RENAME TO room_points_data;
-- Reading a room above id 600 waits for advisory lock 4242 (shared): the test holds it exclusively.
CREATE FUNCTION test_gate(id integer) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 10000 AS $$
BEGIN
  IF id > 600 THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
  RETURN true;
END $$;
-- A view has no ctid of its own: it passes the table's on (how the service tells which of two rows
-- with one key was stored first, queries/validity.py).
CREATE VIEW room_points AS SELECT *, ctid FROM room_points_data WHERE test_gate(ogc_fid);
"""


@pytest.fixture(scope="module")
def gate_url(pg_cluster):
    """1,200 rooms on level 0 behind a view that makes any read past id 600 wait for a lock."""
    url = pg_cluster.create_database(f"gate_{os.getpid()}")
    assert run_cli(url, "init-db").returncode == 0
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO room_points (text, level, wkb_geometry)"
            " SELECT 'G' || g, 0, ST_SetSRID(ST_MakePoint(13.38, 52.53), 4326) FROM generate_series(1, 1200) g"
        )
        cur.execute(GATE)
    conn.close()
    return url


@pytest.fixture
def gate_closed(gate_url):
    """Hold the gate's lock (on a connection of the test's own) -> that connection's cursor."""
    conn = psycopg2.connect(gate_url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT pg_advisory_lock(4242)")
    yield cur
    conn.close()


def waiting_on_a_lock(cur) -> int:
    cur.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'indoor' AND datname = current_database() AND wait_event_type = 'Lock'"
    )
    return cur.fetchone()[0]


def test_heartbeats_arrive_while_a_batch_waits_in_postgres(serve, gate_url, gate_closed):
    server = serve(workers=1, DATABASE_URL=gate_url, SSE_HEARTBEAT_S=0.2, PG_STATEMENT_TIMEOUT_MS=30000)
    stream = EventStream(server.base_url, "/api/rooms/?level=0")
    assert stream.status == 200  # the first batch (ids 1..500) does not touch the gate
    seen = []
    heartbeats = 0
    waiting_in_postgres = False
    for item in stream.items():
        seen.append(item)
        if isinstance(item, Comment):
            assert item.text == "keep-alive"
            heartbeats += 1
            waiting_in_postgres = waiting_in_postgres or waiting_on_a_lock(gate_closed) == 1
            if heartbeats == 3:
                gate_closed.execute("SELECT pg_advisory_unlock(4242)")  # let the batch through
    stream.close()
    events = [item for item in seen if isinstance(item, Event)]
    kinds = [type(item).__name__ if not isinstance(item, Event) else item.event for item in seen]
    # retry, first batch, keep-alives while the second batch waits for the lock, then the rest.
    assert kinds[:5] == ["Retry", "features", "Comment", "Comment", "Comment"], kinds
    assert waiting_in_postgres, "the batch query was not waiting on a lock in PostgreSQL"
    assert feature_ids(events) == list(range(1, 1201))
    assert events[-1].event == "end" and events[-1].json() == {"count": 1200}


def test_a_batch_that_times_out_ends_the_stream_and_the_resume_loses_nothing(serve, gate_url, gate_closed):
    server = serve(workers=1, DATABASE_URL=gate_url, SSE_HEARTBEAT_S=0.2, PG_STATEMENT_TIMEOUT_MS=1000)
    stream = EventStream(server.base_url, "/api/rooms/?level=0")
    assert stream.status == 200
    events = [item for item in stream.items() if isinstance(item, Event)]
    stream.close()
    # The second batch hit the statement timeout: the stream closed without `end`...
    assert [e.event for e in events] == ["features"]
    assert feature_ids(events) == list(range(1, 501))
    gate_closed.execute("SELECT pg_advisory_unlock(4242)")
    # ...and EventSource's reconnect (Last-Event-ID) continues after the last batch it got.
    _, items = read_stream(server.base_url, "/api/rooms/?level=0", {"Last-Event-ID": events[-1].id})
    rest = [item for item in items if isinstance(item, Event)]
    assert feature_ids(rest) == list(range(501, 1201))
    assert rest[-1].json() == {"count": 700}


def test_the_stream_works_outside_gevent_too(features_url, level_ids):
    """`flask run` and the test client have no gevent: batches are fetched in threads."""
    from indoor import create_app

    app = create_app(
        {"DATABASE_URL": features_url, "SSE_BATCH_SIZE": 300, "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"}
    )
    try:
        response = app.test_client().get(LEVEL_PATH, headers={"Accept": "text/event-stream"})
        assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
        blocks = [block for block in response.get_data(as_text=True).split("\n\n") if block]
        assert blocks[0] == "retry: 3000"
        events = [dict(line.split(": ", 1) for line in block.split("\n")) for block in blocks[1:]]
        ids = [f["id"] for e in events if e["event"] == "features" for f in json.loads(e["data"])["features"]]
        assert ids == level_ids
        assert max(len(json.loads(e["data"])["features"]) for e in events[:-1]) == 300
        assert events[-1]["event"] == "end" and json.loads(events[-1]["data"]) == {"count": len(level_ids)}
    finally:
        app.extensions["indoor.db"].close()
