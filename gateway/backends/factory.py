"""Building drivers from configuration."""

from __future__ import annotations

from gateway.backends.base import Backend
from gateway.backends.localfs import LocalFsBackend
from gateway.backends.s3 import S3Backend
from gateway.config import BackendConfig


async def open_backend(config: BackendConfig) -> Backend:
    if config.driver == "localfs":
        assert config.path is not None
        return LocalFsBackend(config.name, config.path)
    assert config.endpoint is not None
    assert config.bucket is not None
    backend = S3Backend(
        config.name,
        endpoint_url=config.endpoint,
        bucket=config.bucket,
        access_key=config.access_key or "",
        secret_key=config.secret_key or "",
        region=config.region,
        key_prefix=config.key_prefix,
        verify_etag=config.etag_is_md5,
        read_timeout_s=config.read_timeout_s,
    )
    await backend.start()
    return backend
