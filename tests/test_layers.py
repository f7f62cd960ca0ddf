"""The package's layering: each part imports only from the floors below it (and from itself), so no import runs
upward and there are no cycles between parts. The floors are the architecture page's (docs/architecture.md),
numbered from 1 as there; a new part joins a floor here and on that page, and every module has its line there.
"""

import ast
import re
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pixelsplat_ns"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

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
FLOOR = {part: level for level, parts in enumerate(FLOORS, 1) for part in parts}


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
    assert parts == set(FLOOR), (
        f"new parts: {sorted(parts - set(FLOOR))} (add each to FLOORS here and to docs/architecture.md: its floor "
        f"table and a line per module); gone: {sorted(set(FLOOR) - parts)}"
    )


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


# The architecture page: its floor table is FLOORS, its "Every module" tables name every module, and every path
# it names exists.
SPAN = re.compile(r"`([^`\n]+)`")
FILE_PATH = re.compile(r"[\w.-]+(/[\w.*-]+)*/?")  # no spaces, no placeholders such as <root>
DOTTED_NAME = re.compile(r"[a-z_]+(\.[A-Za-z_]\w*)+(?<!\.py)")  # part.module.name: no call, no file


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row of a markdown text (header and separator rows included)."""
    return [line.strip().strip("|").split("|") for line in text.splitlines() if line.lstrip().startswith("|")]


def module_section(text: str) -> str:
    """The page's "## Every module" section, up to the next "## " heading."""
    start = text.index("## Every module")
    return text[start : text.index("\n## ", start)]


def named_modules(section: str) -> list[str]:
    """The modules (paths relative to ``pixelsplat_ns/``, or globs such as ``cli/*.py``) that the first cells of
    the section's table rows name. A cell may group modules of one folder: "`per_scene/datamanager.py`,
    `dataset.py`" names ``per_scene/datamanager.py`` and ``per_scene/dataset.py``; a bare name opening a cell is a
    module at the package's top level."""
    names = []
    for cells in table_rows(section):
        folder = PurePosixPath()
        for span in SPAN.findall(cells[0]):
            path = PurePosixPath(span.removeprefix("pixelsplat_ns/"))
            if len(path.parts) > 1:
                folder = path.parent
            else:
                path = folder / path
            names.append(str(path))
    return names


def covers(name: str, module: str) -> bool:
    """Whether a named path or glob (``cli/*.py``: one folder level, as the shell reads it) is ``module``."""
    named, path = PurePosixPath(name), PurePosixPath(module)
    return len(named.parts) == len(path.parts) and fnmatchcase(module, name)


def module_files() -> list[str]:
    """Every module of the package but the ``__init__.py`` files, relative to ``pixelsplat_ns/``."""
    return sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if path.name != "__init__.py")


def test_the_architecture_page_has_these_floors():
    rows = [cells for cells in table_rows(ARCHITECTURE.read_text()) if cells[0].strip().isdigit()]
    on_page = {int(cells[0]): set(SPAN.findall(cells[1])) for cells in rows}
    assert on_page == dict(enumerate(FLOORS, 1)), "docs/architecture.md's floor table and FLOORS here differ"


def test_every_module_has_its_line_on_the_architecture_page():
    named, modules = named_modules(module_section(ARCHITECTURE.read_text())), module_files()
    missing = [module for module in modules if not any(covers(name, module) for name in named)]
    assert not missing, f"modules without a line in docs/architecture.md's 'Every module' tables: {missing}"
    gone = [name for name in named if not any(covers(name, module) for module in modules)]
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"


def test_the_module_check_reads_grouped_cells_and_fails_on_a_missing_line():
    """The control: grouped cells name each module with its folder, and a module without a line is missing."""
    section = "| module | what |\n|---|---|\n| `per_scene/model.py`, `dataset.py` | x |\n| `methods.py` | x |\n"
    assert named_modules(section + "| `cli/*.py` | x |") == [
        "per_scene/model.py",
        "per_scene/dataset.py",
        "methods.py",
        "cli/*.py",
    ]
    assert covers("cli/*.py", "cli/evaluate.py") and not covers("cli/*.py", "cli/more/evaluate.py")
    assert not covers("per_scene/dataset.py", "data/dataset.py") and not covers("per_scene/dataset.py", "dataset.py")
    real = module_section(ARCHITECTURE.read_text())
    assert any(covers(name, "core/bounds.py") for name in named_modules(real))
    without = "\n".join(line for line in real.splitlines() if "`core/bounds.py`" not in line)
    assert not any(covers(name, "core/bounds.py") for name in named_modules(without))


def named_paths(text: str) -> list[tuple[str, list[Path]]]:
    """Each file or folder path the text names (a span with a slash, or a .py, .sh or .md file), with where it
    may be relative to: the repository, the package and, in a table row whose first cell is a folder, that
    folder (``tests/`` | ... `conftest.py` ...)."""
    found = []
    for line in text.splitlines():
        cells = line.strip().strip("|").split("|") if line.lstrip().startswith("|") else [""]
        first = SPAN.findall(cells[0])
        bases = [ROOT, PACKAGE] + ([ROOT / first[0]] if first and first[0].endswith("/") else [])
        for span in SPAN.findall(line):
            if FILE_PATH.fullmatch(span) and ("/" in span or span.endswith((".py", ".sh", ".md"))):
                found.append((span, bases))
    return found


def binds(file: Path, names: list[str]) -> bool:
    """Whether module ``file`` binds ``names[0]`` at its top level (a definition, an assignment or an import,
    followed to its source) and, where it is a class, defines ``names[1]`` in its body."""
    for node in ast.parse(file.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == names[0]:
            rest = names[1:]
            return not rest or (
                isinstance(node, ast.ClassDef)
                and len(rest) == 1
                and any(getattr(item, "name", None) == rest[0] for item in node.body)
            )
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == names[0]:
                    base = file.parents[node.level - 1] if node.level else ROOT
                    return resolves(base.joinpath(*(node.module or "").split("."), alias.name), names[1:])
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(target, ast.Name) and target.id == names[0] for target in targets):
                return len(names) == 1
    return False


def resolves(path: Path, names: list[str]) -> bool:
    """Whether ``path`` (without suffix) is a package, a module or a name bound by its parent module, and
    ``names`` are bound within it in turn."""
    if path.is_dir() or path.with_suffix(".py").is_file():
        if not names:
            return True
        if (path / names[0]).is_dir() or (path / f"{names[0]}.py").is_file():
            return resolves(path / names[0], names[1:])
        return binds(path / "__init__.py" if path.is_dir() else path.with_suffix(".py"), names)
    parent = path.parent / "__init__.py" if path.parent.is_dir() else path.parent.with_suffix(".py")
    return parent.is_file() and binds(parent, [path.name, *names])


def test_every_path_the_architecture_page_names_exists():
    text = ARCHITECTURE.read_text()
    section = module_section(text)
    rest = text.replace(section, "")
    absent = [
        span
        for span, bases in named_paths(rest)
        if not any(list(base.glob(span)) if "*" in span else (base / span).exists() for base in bases)
    ]
    dotted = {span for span in SPAN.findall(text) if DOTTED_NAME.fullmatch(span) and span.split(".")[0] in FLOOR}
    absent += sorted(name for name in dotted if not resolves(PACKAGE, name.split(".")))
    assert not absent, f"docs/architecture.md names what does not exist: {absent}"


@pytest.mark.parametrize(
    "name, exists",
    [
        ("encoder.PixelSplatEncoder.encode_prepared", True),  # a class re-exported by the package's __init__
        ("core.views.prepare_views", True),
        ("render.rasterize", True),
        ("encoder.PixelSplatEncoder.no_such_method", False),
        ("core.views.no_such_function", False),
        ("core.no_such_module", False),
    ],
)
def test_the_path_check_resolves_dotted_names(name, exists):
    assert resolves(PACKAGE, name.split(".")) == exists
