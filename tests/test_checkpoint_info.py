"""pixelsplat-checkpoint-info and pixelsplat-convert-checkpoint as a user runs them: each kind of file named,
the rest refused for what they are, downloads checked, whole files written (not in the smoke run: the reading
itself is tested in both environments by test_checkpoints.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.official_checkpoints import ORIGINAL_CODEBASE_EXTRA, load_official_keys, official_checkpoint
from pixelsplat_ns.checkpoints import CheckpointError, load_encoder, save_converted
from pixelsplat_ns.encoder import PixelSplatEncoder, paper, tiny

BIN = Path(sys.executable).parent


def checkpoint_info(path: Path, *flags) -> subprocess.CompletedProcess:
    """The installed console command, as a user types it."""
    return subprocess.run(
        [str(BIN / "pixelsplat-checkpoint-info"), str(path), *flags], capture_output=True, text=True, timeout=300
    )


def checkpoint_info_here(capsys, *argv) -> subprocess.CompletedProcess:
    """The same command's ``main`` in this process (its parsing and output are the command's; only the
    interpreter's start is saved), with what the interpreter would print for its ``SystemExit``."""
    from pixelsplat_ns.cli import checkpoint_info as command

    code: object = 0
    try:
        command.main([str(a) for a in argv])
    except SystemExit as exit_info:
        code = exit_info.code
    out, err = capsys.readouterr()
    if isinstance(code, str):  # SystemExit("error: ...") prints its message and exits with status 1
        err, code = err + code + "\n", 1
    return subprocess.CompletedProcess(argv, int(code or 0), out, err)


@pytest.mark.e2e
def test_an_original_codebase_checkpoint_loads_converts_and_is_named(tmp_path):
    """The camera-ready one takes the same path in test_checkpoints.py (in both environments)."""
    from dataclasses import replace

    from pixelsplat_ns.checkpoints.identity import sha256_of

    architecture = "original_codebase"
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(replace(paper(), architecture=architecture)).eval()
    shapes = load_official_keys()["keys"] | ORIGINAL_CODEBASE_EXTRA
    path = tmp_path / "acid.ckpt"
    torch.save(official_checkpoint(shapes, encoder), path)
    loaded = load_encoder(path)
    assert loaded.config.architecture == architecture
    for key, value in encoder.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    name = "original codebase (787a889)"
    info = checkpoint_info(path, "--expect-sha256", sha256_of(path).upper())
    assert info.returncode == 0, info.stderr
    assert f"architecture   {name}" in info.stdout and "official pixelSplat checkpoint" in info.stdout
    assert "training step  300000" in info.stdout and "sha256 matches" in info.stdout
    expected_parameters = 104_014_676 + 6_423_296  # the camera-ready encoder's, and the 7x7 convolutions
    assert f"parameters     {expected_parameters:,}" in info.stdout

    converted = tmp_path / "acid.pt"
    result = subprocess.run(
        [str(BIN / "pixelsplat-convert-checkpoint"), str(path), str(converted)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"architecture {name}" in result.stdout
    again = load_encoder(converted)
    assert again.config == loaded.config
    for key, value in encoder.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    info = checkpoint_info(converted)
    assert "pixelsplat-ns encoder file" in info.stdout and f"architecture   {name}" in info.stdout
    assert "training step  300000" in info.stdout, "the conversion keeps the recorded step"


def test_checkpoint_info_names_each_kind_and_refuses_the_rest(tmp_path, capsys):
    from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER

    bundled = checkpoint_info_here(capsys, BUNDLED_TINY_ENCODER)
    assert bundled.returncode == 0, bundled.stderr
    assert "pixelsplat-ns encoder file" in bundled.stdout and "trained at     144 x 256" in bundled.stdout
    assert "ablation       none" in bundled.stdout and "coefficient 14" in bundled.stdout

    wrong = checkpoint_info_here(capsys, BUNDLED_TINY_ENCODER, "--expect-sha256", "0" * 64)
    assert wrong.returncode == 1 and "differs from the expected" in wrong.stderr

    torch.save(PixelSplatEncoder(tiny()).state_dict(), tmp_path / "bare.pt")
    bare = checkpoint_info_here(capsys, tmp_path / "bare.pt")
    assert bare.returncode == 1 and "a bare state dict of the pixelsplat-ns encoder" in bare.stderr
    torch.save({"model": {"weight": torch.zeros(2)}, "epoch": 3}, tmp_path / "other.pt")
    other = checkpoint_info_here(capsys, tmp_path / "other.pt")
    assert other.returncode == 1 and "none of the encoder files" in other.stderr and "model, epoch" in other.stderr
    missing = checkpoint_info_here(capsys, tmp_path / "missing.ckpt")
    assert missing.returncode == 1 and "no checkpoint or run config" in missing.stderr
    assert "Traceback" not in bare.stderr + other.stderr + missing.stderr


def test_files_that_are_plainly_not_checkpoints_are_named_for_what_they_are(tmp_path, capsys):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "page.ckpt").write_text("<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title>")
    (tmp_path / "folder").mkdir()
    torch.save({"format": "pixelsplat-ns-encoder"}, tmp_path / "half.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "half.pt").read_bytes()[:100])
    nan_config = tiny()
    weights = PixelSplatEncoder(nan_config).state_dict()
    weights["to_gaussians.1.bias"][3] = float("nan")
    save_converted(tmp_path / "nan.pt", nan_config, weights)
    expected = {
        "empty.ckpt": "is empty \\(0 bytes\\)",
        "page.ckpt": r"is a web page \(HTML\), not a checkpoint.*gdown",
        "folder": "is a folder: give a checkpoint file",
        "cut.pt": "not a readable torch checkpoint.*download it again",
        "nan.pt": "hold NaN or infinite values \\(to_gaussians.1.bias\\)",
    }
    for name, message in expected.items():
        with pytest.raises(CheckpointError, match=message):
            load_encoder(tmp_path / name)
    result = checkpoint_info_here(capsys, tmp_path / "folder")
    assert result.returncode == 1 and "is a folder" in result.stderr and "Traceback" not in result.stderr


def test_expect_sha256_takes_a_hash_as_people_paste_it(tmp_path, capsys):
    from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER
    from pixelsplat_ns.checkpoints.identity import sha256_of

    digest = sha256_of(BUNDLED_TINY_ENCODER)
    for given in (digest, f"sha256:{digest}", f"{digest}  {BUNDLED_TINY_ENCODER.name}", digest.upper()):
        result = checkpoint_info_here(capsys, BUNDLED_TINY_ENCODER, "--expect-sha256", given)
        assert result.returncode == 0 and "sha256 matches" in result.stdout, (given, result.stderr)
    for given in ("xyz", digest[:8]):
        result = checkpoint_info_here(capsys, BUNDLED_TINY_ENCODER, "--expect-sha256", given)
        assert result.returncode == 1 and "is not a sha256: give its 64 hexadecimal digits" in result.stderr
    both = checkpoint_info_here(capsys, BUNDLED_TINY_ENCODER, BUNDLED_TINY_ENCODER)
    assert both.returncode == 0 and both.stdout.count("pixelsplat-ns encoder file") == 2


def test_the_converter_writes_whole_files_where_asked_only(tmp_path, monkeypatch, capsys):
    from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER
    from pixelsplat_ns.cli import convert_checkpoint

    def refused(*argv) -> str:
        with pytest.raises(SystemExit) as exit_info:
            convert_checkpoint.main([str(a) for a in argv])
        return str(exit_info.value.code)

    (tmp_path / "folder").mkdir()
    assert "is a folder: give the path of the file to write" in refused(BUNDLED_TINY_ENCODER, tmp_path / "folder")
    (tmp_path / "file").write_text("x")
    assert "is a file, so" in refused(BUNDLED_TINY_ENCODER, tmp_path / "file" / "out.pt")

    out = tmp_path / "out" / "tiny.pt"
    save = torch.save

    def interrupted(obj, file, *args, **kwargs):  # writes part of the file, then fails (a kill, a full disk)
        file.write(b"PK" * 1000)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert_checkpoint.main([str(BUNDLED_TINY_ENCODER), str(out)])
    assert list(out.parent.iterdir()) == [], "nothing partial is left, under the name or beside it"
    monkeypatch.setattr(torch, "save", save)
    convert_checkpoint.main([str(BUNDLED_TINY_ENCODER), str(out)])
    assert load_encoder(out).config == load_encoder(BUNDLED_TINY_ENCODER).config
