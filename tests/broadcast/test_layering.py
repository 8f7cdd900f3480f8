"""broadcast/ knows nothing of defects: no module of it imports the defect app."""

import ast

import pytest

from tests.helpers import ROOT

MODULES = sorted((ROOT / "broadcast").rglob("*.py"))


def imported(path) -> set[str]:
    """The top-level package of every module `path` imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_broadcast_module_imports_the_defect_app(path):
    assert "defect" not in imported(path)


def test_the_check_sees_an_import_of_the_defect_app(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom defect.api.views import answers\n")
    assert imported(module) == {"os", "defect"}
