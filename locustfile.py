"""Load test for any deployment of the service: `locust -H https://maps.example.org`.

Each simulated map user mixes, by weight: routes between random rooms (computed, uncached),
routes between a few popular rooms (cached after their first request), room search, the base
floor of a level read as an event stream to its `end` event, and the health probe. Rooms and
levels are read from the API at the start, so it works on any building.

Rate limits count per client address: from one load generator, raise them for the test
(RATELIMIT_DEFAULT, RATELIMIT_ROUTE) or set RATELIMIT_ENABLED=false, else 429s count as failures.
`make loadtest` runs this headless against `make run`'s server. Locust exits non-zero when any
request failed.
"""

from __future__ import annotations

import json
import random
import threading

from locust import HttpUser, between, task

ROOMS_TO_LOAD = 2000  # enough to make random pairs rarely repeat; a campus may have far more
POPULAR_PAIRS = 10


class Building:
    """Rooms and levels, read once per locust process by the first user that needs them."""

    lock = threading.Lock()
    rooms: list[dict] = []
    levels: list = []
    popular: list[tuple[int, int]] = []

    @classmethod
    def load(cls, client) -> None:
        with cls.lock:
            if cls.rooms:
                return
            url = "/api/rooms/?limit=1000"
            rooms = []
            while url and len(rooms) < ROOMS_TO_LOAD:
                page = client.get(url, name="/api/rooms/ (setup)").json()
                rooms += [{"id": f["id"], "name": f["properties"]["name"]} for f in page["features"]]
                url = next((link["href"] for link in page.get("links", []) if link["rel"] == "next"), None)
            if len(rooms) < 2:
                raise RuntimeError("the deployment has fewer than two rooms: nothing to route between")
            levels = client.get("/api/levels/", name="/api/levels/ (setup)").json()["levels"]
            chooser = random.Random(1)  # the same popular pairs in every process
            cls.popular = [tuple(chooser.sample(rooms, 2)) for _ in range(POPULAR_PAIRS)]
            cls.popular = [(a["id"], b["id"]) for a, b in cls.popular]
            cls.levels = [level["level"] for level in levels]
            cls.rooms = rooms


class MapUser(HttpUser):
    wait_time = between(0.5, 2)

    def on_start(self):
        Building.load(self.client)

    @task(4)
    def route_uncached(self):
        a, b = random.sample(Building.rooms, 2)
        profile = random.choice(("walking", "accessible"))
        self._route(a["id"], b["id"], profile, "/api/route/ [random rooms]")

    @task(6)
    def route_cached(self):
        a, b = random.choice(Building.popular)
        self._route(a, b, "walking", "/api/route/ [popular rooms]")

    def _route(self, a, b, profile, name):
        with self.client.get(
            "/api/route/", params={"from": a, "to": b, "profile": profile}, name=name, catch_response=True
        ) as response:
            # 422 no_route is an answer (rooms in parts of a building that are not joined)
            if response.status_code == 422 and response.json()["error"]["code"] == "no_route":
                response.success()
            elif response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(3)
    def search_rooms(self):
        label = random.choice(Building.rooms)["name"] or "a"
        start = random.randrange(max(1, len(label) - 2))
        self.client.get("/api/rooms/", params={"q": label[start : start + 3], "limit": 20}, name="/api/rooms/?q=")

    @task(1)
    def stream_base_floor(self):
        """One level's floor plan as EventSource reads it: every batch, up to the `end` event."""
        level = random.choice(Building.levels)
        with self.client.get(
            "/api/base-floor/",
            params={"level": level},
            headers={"Accept": "text/event-stream"},
            name="/api/base-floor/ [stream]",
            stream=True,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            event, features, ended = None, 0, False
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "features":
                    features += len(json.loads(line[6:])["features"])
                elif line.startswith("data: ") and event == "end":
                    ended = json.loads(line[6:])["count"] == features
            if not ended:
                response.failure(f"stream closed without a matching end event after {features} features")

    @task(1)
    def health(self):
        self.client.get("/api/health/ready", name="/api/health/ready")
