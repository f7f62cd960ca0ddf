"""A probe on ``ns-train pixelsplat-pretrain``'s processes, for tests/test_ddp.py, set up by ``sitecustomize``
when ``PIXELSPLAT_PROBE`` names a folder. It watches the boundaries of the real training step and changes
nothing in between:

- every process writes the batch it trained on (``batch-rank{R}-step{S}.pt``, the scene names in
  ``scenes-rank{R}.txt``), and, before the optimizer steps, the encoder's gradients (with DDP, after the
  all-reduce: ``gradients-rank{R}-step{S}.pt``) and the weights that step's forward pass used
  (``weights-rank{R}-step{S}.pt``);
- ``PIXELSPLAT_PROBE_FAIL`` ("RANK:STEP"): that process raises an ``InputError`` at that step.
"""

import os
from pathlib import Path

import torch

FOLDER = Path(os.environ["PIXELSPLAT_PROBE"])


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def install() -> None:
    from nerfstudio.engine.optimizers import Optimizers

    from pixelsplat_ns.core.errors import InputError
    from pixelsplat_ns.pretraining.datamanager import PretrainDataManager

    next_train, step_some = PretrainDataManager.next_train, Optimizers.optimizer_scaler_step_some
    fail = os.environ.get("PIXELSPLAT_PROBE_FAIL")
    state = {"step": 0}

    def probed_next_train(self, step: int):
        state["step"] = step
        if fail is not None and fail == f"{_rank()}:{step}":
            raise InputError(f"the probe stops the process of rank {_rank()} at step {step}")
        cameras, batch = next_train(self, step)
        torch.save(batch, FOLDER / f"batch-rank{_rank()}-step{step}.pt")
        with open(FOLDER / f"scenes-rank{_rank()}.txt", "a") as scenes:
            scenes.writelines(f"{name}\n" for name in batch["scene"])
        return cameras, batch

    def probed_step_some(self, grad_scaler, param_groups) -> None:
        gradients = [p.grad.detach().flatten() for p in self.parameters["encoder"] if p.grad is not None]
        torch.save(torch.cat(gradients), FOLDER / f"gradients-rank{_rank()}-step{state['step']}.pt")
        weights = [p.detach().clone() for p in self.parameters["encoder"]]  # what this step's forward pass used
        torch.save(weights, FOLDER / f"weights-rank{_rank()}-step{state['step']}.pt")
        step_some(self, grad_scaler, param_groups)

    PretrainDataManager.next_train = probed_next_train
    Optimizers.optimizer_scaler_step_some = probed_step_some
