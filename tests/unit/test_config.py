"""Configuration loading: the example file, secrets by reference, and env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, from_mapping, load

ROOT = Path(__file__).resolve().parent.parent.parent


def test_example_config_loads() -> None:
    config = load(ROOT / "config.example.yaml", env={})
    assert config.server.port == 9000
    assert config.default_backend == "local"
    assert config.embedded_database


def test_no_config_means_embedded_database_and_local_disk(tmp_path: Path) -> None:
    config = load(None, env={"SKYBRIDGE_DATA_DIR": str(tmp_path)})
    assert config.embedded_database
    assert [(b.name, b.driver, b.path) for b in config.backends] == [
        ("local", "localfs", tmp_path / "backends" / "local")
    ]


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "SKYBRIDGE_DATABASE_URL": "postgresql://x/y",
        "SKYBRIDGE_ROOT_ACCESS_KEY": "AK",
        "SKYBRIDGE_ROOT_SECRET_KEY": "SK",
    }
    config = from_mapping({"database": {"url": "postgresql://ignored"}}, env)
    assert config.database_url == "postgresql://x/y"
    assert (config.root_access_key, config.root_secret_key) == ("AK", "SK")


def test_secrets_by_reference(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    raw = {
        "backends": [
            {"name": "c", "driver": "s3", "endpoint": "http://e", "bucket": "b",
             "access_key_env": "AKV", "secret_key_file": str(secret_file)},
        ],
    }  # fmt: skip
    backend = from_mapping(raw, {"AKV": "from-env"}).backends[0]
    assert (backend.access_key, backend.secret_key) == ("from-env", "from-file")


@pytest.mark.parametrize(
    "raw",
    [
        {"backends": [{"name": "x", "driver": "ftp"}]},
        {"backends": [{"name": "x", "driver": "s3"}]},
        {"default_backend": "missing"},
        {"backends": [{"name": "c", "driver": "s3", "endpoint": "e", "bucket": "b",
                       "secret_key_env": "UNSET_VARIABLE"}]},
        {"logging": {"access_log": "no"}},
    ],
)  # fmt: skip
def test_bad_config_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        from_mapping(raw, {})


def test_the_example_documents_every_key() -> None:
    """Every configuration field appears in config.example.yaml (as a key or a comment)."""
    import dataclasses

    from gateway import config as c

    text = (ROOT / "config.example.yaml").read_text()
    classes = [c.GatewayConfig, c.ServerConfig, c.BackendConfig, c.LinkConfig, c.GcConfig,
               c.ReplicationConfig, c.TlsConfig, c.LoggingConfig, c.AdminConfig]  # fmt: skip
    internal = {"migrations_dir", "database_url", "database_pool_min", "database_pool_max",
                "root_access_key", "root_secret_key",
                "access_key", "secret_key", "backends", "server", "gc", "replication", "tls",
                "links", "placement_policies", "logging"}  # fmt: skip
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in classes
        for f in dataclasses.fields(cls)
        if f.name not in internal and f"{f.name}:" not in text
    ]
    assert missing == []


def test_the_example_with_links_and_policies_loads(tmp_path: Path) -> None:
    import yaml

    raw = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    raw["links"] = [{"name": "l", "site": "local", "backend": "local", "rtt_ms": 3}]
    raw["placement_policies"] = [{"name": "default", "rules": []}]
    config = from_mapping(raw, {})
    assert config.links[0].rtt_ms == 3
    assert config.replication.concurrency == 4
