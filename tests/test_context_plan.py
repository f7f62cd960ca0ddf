"""The context plan (pixelsplat_ns/per_scene/context_plan.py): the context views of a run as one pure function
of the cameras, the flags, the encoder's views per group and (context-pairs auto) the scene's depth; made once
per ns-train run and handed to the datamanager and the prediction."""

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from nerfstudio.utils.rich_utils import CONSOLE

import pixelsplat_ns
import pixelsplat_ns.per_scene.pipeline  # noqa: F401  (imported before counting calls: see count_calls)
from helpers.scenes import walk
from pixelsplat_ns.per_scene import context_groups, context_plan
from pixelsplat_ns.per_scene.config import (
    PixelSplatDataManagerConfig,
    PixelSplatModelConfig,
    PixelSplatPipelineConfig,
)
from pixelsplat_ns.per_scene.context import ContextError
from pixelsplat_ns.per_scene.context_groups import choose_context_views
from pixelsplat_ns.per_scene.context_plan import (
    ContextOptions,
    ContextPlan,
    PlanMessage,
    SceneDepth,
    depth_probe_group,
    log_plan,
    plan_context,
)
from pixelsplat_ns.per_scene.datamanager import PixelSplatDataManager

SAMPLE = Path(pixelsplat_ns.__file__).parent / "sample_scene"


def names(n: int) -> list[str]:
    return [f"v{i}.png" for i in range(n)]


def options(views=None, pairs=1, angle=30.0, ratio=0.3) -> ContextOptions:
    return ContextOptions(views, pairs, angle, ratio)


def test_one_pair_is_the_automatic_pair_named_in_the_log():
    cameras = walk(5)
    plan = plan_context(cameras, names(5), options(), views_per_group=2)
    assert plan.groups == ((0, 4),)  # no turn: the widest baseline
    assert plan.views == (0, 4) and not plan.given
    assert plan.messages == (PlanMessage("pixelsplat context views: v0.png, v4.png"),)
    # A turn beyond max-context-angle keeps the pair within it.
    turning = walk(5, turn_degrees=10.0)
    assert plan_context(turning, names(5), options(angle=25.0), 2).groups == ((0, 2),)


def test_given_views_keep_their_order_and_are_checked():
    plan = plan_context(walk(5), names(5), options(views=(3, 1)), views_per_group=2)
    assert plan.groups == ((3, 1),) and plan.views == (1, 3) and plan.given
    assert plan.messages == (PlanMessage("pixelsplat context views: v3.png, v1.png"),)
    # The group is not fitted to the encoder: the prediction refuses a mismatch with its own message.
    assert plan_context(walk(5), names(5), options(views=(0, 2, 4)), views_per_group=2).groups == ((0, 2, 4),)
    for bad in [(0, 7), (1, 1), (2,), (-1, 2)]:
        flag = " ".join(map(str, bad))
        with pytest.raises(
            ContextError,
            match=f"context-views {flag}: give two \\(or more\\) different indices of training images, 0 to 4",
        ):
            plan_context(walk(5), names(5), options(views=bad), 2)


def test_n_groups_follow_the_capture_with_the_encoders_views_per_group():
    plan = plan_context(walk(10), names(10), options(pairs=3), views_per_group=2)
    assert plan.groups == ((0, 3), (3, 6), (6, 9)) and plan.views == (0, 3, 6, 9) and not plan.given
    assert plan.messages == (
        PlanMessage(
            "pixelsplat context groups: (0 3), (3 6), (6 9) (of the training views; v0.png, v3.png, v6.png, v9.png)"
        ),
    )
    triples = plan_context(walk(10), names(10), options(pairs=2), views_per_group=3)
    assert triples.groups == ((0, 2, 4), (4, 7, 9))
    with pytest.raises(ContextError, match="take 11 training views"):
        plan_context(walk(10), names(10), options(pairs=10), 2)


def test_auto_spaces_its_groups_by_the_given_depth():
    cameras = walk(13)
    near = plan_context(cameras, names(13), options(pairs="auto", ratio=0.4), 2, SceneDepth(10.0, triangulated=True))
    assert near.groups == ((0, 4), (4, 8), (8, 12))  # at most 0.4 x 10 = 4 apart
    assert near.messages == (
        PlanMessage(
            "pixelsplat context-pairs auto: the scene's median depth is 10 (triangulated from features "
            "matched along the capture), so groups at most 4 apart (max-baseline-to-depth 0.4): 3 group(s)"
        ),
        PlanMessage(
            "pixelsplat context groups: (0 4), (4 8), (8 12) (of the training views; v0.png, v4.png, v8.png, v12.png)"
        ),
    )
    far = plan_context(cameras, names(13), options(pairs="auto", ratio=0.4), 2, SceneDepth(100.0, triangulated=False))
    assert far.groups == ((0, 12),)  # the same cameras, a deeper scene: one pair
    assert (
        "is 100 (predicted by the encoder: too few features to triangulate), so groups at most 40 apart"
        in far.messages[0].text
    )
    with pytest.raises(ValueError, match="scene's depth"):
        plan_context(cameras, names(13), options(pairs="auto"), 2)


def test_auto_warns_first_when_no_split_is_usable():
    cameras = walk(6, turn_degrees=40.0)  # every neighbouring pair turns more than 30 degrees
    plan = plan_context(cameras, names(6), options(pairs="auto"), 2, SceneDepth(10.0, triangulated=True))
    assert plan.groups == tuple((i, i + 1) for i in range(5))
    warning, depth, groups = plan.messages
    assert warning == PlanMessage(
        "context-pairs auto: no split of the capture keeps every group's views within 30 "
        "degrees and 3 apart; using the densest, 5 groups of neighbouring views. Give "
        "--pipeline.datamanager.context-pairs N to choose",
        warning=True,
    )
    assert not depth.warning and not groups.warning and groups.text.startswith("pixelsplat context groups: (0 1)")


def test_the_plan_is_a_pure_function_of_its_inputs():
    cameras = walk(13, turn_degrees=3.0)
    before = cameras.clone()
    depth = SceneDepth(12.0, triangulated=True)
    first = plan_context(cameras, names(13), options(pairs="auto"), 2, depth)
    assert plan_context(cameras, names(13), options(pairs="auto"), 2, depth) == first
    assert torch.equal(cameras, before), "the cameras are left as they were"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.groups = ((0, 1),)
    # scene_depth is read only where the options need it.
    assert plan_context(cameras, names(13), options(pairs=2), 2, depth) == plan_context(
        cameras, names(13), options(pairs=2), 2
    )
    with pytest.raises(ValueError, match="one name per camera"):
        plan_context(cameras, names(12), options(), 2)


@pytest.mark.parametrize(
    "flags, message",
    [
        (dict(pairs=0), "context-pairs 0: give 1 or more"),
        (dict(pairs=-1), "context-pairs -1: give 1 or more"),
        (dict(views=(0, 5), pairs=2), "not both"),
        (dict(pairs="auto", ratio=-1.0), "max-baseline-to-depth -1: give a positive share"),
        (dict(ratio=float("nan")), "max-baseline-to-depth nan: give a positive share"),
    ],
)
def test_options_no_scene_can_have_are_refused(flags, message):
    with pytest.raises(ContextError, match=message):
        options(**flags)


def test_options_are_read_from_the_datamanager_config():
    assert ContextOptions.from_config(PixelSplatDataManagerConfig()) == ContextOptions(None, 1, 30.0, 0.3)
    config = PixelSplatDataManagerConfig(context_pairs="auto", max_context_angle=20.0, max_baseline_to_depth=0.5)
    assert ContextOptions.from_config(config) == ContextOptions(None, "auto", 20.0, 0.5)
    given = ContextOptions.from_config(PixelSplatDataManagerConfig(context_views=(4, 2)))
    assert given.context_views == (4, 2) and not given.needs_scene_depth
    with pytest.raises(ContextError, match="not both"):
        ContextOptions.from_config(PixelSplatDataManagerConfig(context_views=(0, 1), context_pairs=2))


def test_the_depth_probe_is_the_automatic_pair_or_one_group_along_the_capture():
    cameras = walk(9, turn_degrees=5.0)
    assert depth_probe_group(cameras, options(pairs="auto", angle=22.0), 2) == choose_context_views(cameras, 22.0)
    assert depth_probe_group(cameras, options(pairs="auto"), 3) == (0, 4, 8)


def test_the_plans_messages_are_logged_in_order():
    plan = ContextPlan(((0, 1),), False, (PlanMessage("first line", warning=True), PlanMessage("second line")))
    CONSOLE.begin_capture()
    try:
        log_plan(plan)
    finally:
        text = CONSOLE.end_capture()
    assert text.index("first line") < text.index("second line")


# ------------------------------------------------------------------------------- once per ns-train run


@pytest.fixture(autouse=True)
def no_process_hooks(monkeypatch):
    """The pipeline built in-process without torch's unpickling allow-list and the error report it installs
    for the whole process (it reads no checkpoint here): later tests in this worker see the process as it was."""
    monkeypatch.setattr(pixelsplat_ns.per_scene.pipeline, "install_process_hooks", lambda: None)


def count_calls(monkeypatch, function) -> list:
    """Replace ``function`` wherever a pixelsplat_ns module holds it by one that records its calls (modules
    imported by now: the test imports the pipeline's first)."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    holders = [
        m
        for name, m in sys.modules.items()
        if name.startswith("pixelsplat_ns") and getattr(m, function.__name__, None) is function
    ]
    assert holders, f"nothing holds {function.__name__}"
    for module in holders:
        monkeypatch.setattr(module, function.__name__, counting)
    return calls


@pytest.mark.parametrize("flags", [{}, {"context_pairs": 3}, {"context_pairs": "auto"}])
def test_ns_train_chooses_the_context_once_and_hands_the_plan_over(flags, monkeypatch):
    plans = count_calls(monkeypatch, context_plan.plan_context)
    choices = [count_calls(monkeypatch, f) for f in (choose_context_views, context_groups.choose_context_groups)]
    handed = []
    take = PixelSplatDataManager.use_context_plan
    monkeypatch.setattr(
        PixelSplatDataManager, "use_context_plan", lambda self, plan: (handed.append(plan), take(self, plan))[1]
    )
    config = PixelSplatPipelineConfig(
        datamanager=PixelSplatDataManagerConfig(data=SAMPLE, **flags),
        model=PixelSplatModelConfig(context_short_side=64),
    )
    pipeline = config.setup(device="cpu", test_mode="val")  # what ns-train builds: the scene is predicted
    assert len(plans) == 1, "one plan per run"
    assert sum(len(c) for c in choices) == 1, "the views are chosen once, by the plan"
    assert len(handed) == 1
    datamanager = pipeline.datamanager
    cameras, names_, options_, views_per_group, depth = plans[0]
    assert options_ == ContextOptions.from_config(datamanager.config) and views_per_group == 2
    assert (depth is not None) == (flags.get("context_pairs") == "auto")
    plan = plan_context(cameras, names_, options_, views_per_group, depth)
    assert handed == [plan] and datamanager.context_indices == plan.views
    assert not set(datamanager.train_unseen_cameras) & set(plan.views), "the targets are the other views"
    if flags.get("context_pairs") != "auto":
        assert len(plan.groups) == flags.get("context_pairs", 1)


def test_the_tools_that_load_a_run_choose_nothing(monkeypatch):
    plans = count_calls(monkeypatch, context_plan.plan_context)
    choices = [count_calls(monkeypatch, f) for f in (choose_context_views, context_groups.choose_context_groups)]
    config = PixelSplatPipelineConfig(
        datamanager=PixelSplatDataManagerConfig(data=SAMPLE), model=PixelSplatModelConfig(context_short_side=64)
    )
    pipeline = config.setup(device="cpu", test_mode="test")  # as ns-eval, ns-viewer, ns-export build it
    assert not plans and not any(choices) and pipeline.datamanager.context_indices == ()
