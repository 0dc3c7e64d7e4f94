"""Links: the named network paths from this site to backends, wrapping their drivers."""
