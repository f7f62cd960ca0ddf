"""nerfstudio's configs name the classes they build; ours name them without importing the model code."""

import copyreg
import importlib


class LazyTargetType(type):
    """The type of ``lazy_target``'s stand-ins; ``lazy_path`` is the ``module:Class`` a stand-in stands for."""

    lazy_path: str


def import_target(path: str) -> type:
    """The class ``module:Class`` names, imported."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def lazy_target(path: str) -> type:
    """A class standing for ``module:Class`` that imports it only when nerfstudio instantiates it.

    Works around: nerfstudio imports every plugin's entry-point module for every ``ns-*`` command, without
    error handling (``nerfstudio.plugins.registry.discover_methods``), and the configs name their classes in
    ``_target``. Importing the model code there would slow down, or break, every command. Not for a
    datamanager: ``ns-render dataset`` patches ``setup_train`` on its ``_target`` class, which must be real."""

    class Target(metaclass=LazyTargetType):
        def __new__(cls, *args, **kwargs):
            return import_target(path)(*args, **kwargs)

    # Saved configs (config.yml) then name the real class, which loading imports.
    module, name = path.split(":")
    Target.__module__, Target.__name__, Target.__qualname__ = module, name, name
    Target.lazy_path = path
    return Target


def _pickle_as_the_real_class(target: LazyTargetType):
    return import_target, (target.lazy_path,)


def allow_pickling_lazy_targets() -> None:
    """Let pickle take a stand-in for the class it stands for (``copyreg``, for ``LazyTargetType`` alone).

    Works around: ``ns-train --machine.num-devices N`` (or ``--machine.num-machines``) pickles the trainer config
    into each process it spawns, and pickle refuses a class that is not the object its module and name lead to
    ("it's not the same object as ..."). A stand-in is pickled as a call that imports the real class, which the
    spawned process builds anyway. Called with the other process hooks, never at import."""
    copyreg.pickle(LazyTargetType, _pickle_as_the_real_class)
