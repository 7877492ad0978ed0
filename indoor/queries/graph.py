"""`indoor check-graph`: breaches of the DATA.md invariants that exact routing relies on."""

from __future__ import annotations

# Each check: (name, is_breach, SQL returning up to 10 offending ids and the total count).
# A cost below the geodesic distance between an edge's vertices would let a windowed search
# miss a shorter path: that is a breach, not a style issue.
CHECKS = [
    (
        "cost below geodesic length",
        True,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT e.id, row_number() OVER (ORDER BY e.id) AS n
               FROM nav_edges_final e
               JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
               JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
              WHERE (e.cost >= 0 AND e.cost < ST_Distance(a.the_geom::geography, b.the_geom::geography) - 1e-6)
                 OR (e.reverse_cost >= 0
                     AND e.reverse_cost < ST_Distance(a.the_geom::geography, b.the_geom::geography) - 1e-6)) x""",
    ),
    (
        "edge refers to a missing vertex",
        True,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT e.id, row_number() OVER (ORDER BY e.id) AS n
               FROM nav_edges_final e
              WHERE NOT EXISTS (SELECT 1 FROM nav_edges_work_vertices_pgr v WHERE v.id = e.source)
                 OR NOT EXISTS (SELECT 1 FROM nav_edges_work_vertices_pgr v WHERE v.id = e.target)) x""",
    ),
    (
        "edge closed both ways",
        False,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT id, row_number() OVER (ORDER BY id) AS n FROM nav_edges_final
              WHERE cost < 0 AND reverse_cost < 0) x""",
    ),
    (
        "vertex with no edge",
        False,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT v.id, row_number() OVER (ORDER BY v.id) AS n FROM nav_edges_work_vertices_pgr v
              WHERE NOT EXISTS (SELECT 1 FROM nav_edges_final e WHERE e.source = v.id OR e.target = v.id)) x""",
    ),
]


def check_graph(cur) -> list[dict]:
    results = []
    for name, is_breach, statement in CHECKS:
        cur.execute(statement)
        sample, count = cur.fetchone()
        results.append({"check": name, "breach": is_breach, "count": int(count), "sample": sample or []})
    return results
