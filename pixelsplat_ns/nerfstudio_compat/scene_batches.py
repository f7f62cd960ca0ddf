"""nerfstudio's ``Model`` and ``DataManager`` for training on batches of scenes instead of rays."""

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn


class EvaluatedOverTheIndex(RuntimeError):
    """nerfstudio's per-batch evaluation hooks do not apply: pretraining is scored over the evaluation index."""

    def __init__(self) -> None:
        super().__init__("pixelsplat-pretrain evaluates over the evaluation index: run ns-eval on the run's config")


class SceneBatchModelHooks:
    """For a nerfstudio ``Model`` trained on batches of scenes, not rays (mixed in before ``Model``).

    Works around: ``nerfstudio.models.base_model.Model`` is abstract over ray rendering (``get_outputs``,
    ``get_loss_dict``, ``get_image_metrics_and_images``), which such a model never does, and it carries an
    empty ``device_indicator_param`` that no loss uses, so DDP would need its unused-parameter search."""

    device_indicator_param: "nn.Parameter"  # set by Model.__init__

    def remove_device_indicator(self) -> None:
        """Call after ``Model.__init__``: then every remaining parameter gets a gradient every step."""
        del self.device_indicator_param

    def get_outputs(self, ray_bundle):
        raise RuntimeError(f"{type(self).__name__} renders batches of scenes through its pipeline, not rays")

    def get_loss_dict(self, outputs, batch, metrics_dict=None):
        return outputs

    def get_image_metrics_and_images(self, outputs, batch):
        return {}, {}


class SceneBatchDataManagerHooks:
    """For a nerfstudio ``DataManager`` of scene batches evaluated elsewhere (mixed in before ``DataManager``).

    Works around: ``DataManager`` is abstract over evaluation batches and images, which pretraining never
    draws (it evaluates over the paper's index, ``PretrainPipeline.get_average_eval_image_metrics``)."""

    get_train_rays_per_batch: Callable[[], int]  # the DataManager's

    def setup_eval(self) -> None:
        pass

    def next_eval(self, step: int):
        raise EvaluatedOverTheIndex()

    def next_eval_image(self, step: int):
        raise EvaluatedOverTheIndex()

    def get_eval_rays_per_batch(self) -> int:
        return self.get_train_rays_per_batch()

    def get_param_groups(self):
        return {}
