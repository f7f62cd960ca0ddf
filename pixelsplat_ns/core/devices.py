"""The devices pixelsplat-ns computes on: the CPU and CUDA GPUs (and any device that holds float64 tensors).

A CUDA device asked for where torch sees none (no GPU or driver, or a CPU-only torch) is refused in one line too,
instead of torch's error from deep inside the first tensor moved there.

Apple's MPS device is refused, in one line, wherever work would start on it: the encoder's SH conversion, the
renderer's projection and compositing and the per-scene model's covariances compute in float64 (for the
official code's numbers and the compositing's 1e-4 transmittance rule), and MPS holds no float64 tensor."""

from typing import Union

import torch

from pixelsplat_ns.core.errors import InputError

UNSUPPORTED = {"mps": "Apple's MPS device holds no float64 tensors, which the encoder and the renderer compute with"}


class UnsupportedDevice(InputError):
    """A device pixelsplat-ns cannot compute on; the message names the devices it can."""


def check_device(device: Union[torch.device, str]) -> None:
    """Raise ``UnsupportedDevice`` for a device the project cannot compute on (``UNSUPPORTED``), or for CUDA where
    torch sees no CUDA GPU."""
    kind = torch.device(device).type
    if kind in UNSUPPORTED:
        raise UnsupportedDevice(
            f"pixelsplat-ns cannot run on the {kind!r} device: {UNSUPPORTED[kind]}; run on the CPU or a CUDA GPU "
            "(with ns-train: --machine.device-type cpu or cuda; in Python: .to('cpu'))"
        )
    if kind == "cuda" and not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise UnsupportedDevice(
            f"a CUDA device was asked for, but torch {torch.__version__} ({built}) sees no CUDA GPU (no GPU, no "
            "driver, or a torch without CUDA); run on the CPU (with ns-train: --machine.device-type cpu)"
        )


def free_memory_bytes(device: Union[torch.device, str]) -> float:
    """The memory a new allocation on ``device`` could still take (bytes): CUDA's free memory on the GPU, the
    host's available memory otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    from pixelsplat_ns.core.process_memory import available_bytes

    return available_bytes()
