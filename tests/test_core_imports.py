"""The import direction of the house: adapters (web, cli, render) above use cases (operations, serving, planning,
curation) above the core; nothing below imports the web stack.

Every module's imports are read with ``ast`` (also imports inside functions), so a lazy import cannot slip past."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import geoserver

PACKAGE = Path(geoserver.__file__).parent
WEB_STACK = ("flask", "werkzeug", "folium", "geoserver.web", "geoserver.render")
USE_CASES = ("geoserver.operations", "geoserver.serving", "geoserver.planning", "geoserver.curation")


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def offending(path: Path, forbidden) -> list[str]:
    return sorted(name for name in imports_of(path)
                  if any(name == f or name.startswith(f + ".") for f in forbidden))


def test_the_walk_sees_every_core_module():
    names = {module_name(p) for p in modules("core")}
    assert {"geoserver.core.service", "geoserver.core.planning", "geoserver.core.store", "geoserver.core.query"} <= names
    assert imports_of(PACKAGE / "core" / "planning.py") >= {"geoserver.core.coverage", "geoserver.core.siting"}


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_core_imports_no_web_stack_and_no_use_cases(path):
    assert offending(path, WEB_STACK + USE_CASES) == []


@pytest.mark.parametrize("folder", ["operations", "serving", "planning", "curation", "storage"])
def test_use_cases_and_storage_import_no_web_stack(folder):
    if not (PACKAGE / folder).is_dir():
        pytest.skip(f"geoserver/{folder} does not exist yet")
    bad = {module_name(p): offending(p, ("flask", "werkzeug", "folium", "geoserver.web")) for p in modules(folder)}
    assert {name: found for name, found in bad.items() if found} == {}


def test_use_cases_import_no_renderers():
    """Use cases return data; drawing it (folium, HTML reports) is the adapters' job."""
    bad = {module_name(p): offending(p, ("geoserver.render",))
           for folder in ("operations", "serving", "planning", "curation") for p in modules(folder)}
    assert {name: found for name, found in bad.items() if found} == {}


def test_core_and_use_cases_load_without_the_web_stack():
    code = ("import sys, geoserver.core.service, geoserver.core.query, geoserver.core.nearest, "
            "geoserver.operations; geoserver.operations.load_all(); "
            "bad = [m for m in ('flask', 'folium', 'werkzeug') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
