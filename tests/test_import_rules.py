"""The layering of STYLE.md, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules(*parts: str) -> list[Path]:
    return sorted((ROOT.joinpath(*parts)).rglob("*.py"))


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in files:
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_the_rule_checker_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncpg\nfrom aiohttp import web\nfrom gateway.x import y\n")
    assert {"asyncpg", "aiohttp.web", "gateway.x"} <= _imports(sample)


def test_metadata_never_imports_gateway() -> None:
    assert _offenders(_modules("metadata"), ("gateway",)) == []


def test_handlers_import_neither_asyncpg_nor_aiobotocore() -> None:
    files = _modules("gateway", "s3")
    assert files, "the S3 edge must exist"
    assert _offenders(files, ("asyncpg", "aiobotocore", "botocore")) == []


def test_drivers_import_neither_metadata_nor_aiohttp_web() -> None:
    files = _modules("gateway", "backends")
    assert _offenders(files, ("metadata", "aiohttp.web", "gateway.s3", "gateway.services")) == []


@pytest.mark.parametrize(
    "module",
    ["gateway/services/context.py", "gateway/services/streams.py", "gateway/checksums.py",
     "gateway/sigv4.py", "gateway/s3/chunked.py", "gateway/placement/model.py",
     "gateway/placement/engine.py", "gateway/placement/policy_io.py"],
)  # fmt: skip
def test_pure_modules_import_neither_aiohttp_nor_asyncpg(module: str) -> None:
    assert _offenders([ROOT / module], ("aiohttp", "asyncpg", "aiobotocore")) == []


def test_services_see_no_web_request() -> None:
    assert _offenders(_modules("gateway", "services"), ("aiohttp", "gateway.s3")) == []
