"""A method whose code does not import in the user's environment, registered so that nerfstudio still starts.

Works around: nerfstudio imports every plugin's entry points in every ``ns-*`` command without catching errors
(``nerfstudio.plugins.registry.discover_methods``), so one module of ours that fails to import there (a torch
or numpy older than it needs, a missing dependency) would stop ``ns-train splatfacto --help`` and every other
command. ``registered`` builds a method's configuration and, where that fails, registers a stand-in that
nerfstudio lists and that stops ``ns-train <method>`` with one line saying what is missing and what to do.
"""

import traceback
from dataclasses import dataclass
from typing import Callable

import tyro
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.plugins.types import MethodSpecification


@dataclass
class UnavailableMethodConfig(TrainerConfig):
    """The configuration of a method that cannot run here; ``ns-train <method>`` stops before writing anything."""

    unavailable_reason: tyro.conf.Suppress[str] = ""

    def print_to_terminal(self) -> None:
        # ns-train's main calls this first, before it saves the config or builds anything.
        raise SystemExit(f"error: ns-train {self.method_name}: {self.unavailable_reason}")


def unavailable_reason(error: BaseException) -> str:
    """One line: what failed to import, where, and how to fix it."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if "pixelsplat_ns" in frame.filename.replace("\\", "/")]
    where = f" (at {ours[-1].filename}:{ours[-1].lineno})" if ours else ""
    summary = (str(error).splitlines() or [""])[0]
    return (
        f"pixelsplat-ns does not import in this environment: {type(error).__name__}: {summary}{where}. Install "
        "the versions it requires into this environment (reinstall pixelsplat-ns with your torch kept: `pip install "
        "<its folder> -c keep-torch.txt`, docs/installation.md; then `pip check`); "
        "every other ns-train method works as before"
    )


def registered(name: str, description: str, build: Callable[[], TrainerConfig]) -> MethodSpecification:
    """nerfstudio's registration of method ``name``: ``build()``'s configuration, or, when building it fails
    (an import of the package's code above all), a stand-in that says why instead of taking nerfstudio down."""
    try:
        config = build()
    except Exception as error:  # noqa: BLE001  (any failure here would otherwise stop every ns-* command)
        reason = unavailable_reason(error)
        return MethodSpecification(
            config=UnavailableMethodConfig(method_name=name, unavailable_reason=reason),
            description=f"{description} [unavailable in this environment: run ns-train {name} to see why]",
        )
    return MethodSpecification(config=config, description=description)
