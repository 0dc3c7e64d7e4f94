"""The Citus plan of docs/scaling.md, checked against the real schema and the SQL.

Every table is classified: distributed by ``bucket_id`` (co-located), a reference table
(copied to every Citus node), or local to the coordinator. A distributed table carries
``bucket_id`` in its primary key, in its unique keys and in the foreign keys between
distributed tables, and every statement on one names the bucket (``bucket_id = $n``, or
the column in an INSERT's values), so that Citus routes it to one shard and a request's
transaction stays there. The statements that span every bucket on purpose (background
scans, queue claims, operator reads, the tenant quota's sum) are listed here and in
docs/scaling.md; no other statement may.
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
    "replication_queue", "backend_deletions", "bucket_usage", "lifecycle_transitions",
    "warmup_jobs",
}  # fmt: skip
REFERENCE = {
    "buckets", "access_keys", "users", "sites", "backends", "links", "placement_policies",
    "quotas", "admin_tokens", "worker_controls", "link_egress", "retired_keys",
}  # fmt: skip
# link_shares: every node writes its demand every second; the coordinator keeps it.
LOCAL = {"schema_migrations", "worker_progress", "link_shares"}
# The modules on the request path of every S3 object operation (usage: in every commit;
# access tiering: every GET in a bucket that has it).
HOT_PATH = (
    "metadata/objects.py", "metadata/listing.py", "metadata/multipart.py", "metadata/usage.py",
    "metadata/access_tiering.py",
)  # fmt: skip
# The other modules whose SQL touches distributed tables: workers, restores, operators.
BACKGROUND = (
    "metadata/replication.py", "metadata/deletions.py", "metadata/lifecycle.py",
    "metadata/restores.py", "metadata/ledger.py", "metadata/buckets.py", "metadata/topology.py",
    "metadata/warmup.py",
)  # fmt: skip
# Not checked here: metadata/keys.py names its tables at run time (key rotation's scans of
# object_versions and multipart_uploads span every bucket; its re-wrap names the bucket).

# Functions with a statement over every bucket (every shard), by design.
MULTI_SHARD = {
    # gc's scans for dead and abandoned versions; each is then reaped on its shard.
    "metadata/objects.py": {"dead_versions", "placements_of_pending"},
    # Operator reads; and the tenant's hard quota, a sum over its buckets' counters.
    "metadata/usage.py": {"usage", "recompute"},
    # The tenant's hard quota: a sum over its buckets' counters (migrations/0015).
    "migrations (SQL functions)": {"reserve_usage"},
    # Queue claims (FOR UPDATE SKIP LOCKED: per shard on Citus); operator views and actions.
    "metadata/replication.py": {"claim", "pending_count", "stats", "failures", "retry_now",
                                "purge"},
    "metadata/deletions.py": {"claim"},
    # The lifecycle pass's list of transitions under way; their totals (admin API, metrics).
    "metadata/lifecycle.py": {"transitions", "under_way"},
    # The lifecycle pass's scan for versions of buckets with access tiering due a tier down.
    "metadata/access_tiering.py": {"due"},
    # Lapsed restored copies, retired in batches (per shard on Citus, like the claims).
    "metadata/restores.py": {"expire"},
    # Re-placement and scrub passes, orphan checks, operator views.
    "metadata/ledger.py": {"page", "placements_of", "only_on", "bytes_per_backend",
                           "bytes_per_tier", "placements", "mark_verified", "unreferenced"},
    # Placement capacity: bytes per backend; whether a backend still holds anything before
    # it is deleted (an operator action).
    "metadata/topology.py": {"used_bytes", "delete_backend"},
    # Warm-up jobs: operator views (the admin API names a job by id alone) and metrics; the
    # lifecycle pass's look for jobs whose time ran out (each then ended on its shard).
    "metadata/warmup.py": {"jobs", "active", "job", "expire"},
}  # fmt: skip

_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+([a-z_]+)", re.IGNORECASE)
# A statement Citus can route to the bucket's shard: it filters on the bucket given as a
# parameter, or inserts the bucket's rows with their bucket_id.
_ROUTED = re.compile(
    r"\bbucket_id\s*=\s*(?:\$\d|ANY\s*\(\s*\$\d)"
    r"|\bINSERT\s+INTO\s+[a-z_]+(?:\s+AS\s+[a-z_]+)?\s*\([^)]*\bbucket_id\b[^)]*\)\s*VALUES",
    re.IGNORECASE,
)
# What a hot-path statement over every shard may never be: a write or a row lock.
_WRITE = re.compile(r"\b(?:INSERT|UPDATE|DELETE|FOR\s+UPDATE|FOR\s+SHARE)\b", re.IGNORECASE)


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
    assert {table for table in DISTRIBUTED if DISTRIBUTION_COLUMN not in keys[table]} == set()


async def test_unique_and_foreign_keys_include_the_distribution_column(
    pool: asyncpg.Pool,
) -> None:
    """Citus enforces a unique index or a foreign key between distributed tables only when
    it includes the distribution column."""
    rows = await pool.fetch(
        "SELECT c.relname AS table_name, i.relname AS name,"
        " array_agg(a.attname::text) AS columns"
        " FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid"
        " JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(x.indkey)"
        " WHERE x.indisunique AND c.relname = ANY($1::text[]) GROUP BY 1, 2",
        sorted(DISTRIBUTED),
    )
    assert rows, "the distributed tables have unique keys"
    unique_gaps = [r["name"] for r in rows if DISTRIBUTION_COLUMN not in r["columns"]]
    foreign = await pool.fetch(
        "SELECT conname, conrelid::regclass::text AS source, confrelid::regclass::text AS target,"
        " (SELECT array_agg(attname::text) FROM pg_attribute"
        "  WHERE attrelid = conrelid AND attnum = ANY(conkey)) AS columns"
        " FROM pg_constraint WHERE contype = 'f'"
    )
    between = [f for f in foreign if {f["source"], f["target"]} <= DISTRIBUTED]
    assert len(between) == 4, "placements, queue, transitions -> versions; parts -> uploads"
    foreign_gaps = [f["conname"] for f in between if DISTRIBUTION_COLUMN not in f["columns"]]
    assert (unique_gaps, foreign_gaps) == ([], [])


def _fragments(tree: ast.Module) -> dict[str, str]:
    """Module-level strings, f-strings included: queries are often built from shared pieces."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and (text := _text(node.value, found)) is not None:
            found.update({t.id: text for t in node.targets if isinstance(t, ast.Name)})
    return found


def _text(node: ast.expr, fragments: dict[str, str]) -> str | None:
    """The string an expression builds from literals, fragments, ``+`` and f-strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return fragments.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, fragments), _text(node.right, fragments)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.FormattedValue):
        return _text(node.value, fragments)
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


def _unrouted(modules: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
    """Per module and function, the statements on a distributed table Citus cannot route
    to one shard."""
    found: dict[str, dict[str, list[str]]] = {}
    for module in modules:
        for function, sql in _statements(module):
            touched = {t.lower() for t in _TABLE.findall(sql)} & DISTRIBUTED
            if touched and not _ROUTED.search(sql):
                found.setdefault(module, {}).setdefault(function, []).append(sql)
    return found


def _names(found: dict[str, dict[str, list[str]]]) -> dict[str, set[str]]:
    return {module: set(functions) for module, functions in found.items()}


def test_hot_path_queries_filter_on_the_distribution_column() -> None:
    found = _unrouted(HOT_PATH)
    assert _names(found) == {m: MULTI_SHARD[m] for m in HOT_PATH if m in MULTI_SHARD}
    # What the request path reads across shards it only reads: no write, no row lock.
    writes = [f for fs in found.values() for f, sqls in fs.items() if any(map(_WRITE.search, sqls))]
    assert writes == []


def test_background_queries_filter_on_it_unless_they_scan_every_bucket() -> None:
    found = _unrouted(BACKGROUND)
    assert _names(found) == {m: MULTI_SHARD[m] for m in BACKGROUND if m in MULTI_SHARD}


def test_the_routing_check_can_fail() -> None:
    unrouted = [
        "SELECT state FROM object_versions WHERE id = $1",
        "UPDATE placements SET state = 'ok' WHERE version_pk = $1",
        "DELETE FROM backend_deletions WHERE reserved_bucket_id = $1",
        "SELECT * FROM placements p JOIN object_versions v ON v.bucket_id = p.bucket_id",
        "INSERT INTO backend_deletions (bucket_id) SELECT bucket_id FROM placements",
    ]
    routed = [
        "SELECT state FROM object_versions WHERE bucket_id = $1 AND id = $2",
        "UPDATE placements SET state = 'ok' WHERE v.bucket_id = $3::bigint",
        "DELETE FROM backend_deletions WHERE bucket_id = ANY($1::bigint[])",
        "INSERT INTO bucket_usage AS u (bucket_id, bytes) VALUES ($1, $2)",
    ]
    assert [bool(_ROUTED.search(q)) for q in unrouted + routed] == [False] * 5 + [True] * 4


# In a SQL function, the bucket is its first argument, p_bucket_id.
_ROUTED_IN_FUNCTION = re.compile(
    r"\bbucket_id\s*=\s*p_bucket_id\b"
    r"|\bINSERT\s+INTO\s+[a-z_]+(?:\s+AS\s+[a-z_]+)?\s*\([^)]*\bbucket_id\b[^)]*\)\s*"
    r"(?:VALUES|SELECT\s+(?:DISTINCT\s+)?p_bucket_id\b)",
    re.IGNORECASE,
)


async def test_sql_functions_take_the_bucket_first_and_name_it_in_every_statement(
    pool: asyncpg.Pool,
) -> None:
    """Citus delegates a function call to one shard by an argument (here the first,
    ``p_bucket_id``); every statement inside must then stay on that shard."""
    functions = await pool.fetch(
        "SELECT p.proname, p.prosrc, p.proargnames FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
    )
    assert {f["proname"] for f in functions} >= {"begin_version", "commit_version"}
    unrouted, first_arguments = set(), set()
    for function in functions:
        for statement in function["prosrc"].split(";"):
            touched = {t.lower() for t in _TABLE.findall(statement)} & DISTRIBUTED
            if touched:
                first_arguments.add((function["proargnames"] or [None])[0])
            if touched and not _ROUTED_IN_FUNCTION.search(statement):
                unrouted.add(function["proname"])
                assert not _WRITE.search(statement), "a multi-shard statement only reads"
    assert first_arguments == {"p_bucket_id"}
    assert unrouted == MULTI_SHARD["migrations (SQL functions)"]


def test_the_multi_shard_statements_are_written_down_in_the_scaling_doc() -> None:
    doc = (ROOT / "docs" / "scaling.md").read_text()
    section = doc.split("### Statements over every shard", 1)[1].split("\n## ", 1)[0]
    missing = [f"{m}:{f}" for m, fs in MULTI_SHARD.items() for f in fs if f"`{f}`" not in section]
    assert missing == []
