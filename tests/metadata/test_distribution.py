"""The Citus plan of docs/scaling.md, checked against the real schema and the hot-path SQL.

Every table is classified: distributed by ``bucket_id`` (co-located), a reference table
(copied to every Citus node), or local to the coordinator. A distributed table must carry
``bucket_id`` in its primary key, and every hot-path query on one must filter on it, so
that a request's transaction stays on one shard.

The schema does not meet the plan yet. The gaps are listed here exactly (and in
docs/scaling.md, "What the schema still needs"): a new gap fails this test, and so does a
gap that was closed without crossing it off both lists.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent.parent
DISTRIBUTION_COLUMN = "bucket_id"
DISTRIBUTED = {
    "object_versions", "placements", "multipart_uploads", "multipart_parts",
    "replication_queue", "backend_deletions", "usage_counters", "lifecycle_transitions",
    "warmup_jobs",
}  # fmt: skip
REFERENCE = {
    "buckets", "access_keys", "users", "sites", "backends", "links", "placement_policies",
    "quotas", "admin_tokens", "worker_controls", "link_egress", "retired_keys",
}  # fmt: skip
LOCAL = {"schema_migrations", "worker_progress"}
# The modules on the request path of every S3 object operation (usage: in every commit).
HOT_PATH = (
    "metadata/objects.py", "metadata/listing.py", "metadata/multipart.py", "metadata/usage.py",
)  # fmt: skip

# Distributed tables whose primary key lacks bucket_id (or that lack the column).
KNOWN_KEY_GAPS = {
    "object_versions": "PRIMARY KEY (id)",
    "placements": "no bucket_id column",
    "multipart_uploads": "PRIMARY KEY (id)",
    "multipart_parts": "no bucket_id column",
    "replication_queue": "no bucket_id column",
    "backend_deletions": "no bucket_id column (reserved_bucket_id is nullable)",
    "usage_counters": "no bucket_id column (scope, scope_id text)",
    "lifecycle_transitions": "no bucket_id column (keyed by version_pk)",
}
# Hot-path functions whose SQL touches a distributed table without naming bucket_id.
KNOWN_QUERY_GAPS = {
    "metadata/objects.py": {
        # Request path: by version id (object_versions.id) or version_pk only.
        "_placements", "_release_pending", "_retire_version", "_settle_placements",
        "commit_pending", "fail_write", "get_by_pk", "insert_pending", "set_acl", "set_tags",
        # gc: scans across buckets (fine as multi-shard reads) and reaps by version id.
        "dead_versions", "placements_of_pending", "reap_version",
    },
    "metadata/multipart.py": {
        "_complete_in", "_put_part", "_queue_parts", "add_part_backend", "finish", "parts",
    },
    # Bucket and tenant counters in one transaction: the one cross-shard write of a commit.
    "metadata/usage.py": {"_bump_both", "usage"},
}  # fmt: skip

_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+([a-z_]+)", re.IGNORECASE)


async def test_every_table_is_classified(pool: asyncpg.Pool) -> None:
    tables = {r["table_name"] for r in await pool.fetch(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")}  # fmt: skip
    assert tables == DISTRIBUTED | REFERENCE | LOCAL


async def _primary_keys(pool: asyncpg.Pool) -> dict[str, set[str]]:
    rows = await pool.fetch(
        "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage kcu"
        "   ON kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name"
        " WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY'"
    )
    keys: dict[str, set[str]] = {}
    for row in rows:
        keys.setdefault(row["table_name"], set()).add(row["column_name"])
    return keys


async def test_distributed_tables_key_on_the_distribution_column(pool: asyncpg.Pool) -> None:
    keys = await _primary_keys(pool)
    gaps = {table for table in DISTRIBUTED if DISTRIBUTION_COLUMN not in keys[table]}
    assert gaps == set(KNOWN_KEY_GAPS)


def _fragments(tree: ast.Module) -> dict[str, str]:
    """Module-level string constants: queries are often built from shared pieces."""
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets if isinstance(target, ast.Name)
    }  # fmt: skip


def _text(node: ast.expr, fragments: dict[str, str]) -> str | None:
    """The string an expression builds from literals, fragments, ``+`` and f-strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return fragments.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, fragments), _text(node.right, fragments)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v, fragments) or " ? " for v in node.values)
    return None


def _statements(module: str) -> list[tuple[str, str]]:
    """(function, SQL statement) for every statement a function of ``module`` runs."""
    tree = ast.parse((ROOT / module).read_text())
    fragments = _fragments(tree)
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        texts = {t for n in ast.walk(function) if isinstance(n, ast.expr)
                 and (t := _text(n, fragments)) and _SQL_START.match(t)}  # fmt: skip
        # A piece of a longer statement is not a statement of its own.
        found += [(function.name, t) for t in texts if not any(t in u != t for u in texts)]
    return found


def test_hot_path_queries_filter_on_the_distribution_column() -> None:
    gaps: dict[str, set[str]] = {}
    for module in HOT_PATH:
        for function, sql in _statements(module):
            touched = {t.lower() for t in _TABLE.findall(sql)} & DISTRIBUTED
            if touched and DISTRIBUTION_COLUMN not in sql:
                gaps.setdefault(module, set()).add(function)
    assert gaps == KNOWN_QUERY_GAPS


def test_the_gaps_are_written_down_in_the_scaling_doc() -> None:
    doc = (ROOT / "docs" / "scaling.md").read_text()
    section = doc.split("## What the schema still needs", 1)[1]
    missing = [t for t in KNOWN_KEY_GAPS if f"`{t}`" not in section]
    missing += [f for fs in KNOWN_QUERY_GAPS.values() for f in fs if f"`{f}`" not in section]
    assert missing == []
