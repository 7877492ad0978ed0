"""How requests and answers are framed: parameters, listings as pages or streams, SSE, links, extents."""
