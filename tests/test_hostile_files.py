"""No file a user is given runs code: every door that reads a file, given hostile files of each format (a plain
pickle, torch's legacy layout, torch's zip layout, a YAML run config with Python tags), refuses or reads it
inertly, and the witness the file would create never appears."""

import pickle
import sys
from pathlib import Path

import pytest
import torch
import yaml

from helpers.cli import SAMPLE, ns, train_command
from pixelsplat_ns.checkpoints import CheckpointError, load_encoder, read_checkpoint, read_pretraining_run
from pixelsplat_ns.core.inert_unpickling import read_pickled_names
from pixelsplat_ns.data import ChunkFormatError, read_chunk

BIN = Path(sys.executable).parent
FORMATS = ["plain_pickle", "torch_legacy", "torch_zip"]


class Witness:
    """Unpickled by an unrestricted reader, creates the file ``path`` (``open(path, "w")``: no shell needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def hostile_file(path: Path, layout: str, witness: Path, payload=None) -> Path:
    """``payload`` (default: a Lightning-like checkpoint) with a ``Witness`` inside, written in ``layout``."""
    content = payload if payload is not None else {"state_dict": {"encoder.x": torch.zeros(2)}, "cfg": None}
    if isinstance(content, dict):
        content = {**content, "hyper_parameters": Witness(witness)}
    if layout == "plain_pickle":
        path.write_bytes(pickle.dumps(Witness(witness)))
    else:
        torch.save(content, path, _use_new_zipfile_serialization=layout == "torch_zip")
    assert not witness.exists()
    return path


def test_the_witness_is_real(tmp_path):
    """An unrestricted reader runs it: what every test below proves does not happen."""
    witness = tmp_path / "ran"
    pickle.loads(pickle.dumps(Witness(witness)))
    assert witness.exists()


@pytest.mark.smoke  # also in the nerfstudio user's environment: torch 2.1's legacy reader
@pytest.mark.parametrize("layout", FORMATS)
def test_library_doors_never_run_a_files_code(tmp_path, layout):
    witness = tmp_path / "ran"
    path = hostile_file(tmp_path / "re10k.ckpt", layout, witness)
    for door in (read_checkpoint, load_encoder, read_pretraining_run):
        try:
            door(path)
        except CheckpointError as error:
            assert "Traceback" not in str(error)
        assert not witness.exists(), f"{door.__name__} ran code from a {layout} file"
    _, names = read_pickled_names(hostile_file(tmp_path / "again.ckpt", "torch_zip", witness))
    assert names == {"io.open"} and not witness.exists(), "the refused names are reported"


def test_a_plain_pickle_is_refused_naming_what_it_asked_for(tmp_path):
    witness = tmp_path / "ran"
    path = hostile_file(tmp_path / "re10k.ckpt", "plain_pickle", witness)
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint.*names io.open, which was not run"):
        read_checkpoint(path)


@pytest.mark.smoke
@pytest.mark.parametrize("layout", FORMATS)
def test_chunks_never_run_a_files_code(tmp_path, layout):
    witness = tmp_path / "ran"
    path = hostile_file(tmp_path / "000000.torch", layout, witness, payload=[{"key": "a"}])
    with pytest.raises(ChunkFormatError):
        read_chunk(path)
    assert not witness.exists()


def test_console_commands_never_run_a_files_code(tmp_path):
    """Every command reads through the library doors above (all layouts there); here the issue's instance."""
    layout = "plain_pickle"
    witness = tmp_path / "ran"
    path = hostile_file(tmp_path / "re10k.ckpt", layout, witness)
    run = tmp_path / "run"
    (run / "nerfstudio_models").mkdir(parents=True)
    (run / "config.yml").write_text(
        yaml.dump({"pipeline": {"model": {"encoder": {}}, "datamanager": {"dataset": {"image_shape": [8, 8]}}}})
    )
    hostile_file(run / "nerfstudio_models" / "step-000000001.ckpt", layout, witness)
    commands = [
        ("pixelsplat-convert-checkpoint", path, tmp_path / "out.pt"),
        ("pixelsplat-checkpoint-info", path),
        (
            "pixelsplat-evaluate",
            "--checkpoint",
            path,
            "--data",
            tmp_path,
            "--index",
            tmp_path / "i.json",
            "--output-path",
            tmp_path / "eval.json",
        ),  # fmt: skip
        ("pixelsplat-export-encoder", "--load-config", run / "config.yml", "--output-path", tmp_path / "enc.pt"),
    ]
    for command in commands:
        result = ns(*command, cwd=tmp_path, check=False)
        assert result.returncode != 0 and result.stderr.startswith("error:"), (command[0], result.stderr[-2000:])
        assert "Traceback" not in result.stderr, command[0]
        assert not witness.exists(), f"{command[0]} ran code from a {layout} file"


def test_a_run_config_with_python_tags_constructs_nothing(tmp_path):
    witness = tmp_path / "ran"
    run = tmp_path / "run"
    (run / "nerfstudio_models").mkdir(parents=True)
    (run / "config.yml").write_text(
        f"pipeline: !!python/object/apply:builtins.open ['{witness}', 'w']\n"
        "data: !!python/object/new:pathlib.PosixPath ['/x']\n"
    )
    torch.save({"step": 1, "pipeline": {}}, run / "nerfstudio_models" / "step-000000001.ckpt")
    with pytest.raises(CheckpointError, match="is not the config of a pixelsplat-pretrain run"):
        read_pretraining_run(run / "config.yml")
    assert not witness.exists()


@pytest.mark.e2e
def test_ns_train_doors_never_run_a_files_code(tmp_path):
    """--pipeline.model.encoder-checkpoint, and resuming with --load-dir (nerfstudio's own loader would run any
    pickle before torch 2.6: the file is read inertly first and refused)."""
    witness = tmp_path / "ran"
    path = hostile_file(tmp_path / "re10k.ckpt", "plain_pickle", witness)
    result = ns(
        *train_command(SAMPLE, tmp_path / "a", "--pipeline.model.encoder-checkpoint", path), cwd=tmp_path, check=False
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "names io.open, which was not run" in output, output[-3000:]
    assert not witness.exists()

    models = tmp_path / "resume" / "nerfstudio_models"
    models.mkdir(parents=True)
    hostile_file(models / "step-000000005.ckpt", "torch_zip", witness, payload={"step": 5, "pipeline": {}})
    result = ns(*train_command(SAMPLE, tmp_path / "b", "--load-dir", models), cwd=tmp_path, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "names io.open, which no nerfstudio checkpoint does" in output, output[-3000:]
    assert "Traceback" not in output
    assert not witness.exists(), "the resume path ran code from the checkpoint"
