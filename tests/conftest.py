"""What every test shares: jaxtyping's run-time checks of the package's annotations.

Every function and dataclass of ``pixelsplat_ns`` imported by a test is checked by beartype on each call, shapes
included (``Float[Tensor, "b v 3 h w"]`` must hold, and the same name must have the same size across one call's
arguments and result), so that the annotations are proven rather than decorative. Modules that define numba
kernels are left out: numba compiles the function it is given and cannot compile a checking wrapper. Commands
run as subprocesses (``ns-train`` ...) are not checked. Shared helper functions live in ``tests/helpers/``.
"""

import re
import sys
from pathlib import Path

import jaxtyping
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pixelsplat_ns"
NUMBA_KERNEL = re.compile(r"@(numba\.)?(njit|jit|vectorize|guvectorize|cfunc|stencil)\b")
# PEP 484's numeric tower, as static type checkers read it: an int is accepted where a float is annotated.
TYPECHECKER = "beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))"


def _defines_numba_kernels(path: Path) -> bool:
    return bool(NUMBA_KERNEL.search(path.read_text(encoding="utf-8")))


def checked_modules(folder: Path = PACKAGE, name: str = "pixelsplat_ns") -> list[str]:
    """The module names under ``folder`` to check: a package whole when nothing under it defines numba kernels,
    else its other modules one by one (the hook checks a name and everything below it, so such a package's own
    ``__init__`` is left unchecked)."""
    sources = list(folder.rglob("*.py"))
    if not any(_defines_numba_kernels(path) for path in sources):
        return [name]
    names = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and child.name != "__pycache__" and any(child.rglob("*.py")):  # namespace packages too
            names += checked_modules(child, f"{name}.{child.name}")
        elif child.suffix == ".py" and child.stem != "__init__" and not _defines_numba_kernels(child):
            names.append(f"{name}.{child.stem}")
    return names


if any(module == "pixelsplat_ns" or module.startswith("pixelsplat_ns.") for module in sys.modules):
    raise RuntimeError(
        "pixelsplat_ns was imported before tests/conftest.py could install jaxtyping's import hook: "
        "its annotations would go unchecked (a pytest plugin or -p option imported it first)"
    )
jaxtyping.install_import_hook(checked_modules(), TYPECHECKER)


def pytest_configure(config):
    # beartype's notice that typing.Sequence & co. have builtin spellings (PEP 585): valid hints, not findings.
    config.addinivalue_line("filterwarnings", "ignore::beartype.roar.BeartypeDecorHintPep585DeprecationWarning")


@pytest.fixture
def unchecked_annotations():
    """Switches the annotation checks off for a test that hands a public entry point ill-typed input on purpose,
    to see the entry point's own error (the one a caller without the checks gets)."""
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", before)
