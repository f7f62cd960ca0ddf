"""The package's layering: each part imports only from the floors below it (and from itself), so no import runs
upward and there are no cycles between parts. The floors are the architecture page's (docs/architecture.md);
a new module joins a floor here."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pixelsplat_ns"

FLOORS: list[set[str]] = [
    {"core", "metrics"},  # the ground floor: types, conventions, geometry, errors, the paper's metrics
    {"render", "nerfstudio_compat", "process_data", "synthetic_gaussians"},
    {"data", "input_frame", "fast_routes"},
    {"encoder"},
    {"checkpoints"},
    {"evaluation"},
    {"per_scene", "pretraining"},
    {"cli", "methods", "nerfstudio_workarounds"},  # what users and nerfstudio call
]
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}


def part_of(module: str) -> str:
    """The top-level part of ``pixelsplat_ns.<part>...``."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """Every pixelsplat_ns module a file imports, lazily inside functions included (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
    return {name for name in found if name.startswith("pixelsplat_ns.")}


def arrows() -> list[tuple[str, str, str]]:
    """(file, its part, the part it imports) for every import between two parts."""
    result = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts == ("__init__.py",):
            continue  # the package's lazy public names
        own = relative.parts[0].removesuffix(".py")
        for module in imports(path):
            other = part_of(module)
            if other != own:
                result.append((str(relative), own, other))
    return result


def test_every_part_sits_on_a_floor():
    parts = {
        path.name.removesuffix(".py")
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").exists()
    }
    assert parts == set(FLOOR), f"new parts: {sorted(parts - set(FLOOR))}; gone: {sorted(set(FLOOR) - parts)}"


def test_no_import_runs_upward_or_sideways():
    upward = [
        f"{file} ({own}, floor {FLOOR[own]}) imports {other} (floor {FLOOR[other]})"
        for file, own, other in arrows()
        if FLOOR[other] >= FLOOR[own]
    ]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The control: an import inside a function and a relative import are both found."""
    module = PACKAGE / "per_scene" / "pipeline.py"
    found = imports(module)
    assert "pixelsplat_ns.per_scene.prediction" in found  # `from .prediction import ...`
    assert any(name.startswith("pixelsplat_ns.render") for name in found)
    lazy = imports(PACKAGE / "cli" / "evaluate.py")
    assert "pixelsplat_ns.evaluation" in lazy  # imported inside main()
