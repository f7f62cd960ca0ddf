"""``ns-train pixelsplat-pretrain``: generalizable training of the encoder on RealEstate10k-format chunks,
inside nerfstudio's trainer (optimizers, schedulers, checkpoints, logging, multi-GPU launcher).

The configurations live in ``pixelsplat_ns.config`` (imported by every ns-* command, so kept light);
this module holds what they build.
"""

import logging
import time
from pathlib import Path
from typing import Optional

import torch
from nerfstudio.data.datamanagers.base_datamanager import DataManager
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.models.base_model import Model
from nerfstudio.pipelines.base_pipeline import Pipeline
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from pixelsplat_ns.checkpoints import encoder_from_pretraining
from pixelsplat_ns.data import BoundedViewSampler, ChunkDataset
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.pretrained import load_dino_weights
from pixelsplat_ns.evaluation import EvaluationConfig, evaluate
from pixelsplat_ns.metrics import load_lpips_vgg, psnr
from pixelsplat_ns.training import pretraining_loss

LOGGER = logging.getLogger(__name__)


class EvaluatedOverTheIndex(RuntimeError):
    """nerfstudio's per-batch evaluation hooks do not apply: pretraining is scored over the evaluation index."""

    def __init__(self) -> None:
        super().__init__("pixelsplat-pretrain evaluates over the evaluation index: run ns-eval on the run's config")


def _to_device(batch, device):
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch.to(device) if isinstance(batch, torch.Tensor) else batch


def _global_rank(world_size: int) -> int:
    """This process's rank among all nodes (nerfstudio hands the pipeline only its rank on this node)."""
    return torch.distributed.get_rank() if world_size > 1 else 0


class PretrainDataManager(DataManager):
    """Batches of scenes (context + target views) streamed from chunks by DataLoader workers. Batch k is the
    batch of training step k, whatever the timing (the sampler's warm-up reads k), and ``start_at`` resumes
    the stream at a step (see ``ChunkDataset``)."""

    def __init__(self, config, device="cpu", test_mode="val", world_size=1, local_rank=0, **kwargs) -> None:
        self.config, self.device, self.test_mode = config, device, test_mode
        if config.data is None:
            raise ValueError("pixelsplat-pretrain needs --data: a dataset root with train/*.torch and index.json")
        dataset_config = config.dataset
        dataset_config.roots = [Path(config.data)]
        self.train_dataset = ChunkDataset(dataset_config, BoundedViewSampler(config.sampler),
                                          rank=_global_rank(world_size), world_size=world_size,
                                          batch_size=config.batch_size)
        self.eval_dataset = None  # evaluation runs over the paper's index: see PretrainPipeline
        super().__init__()

    def setup_train(self) -> None:
        loader = DataLoader(self.train_dataset, batch_size=self.config.batch_size, num_workers=self.config.num_workers,
                            persistent_workers=self.config.num_workers > 0)
        self.train_iterator = iter(loader)

    def start_at(self, step: int) -> None:
        """Continue the stream with the batch of ``step`` (on resume; earlier batches are replayed unloaded)."""
        self.train_dataset.start_batch = step
        self.setup_train()

    def setup_eval(self) -> None:
        pass

    def next_train(self, step: int):
        self.train_count += 1
        return None, _to_device(next(self.train_iterator), self.device)

    def next_eval(self, step: int):
        raise EvaluatedOverTheIndex()

    def next_eval_image(self, step: int):
        raise EvaluatedOverTheIndex()

    def get_train_rays_per_batch(self) -> int:
        h, w = self.config.dataset.image_shape
        return self.config.batch_size * self.config.sampler.num_target_views * h * w

    def get_eval_rays_per_batch(self) -> int:
        return self.get_train_rays_per_batch()

    def get_datapath(self) -> Path:
        return Path(self.config.data)

    def get_param_groups(self):
        return {}


class PretrainModel(Model):
    """The encoder as a nerfstudio model: its parameters form the optimizer group "encoder".

    nerfstudio's models carry an empty ``device_indicator_param`` that no loss uses; it is removed so that
    DDP needs no unused-parameter search (every remaining parameter gets a gradient every step)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        del self.device_indicator_param

    @property
    def device(self):
        return next(self.encoder.parameters()).device

    def populate_modules(self) -> None:
        super().populate_modules()
        self.encoder = PixelSplatEncoder(self.config.encoder)
        if self.config.dino_init:
            load_dino_weights(self.encoder.backbone)
        self.lpips = None
        if self.config.loss.lpips_weight > 0:
            try:
                self.lpips = load_lpips_vgg()
                self.lpips.requires_grad_(False)
            except RuntimeError as error:
                LOGGER.warning("LPIPS loss disabled: %s", error)

    def get_param_groups(self):
        return {"encoder": list(self.encoder.parameters())}

    def get_outputs(self, ray_bundle):
        raise RuntimeError("pixelsplat-pretrain renders batches of scenes through PretrainPipeline, not rays")

    def get_loss_dict(self, outputs, batch, metrics_dict=None):
        return outputs

    def get_image_metrics_and_images(self, outputs, batch):
        return {}, {}

    def forward(self, batch: dict, step: int, rank: int = 0):
        """Loss of one batch. The depth-bin draws are seeded by (step, rank), so a resumed run repeats them."""
        generator = torch.Generator(self.device).manual_seed(step * 65_536 + rank)
        return pretraining_loss(self.encoder, batch, step, self.config.loss, self.lpips, generator)


class PretrainPipeline(Pipeline):
    def __init__(self, config, device, test_mode="val", world_size=1, local_rank=0, grad_scaler=None) -> None:
        super().__init__()
        self.config, self.test_mode, self.world_size = config, test_mode, world_size
        self.rank = _global_rank(world_size)
        self.datamanager = config.datamanager.setup(device=device, test_mode=test_mode, world_size=world_size,
                                                    local_rank=local_rank)
        self._model = config.model.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])),
                                         num_train_data=0, device=device)
        self.model.to(device)
        if world_size > 1:
            self._model = DistributedDataParallel(self._model, device_ids=[local_rank] if device != "cpu" else None)

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

        return [TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], stop_when_spent, update_every_num_iters=1)]

    def get_train_loss_dict(self, step: int):
        _, batch = self.datamanager.next_train(step)
        losses, rendered = self._model(batch, step, self.rank)
        target = batch["target"]["image"].flatten(0, 1)
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

    def get_average_eval_image_metrics(self, step: Optional[int] = None, output_path: Optional[Path] = None,
                                       get_std: bool = False):
        """The paper's metrics over the evaluation index, as ``scripts/evaluate.py`` computes them."""
        index = self.config.evaluation_index or Path(self.datamanager.get_datapath()) / "evaluation_index.json"
        config = EvaluationConfig(image_shape=tuple(self.config.datamanager.dataset.image_shape),
                                  crop_intrinsics=self.config.datamanager.dataset.crop_intrinsics)
        self.eval()
        results = evaluate(self.model.encoder, self.datamanager.get_datapath(), index, config, self.model.lpips)
        self.train()
        return {k: v for k, v in results["mean"].items() if v is not None}
