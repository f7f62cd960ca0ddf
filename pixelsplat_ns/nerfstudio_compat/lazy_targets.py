"""nerfstudio's configs name the classes they build; ours name them without importing the model code."""

import importlib


def lazy_target(path: str) -> type:
    """A class standing for ``module:Class`` that imports it only when nerfstudio instantiates it.

    Works around: nerfstudio imports every plugin's entry-point module for every ``ns-*`` command, without
    error handling (``nerfstudio.plugins.registry.discover_methods``), and the configs name their classes in
    ``_target``. Importing the model code there would slow down, or break, every command. Not for a
    datamanager: ``ns-render dataset`` patches ``setup_train`` on its ``_target`` class, which must be real."""
    module, name = path.split(":")

    class Target:
        def __new__(cls, *args, **kwargs):
            return getattr(importlib.import_module(module), name)(*args, **kwargs)

    # Saved configs (config.yml) then name the real class, which loading imports.
    Target.__module__, Target.__name__, Target.__qualname__ = module, name, name
    return Target
