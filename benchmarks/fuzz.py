"""The long fuzz mode: every property of ``tests/fuzz`` with a huge example budget.

Runs in-process on pure functions (no servers), in round-robin rounds of ``--round``
examples per property, until ``--inputs`` inputs have run in total or ``--seconds`` have
passed, over ``--processes`` worker processes (each draws its own random examples). An
input is one example hypothesis generated and the property ran, or, in the batched
properties, each of the ``--batch`` inputs one example derives by seeded mutation. A
property that fails is reported with its shrunk falsifying example and not run again; a
round that takes longer than ``--hang-seconds`` is reported as a hang. Run it niced on a
shared machine:

    nice -n 19 .venv/bin/python -m benchmarks.fuzz --inputs 1000000 --processes 2
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests import fuzz
from tests.fuzz import profiles

Property = Callable[[], None]


@dataclass
class Outcome:
    counts: Counter[str] = field(default_factory=Counter)
    extra_inputs: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    slowest_round_s: dict[str, float] = field(default_factory=dict)


def _properties() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for module_info in pkgutil.iter_modules(fuzz.__path__):
        if not module_info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.fuzz.{module_info.name}")
        for name, value in vars(module).items():
            if name.startswith("test_") and hasattr(value, "hypothesis"):
                found[f"{module_info.name}::{name}"] = value
    return found


def _counting(test: Any, name: str, counts: Counter[str]) -> None:
    """Count every example the property runs (``inner_test`` is hypothesis's public hook)."""
    inner = test.hypothesis.inner_test

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return inner(*args, **kwargs)

    test.hypothesis.inner_test = counted


def _worker(budget: int, deadline: float, per_round: int, batch: int, hang_s: float) -> Outcome:
    os.environ[profiles.EXAMPLES_ENV] = str(per_round)
    os.environ[profiles.BATCH_ENV] = str(batch)
    profiles.load("long")
    outcome = Outcome()
    tests = _properties()
    for name, test in tests.items():
        _counting(test, name, outcome.counts)
    rounds = 0
    while _inputs(outcome) < budget and time.time() < deadline:
        rounds += 1
        print(f"worker {os.getpid()}: round {rounds}, {_inputs(outcome)} inputs", flush=True)
        for name, test in tests.items():
            if name in outcome.failures:
                continue
            began = time.monotonic()
            try:
                test()
            except Exception:
                outcome.failures[name] = traceback.format_exc(limit=-8)
            took = time.monotonic() - began
            outcome.slowest_round_s[name] = max(outcome.slowest_round_s.get(name, 0.0), took)
            if took > hang_s:
                outcome.failures.setdefault(name, f"a round of {per_round} took {took:.0f} s")
    return outcome


def _inputs(outcome: Outcome) -> int:
    outcome.extra_inputs = profiles.extra_inputs[0]
    return sum(outcome.counts.values()) + outcome.extra_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=6 * 3600)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--round", type=int, default=2000, help="examples per property a round")
    parser.add_argument("--batch", type=int, default=50, help="inputs per batched example")
    parser.add_argument("--hang-seconds", type=float, default=600)
    args = parser.parse_args()
    began = time.time()
    deadline = began + args.seconds
    share = -(-args.inputs // args.processes)
    with ProcessPoolExecutor(args.processes) as pool:
        futures = [
            pool.submit(_worker, share, deadline, args.round, args.batch, args.hang_seconds)
            for _ in range(args.processes)
        ]
        outcomes = [future.result() for future in futures]
    elapsed = time.time() - began
    _report(outcomes, elapsed)


def _report(outcomes: list[Outcome], elapsed: float) -> None:
    counts: Counter[str] = Counter()
    failures: dict[str, str] = {}
    for outcome in outcomes:
        counts.update(outcome.counts)
        failures.update(outcome.failures)
    for name, count in sorted(counts.items()):
        print(f"{count:>10}  {name}{'  FAILED' if name in failures else ''}")
    examples = sum(counts.values())
    total = examples + sum(outcome.extra_inputs for outcome in outcomes)
    print(f"{examples:>10}  examples; {total} inputs in {elapsed:.0f} s ({total / elapsed:.0f}/s), "
          f"{len(failures)} properties failed")  # fmt: skip
    for name, failure in failures.items():
        print(f"\n=== {name}\n{failure}")


if __name__ == "__main__":
    main()
