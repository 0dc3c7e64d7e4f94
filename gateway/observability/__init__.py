"""Prometheus metrics and the JSON access log of a serving process."""
