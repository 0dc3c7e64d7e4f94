"""Hypothesis budgets for the fuzz properties.

``ci`` (the default) keeps the whole directory under a minute on the test machine; ``long``
is what ``benchmarks/fuzz.py`` runs, with ``SKYBRIDGE_FUZZ_EXAMPLES`` examples per property
per round. Neither keeps an example database: a run leaves no files behind, and a failure
prints the reproducing input (and its ``@reproduce_failure`` blob) instead.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "SKYBRIDGE_FUZZ_PROFILE"
EXAMPLES_ENV = "SKYBRIDGE_FUZZ_EXAMPLES"
BATCH_ENV = "SKYBRIDGE_FUZZ_BATCH"
CI_EXAMPLES = 200
LONG_EXAMPLES = 20_000


def batch() -> int:
    """How many inputs the batched properties derive from one example (by seeded mutation):
    hypothesis spends about a millisecond making an example, the parsers microseconds."""
    return int(os.environ.get(BATCH_ENV, "4"))


# Inputs the batched properties fed beyond the first of each example (benchmarks/fuzz.py
# adds them to the examples it counts).
extra_inputs = [0]


def fed(inputs: int) -> None:
    extra_inputs[0] += max(0, inputs - 1)


def register() -> None:
    common = {"deadline": None, "database": None, "print_blob": True}
    settings.register_profile("ci", max_examples=CI_EXAMPLES, **common)  # type: ignore[arg-type]
    settings.register_profile(
        "long",
        max_examples=int(os.environ.get(EXAMPLES_ENV, LONG_EXAMPLES)),
        suppress_health_check=list(HealthCheck),
        **common,  # type: ignore[arg-type]
    )


def load(name: str | None = None) -> None:
    register()
    settings.load_profile(name or os.environ.get(PROFILE_ENV, "ci"))
