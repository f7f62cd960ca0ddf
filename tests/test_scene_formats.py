"""Scenes nerfstudio accepts in some form but its default dataparser does not: refused in one line naming the fix
(the dataparser to add, or the fields to write), and the fix works."""

import json
import re
import sys

import pytest

from helpers.cli import SAMPLE, blender_scene, gaussians, scene_copy, train, train_command, train_run
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.nerfstudio_compat.dataparsers import check_nerfstudio_transforms


@pytest.mark.e2e
def test_a_blender_scene_is_refused_naming_blender_data_which_then_reads_it(tmp_path, monkeypatch):
    """Refused before the run folder is made (ns-train's entry point in this process: the refusal comes before
    nerfstudio's launcher), then read by the dataparser the message names (the real command)."""
    from nerfstudio.scripts.train import entrypoint

    scene = blender_scene(tmp_path / "lego")
    monkeypatch.setattr(sys, "argv", [str(a) for a in train_command(scene, tmp_path / "outputs")])
    with pytest.raises(InputError) as refusal:
        entrypoint()
    message = re.sub(r"\s+", " ", str(refusal.value))
    assert "is a Blender synthetic scene" in message and f"--data {scene} blender-data`" in message, message
    assert not (tmp_path / "outputs").exists(), "refused before the run folder is made"

    run = train(scene, tmp_path / "outputs", 0, "blender-data")
    assert len(gaussians(run)["means"]) > 0


def test_transforms_json_that_nerfstudio_data_cannot_read_gets_the_fix(tmp_path):
    ngp = blender_scene(tmp_path / "ngp", instant_ngp=True)
    with pytest.raises(
        InputError, match=r"field of view \(camera_angle_x\).*instant-ngp format.*ngp instant-ngp-data`"
    ):
        check_nerfstudio_transforms(ngp)
    with pytest.raises(InputError, match=r"choose it with `--dataparser instant-ngp-data`"):
        check_nerfstudio_transforms(ngp / "transforms.json", "choose it with `--dataparser {dataparser}`")

    transforms = json.loads((SAMPLE / "transforms.json").read_text())

    def refused(edit) -> str:
        scene = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        scene.mkdir()
        content = json.loads(json.dumps(transforms))
        (scene / "transforms.json").write_text(edit(content) if callable(edit) else edit)
        with pytest.raises(InputError) as error:
            check_nerfstudio_transforms(scene)
        return str(error.value)

    def drop(*keys, frame=3):
        def edit(content):
            for key in keys:
                del content["frames"][frame][key]
            return json.dumps(content)

        return edit

    assert "frame 3 has no fl_x (focal length in x, pixels), w (image width, pixels)" in refused(drop("fl_x", "w"))
    assert "frame 3 has no transform_matrix" in refused(drop("transform_matrix"))
    assert "is not valid JSON" in refused('{"frames": [')
    assert 'has no list of frames (a "frames" list' in refused(json.dumps({"camera_model": "OPENCV"}))
    assert 'has no list of frames (a "frames" list' in refused(json.dumps({"frames": []}))
    check_nerfstudio_transforms(SAMPLE)  # a complete one passes
    hoisted = {
        **transforms,
        "fl_x": 142.0,
        "frames": [{k: v for k, v in f.items() if k != "fl_x"} for f in transforms["frames"]],
    }
    (tmp_path / "hoisted").mkdir()
    (tmp_path / "hoisted" / "transforms.json").write_text(json.dumps(hoisted))
    check_nerfstudio_transforms(tmp_path / "hoisted")  # intrinsics at the top level count for every frame


@pytest.mark.e2e
def test_context_views_far_wider_than_tall_are_announced_with_their_size(tmp_path):
    """Strips of the sample's photos 64 times wider than tall: the run says, before predicting, how many Gaussians
    and how much memory that makes, and which flag shrinks it (a 66:1 photo made 8.3 M Gaussians and 8.5 GB without
    a word)."""
    from PIL import Image

    def strips(transforms, folder):
        for frame in transforms["frames"]:
            with Image.open(folder / frame["file_path"]) as image:
                image.crop((0, 70, 256, 74)).save(folder / frame["file_path"])
            frame.update(h=4, cy=frame["cy"] - 70)

    scene = scene_copy(tmp_path, [0, 5, 10], strips)
    config, result = train_run(scene, tmp_path / "outputs", 0, "--pipeline.model.context-short-side", "16")
    log = re.sub(r"\s+", " ", result.stdout)
    assert "pixelsplat will predict 0.1 M Gaussians from 1024x16 context views (aspect 64:1)" in log, log[-3000:]
    assert "a smaller --pipeline.model.context-short-side (now 16)" in log
    assert len(gaussians(config)["means"]) == 2 * 16 * 1024 * 3


def test_the_size_warning_has_the_figures_of_a_panorama(tmp_path):
    from pixelsplat_ns.per_scene.prediction import prediction_size_warning

    panorama = prediction_size_warning(2 * 144 * 9504 * 3, (144, 9504), 144, free_bytes=20e9)
    figures = "8.2 M Gaussians from 9504x144 context views (aspect 66:1), about 8.2 GB"
    assert panorama is not None and figures in panorama
    assert prediction_size_warning(2 * 144 * 256 * 3, (144, 256), 144, free_bytes=20e9) is None, "the sample: quiet"
    tight = prediction_size_warning(2 * 256 * 448 * 3, (256, 448), 256, free_bytes=0.5e9)
    assert tight is not None and "about 0.7 GB, more than the 0.5 GB free here" in tight and "panorama" not in tight
