"""Reading a torch file (or a plain pickle) without constructing anything from it but tensors and containers.

``torch.load(weights_only=True)`` refuses files that pickle other objects (Lightning's configs and callbacks,
nerfstudio's numpy scalars before torch 2.4 could allow them); ``torch.load(weights_only=False)`` would run
whatever a hostile file names. This reader resolves only what rebuilds tensors and containers; every other
global the file names becomes an inert placeholder and is reported by name, so that callers can refuse a file
that names what no checkpoint of its kind does. For legacy (non-zip) files torch reads the header records with
``pickle_module.load``: that goes through the same unpickler.
"""

import pickle
import types
from pathlib import Path
from typing import Any, Union

from pixelsplat_ns.core.torch_versions import load_tensor_file


class _Inert:
    """Stands in for any pickled object that is not a tensor or a plain container: holds nothing, runs nothing."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs) -> "_Inert":
        return _Inert()

    def __setstate__(self, state) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        pass

    def append(self, value) -> None:
        pass

    def extend(self, values) -> None:
        pass


TENSOR_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
}
"""The globals the inert reader resolves (with torch's storage classes): what rebuilds tensors and containers."""


def inert_pickle_module(refused: set[str]) -> types.SimpleNamespace:
    """A ``pickle_module`` for ``torch.load`` that cannot construct arbitrary objects, neither in the records torch
    reads with ``pickle_module.load`` (a legacy file's header, a plain pickle) nor in the data it reads with
    ``pickle_module.Unpickler``: every global outside ``TENSOR_GLOBALS`` and torch's storages becomes an inert
    placeholder, its name added to ``refused``."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if (module, name) in TENSOR_GLOBALS or (module == "torch" and name.endswith("Storage")):
                return super().find_class(module, name)
            refused.add(f"{module}.{name}")
            return _Inert

    def load(file, **kwargs):
        return Unpickler(file, **kwargs).load()

    return types.SimpleNamespace(Unpickler=Unpickler, load=load, __name__="pixelsplat_ns_inert_pickle")


def read_pickled_names(path: Union[str, Path]) -> tuple[Any, set[str]]:
    """What a torch file holds, read without constructing anything but tensors and containers, and the names of
    the other globals it asked for (each now an inert placeholder). Raises what ``torch.load`` raises."""
    refused: set[str] = set()
    return read_inert(path, refused), refused


def read_inert(path: Union[str, Path], refused: set[str]) -> Any:
    """``read_pickled_names``, adding the refused names to ``refused`` (also when ``torch.load`` then fails)."""
    return load_tensor_file(path, map_location="cpu", weights_only=False, pickle_module=inert_pickle_module(refused))
