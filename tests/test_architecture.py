"""The shape of the code: imports only downward (the import-linter contract in setup.cfg),
no import circles at all, pure science apart, and a Processor that stays light."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("awe", "sequences")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)


def test_the_layer_contract_holds() -> None:
    bin_dir = str(Path(sys.executable).parent)
    lint_imports = shutil.which("lint-imports", path=bin_dir + os.pathsep + os.environ["PATH"])
    assert lint_imports, "lint-imports is missing: pip install -e '.[test]'"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_circles(graph: grimp.ImportGraph) -> None:
    """Every import a -> b of AWE's own modules: b never leads back to a."""
    ours = [m for m in graph.modules if m.split(".")[0] in PACKAGES]
    circles = []
    for importer in ours:
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.split(".")[0] in PACKAGES:
                back = graph.find_shortest_chain(importer=imported, imported=importer)
                if back:
                    circles.append(" -> ".join((importer, *back)))
    assert not circles, "\n".join(circles)


def test_science_imports_nothing_else_from_awe(graph: grimp.ImportGraph) -> None:
    science = graph.find_descendants("awe.science") | {"awe.science"}
    outside = {
        (module, imported)
        for module in science
        for imported in graph.find_modules_directly_imported_by(module)
        if imported.split(".")[0] in PACKAGES and imported not in science
    }
    assert outside == set()


def test_the_processor_is_sql_free_and_light(graph: grimp.ImportGraph, tmp_path: Path) -> None:
    assert not graph.direct_import_exists(importer="awe.dpu.processor", imported="sqlalchemy")
    # Creating the session's Processor (what the awe> prompt does at start) loads no
    # SQLAlchemy: the database is opened on first use.
    code = (
        "import sys; from awe.dpu import Processor; Processor(session_log='', username='x'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'numpy')))"
    )
    env = {**os.environ, "AWE_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
