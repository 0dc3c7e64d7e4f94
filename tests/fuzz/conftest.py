"""Every property here runs under the budget of ``tests/fuzz/profiles.py``."""

from tests.fuzz import profiles

profiles.load()
