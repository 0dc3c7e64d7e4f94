"""Drivers that speak to object stores. They never import metadata or aiohttp.web."""
