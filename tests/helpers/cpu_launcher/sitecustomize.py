"""On a test's PYTHONPATH only: nerfstudio 1.1.5's spawned worker (``scripts/train.py: _distributed_worker``)
asserts ``torch.cuda.is_available()`` and ``num_devices <= torch.cuda.device_count()`` even for
``--machine.device-type cpu``, and the product refuses to start the launcher where they would fail
(``nerfstudio_compat.distributed.check_the_launcher_can_start``). Those two answers are relaxed for those two
callers alone; everything after them (gloo, the trainer, the pipeline) is the real path. Python imports
``sitecustomize`` at start-up in every process, the spawned ones too."""

import os
import sys

import torch

_is_available, _device_count = torch.cuda.is_available, torch.cuda.device_count


RELAXED_FOR = ("_distributed_worker", "check_the_launcher_can_start")


def _asked_by_the_worker() -> bool:
    return sys._getframe(2).f_code.co_name in RELAXED_FOR


def is_available() -> bool:
    return True if _asked_by_the_worker() else _is_available()


def device_count() -> int:
    return 64 if _asked_by_the_worker() else _device_count()


torch.cuda.is_available, torch.cuda.device_count = is_available, device_count

if "PIXELSPLAT_PROBE" in os.environ:  # tests/test_ddp.py's probe on the training step (training_probe.py)
    import training_probe

    training_probe.install()
