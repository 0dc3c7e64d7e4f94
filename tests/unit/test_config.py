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
    ],
)  # fmt: skip
def test_bad_config_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        from_mapping(raw, {})
