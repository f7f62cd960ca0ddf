"""A probe on ``ns-train pixelsplat-pretrain``'s processes, for tests/test_ddp.py, set up by ``sitecustomize``
when ``PIXELSPLAT_PROBE`` names a folder. It watches the boundaries of the real training step and changes
nothing in between:

- every process writes the batch it trained on (``batch-rank{R}-step{S}.pt``, the scene names in
  ``scenes-rank{R}.txt``) and the encoder's gradients before the optimizer steps (``gradients-rank{R}-step{S}.pt``:
  with DDP, after the all-reduce);
- ``PIXELSPLAT_PROBE_REPLAY`` (a folder a recording run of several processes wrote): a single process trains on
  every rank's batch of each step instead of reading its own, each batch through the model as that rank's (its
  random draws, its batch-norm statistics: torch syncs those across GPUs only), the losses averaged;
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
    from pixelsplat_ns.core.views import to_device
    from pixelsplat_ns.pretraining.datamanager import PretrainDataManager
    from pixelsplat_ns.pretraining.pipeline import PretrainPipeline

    next_train, step_some = PretrainDataManager.next_train, Optimizers.optimizer_scaler_step_some
    replay = os.environ.get("PIXELSPLAT_PROBE_REPLAY")
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
        step_some(self, grad_scaler, param_groups)

    def replayed_train_loss_dict(self, step: int):
        state["step"] = step
        results = []
        for rank in range(len(list(Path(replay).glob("scenes-rank*.txt")))):
            path = Path(replay) / f"batch-rank{rank}-step{step}.pt"
            batch = to_device(torch.load(path, weights_only=False), self.datamanager.device)  # the test's own file
            with open(FOLDER / "scenes-rank0.txt", "a") as scenes:
                scenes.writelines(f"{name}\n" for name in batch["scene"])
            results.append(self._model(batch, step, rank))
        self.datamanager.train_count += 1
        losses = {name: sum(r[0][name] for r in results) / len(results) for name in results[0][0]}
        return torch.cat([r[1].detach() for r in results]), losses, {}

    PretrainDataManager.next_train = probed_next_train
    if replay is not None:
        PretrainPipeline.get_train_loss_dict = replayed_train_loss_dict
    Optimizers.optimizer_scaler_step_some = probed_step_some
