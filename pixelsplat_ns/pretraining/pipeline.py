"""The pretraining pipeline: one training step per batch of scenes, ns-eval over the paper's evaluation index."""

import sys
import time
from pathlib import Path
from typing import Optional, cast

import torch
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.models.base_model import Model
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.utils.rich_utils import CONSOLE
from torch.nn.parallel import DistributedDataParallel

from pixelsplat_ns.checkpoints import encoder_from_pretraining
from pixelsplat_ns.core.devices import check_device
from pixelsplat_ns.evaluation import EvaluationConfig, evaluate
from pixelsplat_ns.metrics import load_lpips_vgg, psnr
from pixelsplat_ns.nerfstudio_compat import install_process_hooks
from pixelsplat_ns.nerfstudio_compat.error_reporting import check_ns_eval_output_path
from pixelsplat_ns.nerfstudio_compat.scene_batches import EvaluatedOverTheIndex

from .datamanager import PretrainDataManager, global_rank
from .memory import check_batch_fits, measure_step_memory, probe_scene


class PretrainPipeline(Pipeline):
    datamanager: PretrainDataManager

    def __init__(self, config, device, test_mode="val", world_size=1, local_rank=0, grad_scaler=None) -> None:
        install_process_hooks()  # the tools that load a run (ns-viewer, ns-eval, ...) read its checkpoint next
        check_ns_eval_output_path(sys.argv)
        check_device(device)
        config.check_flags()
        super().__init__()
        self.config, self.test_mode, self.world_size = config, test_mode, world_size
        self._evaluation_lpips: list = []
        self.rank = global_rank(world_size)
        self.datamanager = config.datamanager.setup(
            device=device, test_mode=test_mode, world_size=world_size, local_rank=local_rank
        )
        self._model = config.model.setup(
            scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=0, device=device
        )
        if test_mode == "val":  # a training run (a resumed one then loads its checkpoint over these weights)
            self.model.initialize_encoder()
        self.model.to(device)
        if test_mode == "val" and config.check_memory:
            self._check_memory(device)
        if world_size > 1:
            self._model = self._distributed(self._model, device, local_rank)

    def _distributed(self, model: Model, device, local_rank: int) -> Model:
        """The model wrapped for several processes: gradients averaged over them (``DistributedDataParallel``), and
        on GPUs batch norm over the whole step's batch (``--pipeline.sync-batch-norm``)."""
        if torch.device(device).type == "cuda" and self.config.sync_batch_norm:
            model = cast(Model, torch.nn.SyncBatchNorm.convert_sync_batchnorm(model))
        elif self.config.sync_batch_norm:
            CONSOLE.log(
                f"batch norm over each process's {self.config.datamanager.batch_size} examples: torch synchronizes "
                "it across GPUs only"
            )
        # Typed as the Model it wraps, as nerfstudio's VanillaPipeline does: ``self.model`` unwraps it.
        return cast(Model, DistributedDataParallel(model, device_ids=[local_rank] if device != "cpu" else None))

    def _check_memory(self, device) -> None:
        """Refuse a batch whose training step would not fit (``pretraining.memory``), before the first step."""
        dataset, sampler = self.config.datamanager.dataset, self.config.datamanager.sampler
        scene = probe_scene(tuple(dataset.image_shape), sampler.num_context_views, sampler.num_target_views, device)
        memory = measure_step_memory(self.model.encoder, scene, self.config.model.loss, self.model.lpips, device)
        hint = (
            "a GPU with more memory"
            if torch.device(device).type == "cuda"
            else "the CPU preset: ns-train pixelsplat-pretrain-tiny"
        )
        check_batch_fits(memory, self.config.datamanager.batch_size, device, hint)

    def _lpips(self):
        """The paper's LPIPS for evaluation: the loss's, else loaded here (once); left out with a warning when its
        VGG weights are not on disk, so that ns-eval never leaves it out silently."""
        if self.model.lpips is not None:
            return self.model.lpips
        if not self._evaluation_lpips:  # a list, so that the module stays out of the pipeline's state dict
            try:
                self._evaluation_lpips.append(load_lpips_vgg(self.model.device))
            except RuntimeError as error:
                CONSOLE.print(f"[bold yellow]LPIPS left out of the evaluation: {error}")
                self._evaluation_lpips.append(None)
        return self._evaluation_lpips[0]

    def get_param_groups(self):
        return {**self.datamanager.get_param_groups(), **self.model.get_param_groups()}

    def get_training_callbacks(self, attributes):
        """With a time budget, stop training once it is spent (the trainer then saves a checkpoint)."""
        budget = self.config.time_budget_minutes
        if budget is None:
            return []
        start = time.monotonic()

        def stop_when_spent(step: int) -> None:
            if time.monotonic() - start > 60 * budget:
                attributes.trainer.stop_training = True

        return [
            TrainingCallback(
                [TrainingCallbackLocation.AFTER_TRAIN_ITERATION], stop_when_spent, update_every_num_iters=1
            )
        ]

    def get_train_loss_dict(self, step: int):
        _, batch = self.datamanager.next_train(step)
        losses, rendered = self._model(batch, step, self.rank)
        target = batch["target"].images.flatten(0, 1)
        metrics = {"psnr": psnr(target, rendered.detach().flatten(0, 1)).mean()}
        return rendered, losses, metrics

    def load_pipeline(self, loaded_state: dict, step: int) -> None:
        """The encoder weights of a checkpoint (saved with or without DDP), for ns-eval and for resuming;
        resuming also continues the data stream with the step after the checkpoint's."""
        encoder = self.model.encoder
        encoder.load_state_dict(encoder_from_pretraining({"pipeline": loaded_state}, encoder.config))
        if self.test_mode == "val":
            self.datamanager.start_at(step + 1)

    def get_eval_loss_dict(self, step: int):
        raise EvaluatedOverTheIndex()

    def get_eval_image_metrics_and_images(self, step: int):
        raise EvaluatedOverTheIndex()

    def get_average_eval_image_metrics(
        self, step: Optional[int] = None, output_path: Optional[Path] = None, get_std: bool = False
    ):
        """The paper's metrics over the evaluation index, as ``pixelsplat-evaluate`` computes them."""
        index = self.config.evaluation_index or Path(self.datamanager.get_datapath()) / "evaluation_index.json"
        config = EvaluationConfig(
            image_shape=tuple(self.config.datamanager.dataset.image_shape),
            crop_intrinsics=self.config.datamanager.dataset.crop_intrinsics,
        )
        self.eval()
        results = evaluate(self.model.encoder, self.datamanager.get_datapath(), index, config, self._lpips())
        self.train()
        return {k: v for k, v in results["mean"].items() if v is not None}
