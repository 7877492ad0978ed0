"""The GIS standards: OGC API - Features documents and vector tiles (their SQL is in queries/)."""
