"""The test suite's own rules: test files share code through ``tests/helpers/`` and ``conftest.py``, never by
importing one another (an imported test file drags its module-level fixtures and imports along, and moving a
helper breaks files that look unrelated)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, inside functions too."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_no_test_file_imports_another():
    test_files = sorted(TESTS.glob("test_*.py"))
    assert len(test_files) > 10, "the suite's files were not found"
    names = {path.stem for path in test_files}
    offenders = {path.name: sorted(imported_modules(path) & names) for path in test_files}
    offenders = {name: modules for name, modules in offenders.items() if modules}
    assert not offenders, f"move what they share into tests/helpers/ (or a fixture into conftest.py): {offenders}"


def test_the_rule_sees_an_import_of_a_test_file(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text("import json\nfrom test_other import helper\n\ndef f():\n    import test_third.sub\n")
    assert imported_modules(sample) == {"json", "test_other", "test_third"}
