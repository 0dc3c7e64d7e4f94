"""Repositories: the only code that speaks SQL. Never imports ``gateway``."""
