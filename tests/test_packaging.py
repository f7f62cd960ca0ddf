"""What the package declares and ships: every third-party module it imports is a declared dependency (and every
declared one is used), the declared floors are what CI's second environment installs, the installed package
is what that environment tests, and the sample scene a plain install carries can be written where a user sees it."""

import ast
import importlib.metadata
import os
import re
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from helpers.cli import SAMPLE, ns

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pixelsplat_ns"
FLOORS = ROOT / "scripts" / "tools" / "nerfstudio_env_floors.txt"
LAZY_IMPORTS = ("import_untraced", "import_module")
"""Functions whose first argument, a string, is a module imported at run time."""


def pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="Python 3.10 reads pyproject.toml with tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return canonical(match.group())


def imported_top_level_modules() -> dict[str, str]:
    """Every top-level module the package imports (statements, and the names given to the lazy importers),
    with one file that imports it."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", None)) in LAZY_IMPORTS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_module_is_declared_and_every_declared_dependency_is_imported():
    distributions = importlib.metadata.packages_distributions()
    third_party = {
        module: where
        for module, where in imported_top_level_modules().items()
        if module not in sys.stdlib_module_names and module != "pixelsplat_ns"
    }
    assert {"torch", "numpy", "yaml", "plyfile", "psutil", "tqdm", "gsplat"} <= set(third_party), "the scan's control"
    declared = {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    providers: dict[str, set[str]] = {}  # an imported module -> the installed distributions that provide it
    for module, where in third_party.items():
        assert module in distributions, f"{module} (imported in {where}) belongs to no installed distribution"
        providers[module] = {canonical(distribution) for distribution in distributions[module]}
    # cv2 comes from opencv-python-headless (declared) and, pulled in by another package, opencv-python too.
    undeclared = {f"{module} in {third_party[module]}": sorted(names) for module, names in providers.items()}
    undeclared = {where: names for where, names in undeclared.items() if not set(names) & declared}
    assert not undeclared, f"imported but provided by no dependency pyproject.toml declares: {undeclared}"
    unused = declared - set().union(*providers.values())
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


def test_the_declared_floors_are_what_the_nerfstudio_environment_installs():
    """Each ``name>=X`` of the dependencies (and the pins ``==``) is installed at exactly X in CI's second
    environment (scripts/tools/nerfstudio_env_floors.txt), so that each floor is a version CI proves."""
    pins = {}
    for line in FLOORS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonical(name)] = version
    for requirement in pyproject()["project"]["dependencies"]:
        name = requirement_name(requirement)
        bound = re.search(r"(>=|==)\s*([0-9][^,;\s\"]*)", requirement)
        assert bound, f"{requirement}: every dependency declares its floor (>=) or its pin (==)"
        if name in ("nerfstudio", "gsplat", "lpips"):  # pinned by the package itself: pip installs exactly those
            assert bound.group(1) == "==", requirement
            continue
        pinned = pins.get(name)
        assert pinned and Version(pinned) == Version(bound.group(2)), f"{requirement}: the floors file has {pinned}"


@pytest.mark.smoke
@pytest.mark.skipif(
    os.environ.get("PIXELSPLAT_NS_INSTALLED") != "1",
    reason="only in CI's second environment, which sets PIXELSPLAT_NS_INSTALLED=1 after a non-editable install",
)
def test_the_package_under_test_is_the_installed_one():
    import pixelsplat_ns

    location = Path(pixelsplat_ns.__file__).resolve()
    assert "site-packages" in location.parts and location.parent != PACKAGE, location


@pytest.mark.e2e
def test_the_sample_scene_is_written_where_the_user_asks(tmp_path):
    out = tmp_path / "sample"
    result = ns("pixelsplat-process-data", "sample", "--output-dir", out, cwd=tmp_path)
    assert f"ns-train pixelsplat --data {out}" in result.stdout
    names = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    assert names and sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == names
    assert all((out / name).read_bytes() == (SAMPLE / name).read_bytes() for name in names)
    again = ns("pixelsplat-process-data", "sample", "--output-dir", out, cwd=tmp_path, check=False)
    assert again.returncode != 0 and "is not empty; choose another folder or pass --force" in again.stderr
    assert "Traceback" not in again.stderr
