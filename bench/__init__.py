"""`make bench`: the service measured against its references, side by side in one run.

Every figure is paired with a reference measured in the same run on the same machine (a
full-graph pgr_dijkstra, COPY, the health probe, a peer server), because these machines are
noisy: the table reports medians and ratios, not lone absolute times. See BENCHMARKS.md.
"""
