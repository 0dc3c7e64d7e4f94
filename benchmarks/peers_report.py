"""The peer benchmark's output: a table per cell, ratios of medians, JSON and a PNG."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.peers import Measurement

MIB = 1024 * 1024
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# (numerator, denominator): each ratio is of median throughput in the same cell.
RATIOS = (
    ("sb1", "disk"),
    ("sb2", "disk"),
    ("sb1-sw", "seaweedfs"),
    ("sb2-sw", "seaweedfs"),
    ("sb1", "rclone"),
    ("sb2", "rclone"),
    ("sb1", "ceiling"),
    ("sb2", "ceiling"),
    ("sb1-sse", "disk"),
    ("sb2-sse", "disk"),
    ("sb1-sse", "sb1"),
    ("sb1-2sync", "sb1"),
)
HEADER = (
    f"    {'contender':10} {'ops/s':>9} {'MiB/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    f" {'p999 ms':>8} {'ttfb ms':>8} {'CPU s/GiB':>9} {'RSS MiB':>8} {'err':>4}"
)


def size_label(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // 1024} KiB"


def _row(m: Measurement) -> str:
    return (
        f"    {m.contender:10} {m.ops_per_s:9.1f} {m.mib_per_s:8.1f} {m.p50_ms:8.1f}"
        f" {m.p99_ms:8.1f} {m.p999_ms:8.1f} {m.ttfb_p50_ms:8.1f} {m.cpu_s_per_gib:9.2f}"
        f" {m.peak_rss_mib:8.0f} {m.errors:4d}"
    )


def print_cell(rows: list[Measurement]) -> None:
    first = rows[0]
    print(f"  {first.op} {size_label(first.size)} x{first.concurrency}:")
    print(HEADER)
    for row in rows:
        print(_row(row))


def ratios(summary: list[Measurement]) -> list[dict[str, Any]]:
    by_cell: dict[tuple[str, str, int, int], dict[str, Measurement]] = {}
    for m in summary:
        by_cell.setdefault((m.workload, m.op, m.size, m.concurrency), {})[m.contender] = m
    out = []
    for (workload, op, size, concurrency), cell in by_cell.items():
        for top, bottom in RATIOS:
            if top in cell and bottom in cell and cell[bottom].ops_per_s:
                out.append(
                    {
                        "workload": workload,
                        "op": op,
                        "size": size,
                        "concurrency": concurrency,
                        "contender": top,
                        "baseline": bottom,
                        "ratio": cell[top].ops_per_s / cell[bottom].ops_per_s,
                    }
                )
    return out


def print_ratios(summary: list[Measurement]) -> None:
    if not summary:
        return
    print("== medians over the runs")
    cells: dict[tuple[str, str, int, int], list[Measurement]] = {}
    for m in summary:
        cells.setdefault((m.workload, m.op, m.size, m.concurrency), []).append(m)
    for (workload, *_), rows in cells.items():
        print(f"  [{workload}]", end="")
        print_cell(rows)
    print("== ratios of median throughput (same cell, same run)")
    for r in ratios(summary):
        print(
            f"  [{r['workload']}] {r['op']:5} {size_label(r['size']):>6} x{r['concurrency']:<2}"
            f"  {r['contender']:9} / {r['baseline']:9} = {r['ratio']:5.2f}"
        )


def write(
    began: float,
    args: dict[str, Any],
    runs: list[dict[str, object]],
    summary: list[dict[str, object]],
    extra: dict[str, object],
) -> None:
    """Write ``results/peers-<time>.json`` and, if there are cells, a PNG beside it."""
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = RESULTS_DIR / time.strftime("peers-%Y%m%dT%H%M%SZ", time.gmtime(began))
    document = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
        "cpus": os.cpu_count(),
        "args": args,
        "runs": runs,
        "medians": summary,
        "extra": extra,
    }
    stem.with_suffix(".json").write_text(json.dumps(document, indent=1))
    print(f"results: {stem.with_suffix('.json')}")
    if summary:
        plot(summary, stem.with_suffix(".png"))
        print(f"plot: {stem.with_suffix('.png')}")


def plot(summary: list[dict[str, object]], path: Path) -> None:
    """Throughput against concurrency, one panel per (operation, size), a line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
    for m in summary:
        if m["workload"] not in ("matrix", "targets", "mixed"):
            continue
        key = (str(m["op"]), int(str(m["size"])))
        value = float(str(m["mib_per_s"] if key[1] >= MIB else m["ops_per_s"]))
        panels.setdefault(key, {}).setdefault(str(m["contender"]), []).append(
            (int(str(m["concurrency"])), value)
        )
    if not panels:
        return
    keys = sorted(panels, key=lambda k: (k[1], k[0]))
    columns = min(3, len(keys))
    rows = (len(keys) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for axis, key in zip(axes.flat, keys, strict=False):
        for contender, points in sorted(panels[key].items()):
            points.sort()
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=contender)
        axis.set_title(f"{key[0]} {size_label(key[1])}")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrency")
        axis.set_ylabel("MiB/s" if key[1] >= MIB else "ops/s")
        axis.grid(True, alpha=0.3)
    for axis in list(axes.flat)[len(keys) :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
