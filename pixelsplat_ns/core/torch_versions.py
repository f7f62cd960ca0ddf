"""What differs between the torch releases the package supports (2.1 and newer), asked one way.

Autocast: torch 2.4 added the device-generic queries (``is_autocast_available``, ``is_autocast_enabled(device_type)``,
``get_autocast_dtype(device_type)``); torch 2.1-2.3 has per-device functions for the CPU and CUDA only, and no
autocast on other devices (MPS's came in 2.5). ``torch.load``: torch 2.1-2.3 warns that ``TypedStorage`` is
deprecated on every load of a tensor file, a warning about torch's own internals that users cannot act on."""

import contextlib
import warnings
from pathlib import Path
from typing import Any, ContextManager, Optional, Union

import torch
from torch.amp import autocast_mode

_MAJOR, _MINOR = torch.__version__.split(".")[:2]
TORCH_VERSION = (int(_MAJOR), int(_MINOR))
"""(major, minor) of the torch in use: 2.1.2+cu118 is (2, 1)."""
_DEVICE_GENERIC_AUTOCAST = hasattr(autocast_mode, "is_autocast_available")  # torch >= 2.4


def autocast_available(device_type: str) -> bool:
    """Whether torch has autocast for ``device_type`` ("cpu", "cuda", "mps", ...)."""
    if _DEVICE_GENERIC_AUTOCAST:
        return bool(autocast_mode.is_autocast_available(device_type))
    return device_type in ("cpu", "cuda")


def autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    """The dtype autocast computes in on ``device_type`` now, or None where it is off or does not exist."""
    if not autocast_available(device_type):
        return None
    if _DEVICE_GENERIC_AUTOCAST:
        return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    if device_type == "cpu":
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None


def autocast_off(device: torch.device) -> ContextManager:
    """Autocast switched off for ``device``'s type (a no-op where autocast does not exist)."""
    if autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def load_tensor_file(path: Union[str, Path], **kwargs: Any) -> Any:
    """``torch.load(path, **kwargs)`` without torch 2.1-2.3's ``TypedStorage`` deprecation warning or the safe
    reader's note on a file's pickle protocol (the callers report what is wrong with a file themselves), with
    ``path`` as a string (torch < 2.2 memory-maps only a string path)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return torch.load(str(path), **kwargs)
