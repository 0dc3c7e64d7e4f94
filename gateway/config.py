"""Configuration: one YAML file plus a few environment overrides, read at start only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PORT = 9000
DEFAULT_ADMIN_PORT = 9001
DEFAULT_REGION = "us-east-1"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    domain: str | None = None
    region: str = DEFAULT_REGION
    tls: TlsConfig | None = None
    shutdown_timeout_s: float = 30.0
    # Keep-alive limits (gateway/s3/connections.py).
    max_header_bytes: int = 65536
    max_headers: int = 128
    idle_timeout_s: float = 75.0
    # Connections one process serves at once; null = unlimited.
    max_connections: int | None = None


@dataclass(frozen=True, slots=True)
class BackendConfig:
    name: str
    driver: str
    path: Path | None = None
    endpoint: str | None = None
    bucket: str | None = None
    region: str = DEFAULT_REGION
    access_key: str | None = None
    secret_key: str | None = None
    key_prefix: str = ""
    # Seeded into the database at first start; the database is authoritative after.
    site: str = "local"
    tier: str = "hot"
    state: str = "active"
    capacity_bytes: int | None = None
    # s3: a write whose ETag is an MD5 other than that of the bytes sent fails.
    etag_is_md5: bool = True
    # s3: seconds without a byte from the store before a call fails.
    read_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class LinkConfig:
    name: str
    site: str
    backend: str
    position: int = 0
    bandwidth_bytes_per_s: int | None = None
    max_concurrency: int | None = None
    rtt_ms: float = 0.0
    cost_per_gib: float = 0.0
    # The backend's address as seen over this path (the dedicated line).
    endpoint: str | None = None
    # A read whose first byte takes longer fails over to the next replica.
    first_byte_timeout_s: float = 10.0
    # Consecutive failures that open the link's circuit, and how long it then stays open.
    breaker_failures: int = 3
    breaker_cooldown_s: float = 5.0
    # Bytes per UTC day that replication may move over this link (None: no limit).
    # Seeded into the database at first start; managed through the admin API after.
    egress_budget_bytes_per_day: int | None = None


@dataclass(frozen=True, slots=True)
class ReplicationConfig:
    interval_s: float = 1.0
    # A synchronous target that takes no data for this long is dropped from the write; a
    # queued copy whose body does not move for this long is given up and retried later.
    stall_timeout_s: float = 10.0
    retry_base_delay_s: float = 1.0
    retry_max_delay_s: float = 300.0
    concurrency: int = 4
    # First-byte timeout of the implicit link to a backend with no configured link.
    first_byte_timeout_s: float = 10.0
    # Hedged reads: a GET whose first byte is later than its link's observed p95 also asks
    # the next replica, and the first to answer serves it (costs a second read then).
    hedge_reads: bool = False
    # Seconds between re-placement passes (bringing versions in line with policies).
    replacement_interval_s: float = 60.0
    # Seconds between active probes of every link (0 disables them).
    probe_interval_s: float = 5.0
    # A claimed copy is hidden from other nodes this long, renewed while it runs: a node
    # that dies mid-copy delays it by at most this much.
    lease_s: float = 60.0


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin listener. Without a configured token, ``serve`` makes one and keeps it in
    the data directory."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_ADMIN_PORT
    token: str | None = None
    tls: TlsConfig | None = None


@dataclass(frozen=True, slots=True)
class EncryptionConfig:
    """Envelope encryption. The key ring (master keys) comes from ``key_ring_env`` (a JSON
    document in that variable) or ``key_ring_file``; without either, ``serve`` makes one
    in the data directory. Every node of a deployment needs the same key ring."""

    key_ring_file: Path | None = None
    key_ring_env: str | None = None
    # Encrypt every object before it leaves the gateway, whatever the client asked.
    encrypt_everywhere: bool = False
    # SSE-C over plain HTTP exposes the customer's key: refused unless this is set (tests).
    allow_sse_c_over_http: bool = False


@dataclass(frozen=True, slots=True)
class GcConfig:
    interval_s: float = 30.0
    # A pending version older than this belongs to a writer that died.
    pending_timeout_s: float = 3600.0
    # Bytes of a replaced version outlive it this long, for readers still streaming it.
    deletion_delay_s: float = 300.0
    # A multipart part whose write outlives this is presumed abandoned.
    part_grace_s: float = 86400.0


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    # How often each node tries a lifecycle pass (one node runs it at a time): it checks the
    # transitions under way and the restored copies.
    interval_s: float = 60.0
    # How often such a pass also walks every version of the buckets with lifecycle rules.
    scan_interval_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    # One JSON line per S3 request on the skybridge.access logger.
    access_log: bool = True


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    data_dir: Path
    database_url: str | None = None
    # Connections each serving process keeps to PostgreSQL.
    database_pool_min: int = 2
    database_pool_max: int = 20
    site: str = "local"
    server: ServerConfig = field(default_factory=ServerConfig)
    backends: tuple[BackendConfig, ...] = ()
    default_backend: str = "local"
    root_access_key: str | None = None
    root_secret_key: str | None = None
    gc: GcConfig = field(default_factory=GcConfig)
    links: tuple[LinkConfig, ...] = ()
    # Raw policy documents (see gateway/placement/policy_io.py), seeded at first start.
    placement_policies: tuple[dict[str, Any], ...] = ()
    default_policy: str = "default"
    replication: ReplicationConfig = field(default_factory=ReplicationConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    migrations_dir: Path = Path(__file__).resolve().parent.parent / "migrations"

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None


def _secret(section: Mapping[str, Any], name: str, env: Mapping[str, str]) -> str | None:
    """A secret given inline, by environment variable (``NAME_env``) or file (``NAME_file``)."""
    if section.get(f"{name}_env"):
        value = env.get(str(section[f"{name}_env"]))
        if value is None:
            raise ConfigError(f"environment variable {section[f'{name}_env']} is not set")
        return value
    if section.get(f"{name}_file"):
        return Path(str(section[f"{name}_file"])).read_text().strip()
    value = section.get(name)
    return None if value is None else str(value)


def backend_config(raw: Mapping[str, Any], data_dir: Path, env: Mapping[str, str]) -> BackendConfig:
    driver = str(raw.get("driver", ""))
    name = str(raw.get("name", ""))
    if not name or driver not in ("localfs", "s3"):
        raise ConfigError(f"backend {name!r}: a name and a driver (localfs or s3) are required")
    base = BackendConfig(
        name=name,
        driver=driver,
        site=str(raw.get("site", "local")),
        tier=str(raw.get("tier", "hot")),
        state=str(raw.get("state", "active")),
        capacity_bytes=int(raw["capacity_bytes"]) if raw.get("capacity_bytes") else None,
    )
    if driver == "localfs":
        return replace(base, path=Path(str(raw.get("path") or data_dir / "backends" / name)))
    if not raw.get("endpoint") or not raw.get("bucket"):
        raise ConfigError(f"backend {name!r}: s3 needs endpoint and bucket")
    return replace(
        base,
        endpoint=str(raw["endpoint"]),
        bucket=str(raw["bucket"]),
        region=str(raw.get("region", DEFAULT_REGION)),
        access_key=_secret(raw, "access_key", env),
        secret_key=_secret(raw, "secret_key", env),
        key_prefix=str(raw.get("key_prefix", "")),
        etag_is_md5=bool(raw.get("etag_is_md5", True)),
        read_timeout_s=float(raw.get("read_timeout_s", 30.0)),
    )


def _replication(raw: Mapping[str, Any]) -> ReplicationConfig:
    values = {k: float(v) for k, v in raw.items() if k not in ("concurrency", "hedge_reads")}
    hedge = raw.get("hedge_reads", False)
    if not isinstance(hedge, bool):
        raise ConfigError("replication.hedge_reads must be true or false")
    return ReplicationConfig(
        concurrency=int(raw.get("concurrency", 4)), hedge_reads=hedge, **values
    )


def _link(raw: Mapping[str, Any]) -> LinkConfig:
    try:
        return LinkConfig(**{k: v for k, v in raw.items()})
    except TypeError as exc:
        raise ConfigError(f"link {raw.get('name')!r}: {exc}") from None


def _logging(raw: Mapping[str, Any]) -> LoggingConfig:
    access_log = raw.get("access_log", True)
    if not isinstance(access_log, bool):
        raise ConfigError("logging.access_log must be true or false")
    return LoggingConfig(access_log=access_log)


def _tls(raw: Mapping[str, Any] | None) -> TlsConfig | None:
    if not raw:
        return None
    if not raw.get("cert_file") or not raw.get("key_file"):
        raise ConfigError("tls needs cert_file and key_file")
    return TlsConfig(Path(str(raw["cert_file"])), Path(str(raw["key_file"])))


def _server(raw: Mapping[str, Any]) -> ServerConfig:
    max_connections = raw.get("max_connections")
    return ServerConfig(
        host=str(raw.get("host", "127.0.0.1")),
        port=int(raw.get("port", DEFAULT_PORT)),
        workers=int(raw.get("workers", 1)),
        domain=raw.get("domain") or None,
        region=str(raw.get("region", DEFAULT_REGION)),
        tls=_tls(raw.get("tls")),
        shutdown_timeout_s=float(raw.get("shutdown_timeout_s", 30.0)),
        max_header_bytes=int(raw.get("max_header_bytes", 65536)),
        max_headers=int(raw.get("max_headers", 128)),
        idle_timeout_s=float(raw.get("idle_timeout_s", 75.0)),
        max_connections=None if max_connections is None else int(max_connections),
    )


def _admin(raw: Mapping[str, Any], env: Mapping[str, str]) -> AdminConfig:
    return AdminConfig(
        enabled=bool(raw.get("enabled", True)),
        host=str(raw.get("host", "127.0.0.1")),
        port=int(raw.get("port", DEFAULT_ADMIN_PORT)),
        token=env.get("SKYBRIDGE_ADMIN_TOKEN") or _secret(raw, "token", env),
        tls=_tls(raw.get("tls")),
    )


def _encryption(raw: Mapping[str, Any]) -> EncryptionConfig:
    path = raw.get("key_ring_file")
    return EncryptionConfig(
        key_ring_file=Path(str(path)) if path else None,
        key_ring_env=raw.get("key_ring_env") or None,
        encrypt_everywhere=bool(raw.get("encrypt_everywhere", False)),
        allow_sse_c_over_http=bool(raw.get("allow_sse_c_over_http", False)),
    )


def from_mapping(raw: Mapping[str, Any], env: Mapping[str, str]) -> GatewayConfig:
    data_dir = Path(env.get("SKYBRIDGE_DATA_DIR") or raw.get("data_dir") or "skybridge-data")
    database = raw.get("database") or {}
    backends = tuple(backend_config(b, data_dir, env) for b in raw.get("backends") or ())
    if not backends:
        backends = (BackendConfig("local", "localfs", data_dir / "backends" / "local"),)
    default_backend = str(raw.get("default_backend") or backends[0].name)
    if default_backend not in {b.name for b in backends}:
        raise ConfigError(f"default_backend {default_backend!r} is not a configured backend")
    root = raw.get("root") or {}
    site = str(raw.get("site", "local"))
    if not raw.get("backends"):
        backends = tuple(replace(b, site=site) for b in backends)
    config = GatewayConfig(
        data_dir=data_dir,
        database_url=env.get("SKYBRIDGE_DATABASE_URL") or _secret(database, "url", env),
        database_pool_min=int(database.get("pool_min", 2)),
        database_pool_max=int(database.get("pool_max", 20)),
        site=site,
        server=_server(raw.get("server") or {}),
        backends=backends,
        default_backend=default_backend,
        root_access_key=env.get("SKYBRIDGE_ROOT_ACCESS_KEY") or _secret(root, "access_key", env),
        root_secret_key=env.get("SKYBRIDGE_ROOT_SECRET_KEY") or _secret(root, "secret_key", env),
        gc=GcConfig(**{k: float(v) for k, v in (raw.get("gc") or {}).items()}),
        links=tuple(_link(link) for link in raw.get("links") or ()),
        placement_policies=tuple(raw.get("placement_policies") or ()),
        default_policy=str(raw.get("default_policy", "default")),
        replication=_replication(raw.get("replication") or {}),
        admin=_admin(raw.get("admin") or {}, env),
        logging=_logging(raw.get("logging") or {}),
        encryption=_encryption(raw.get("encryption") or {}),
        lifecycle=LifecycleConfig(**{k: float(v) for k, v in (raw.get("lifecycle") or {}).items()}),
    )
    return config


def load(path: Path | None, env: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if env is None else env
    if path is None and env.get("SKYBRIDGE_CONFIG"):
        path = Path(env["SKYBRIDGE_CONFIG"])
    raw: Mapping[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(path.read_text())
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        raw = loaded or {}
    return from_mapping(raw, env)


def with_database(config: GatewayConfig, url: str) -> GatewayConfig:
    return replace(config, database_url=url)
