"""Every file the project writes is written whole or not at all; a full disk or a read-only folder gets one line
naming the path (and the bytes needed); concurrent writers never collide; a killed writer's temporary file is
removed by the next write there; Ctrl-C and SIGTERM become a request to stop at a safe point.

The places that cannot take a file are real: a small tmpfs that fills up, a read-only one (``helpers.file_systems``).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import torch

from helpers.file_systems import fill, mounted_tmpfs
from pixelsplat_ns.core.atomic_files import (
    CannotWrite,
    check_writable,
    remove_stale_partials,
    write_atomically,
    write_text_atomically,
)
from pixelsplat_ns.core.stop_signals import stop_requests

MEGABYTE_OF_FLOATS = torch.zeros(262_144)


@pytest.fixture
def small_disk(tmp_path):
    with mounted_tmpfs(tmp_path / "small", size_kb=512) as folder:
        yield folder


@pytest.fixture
def read_only_folder(tmp_path):
    with mounted_tmpfs(tmp_path / "read_only", size_kb=64, read_only=True) as folder:
        yield folder


def test_a_full_disk_is_named_with_the_bytes_needed_and_nothing_is_left(small_disk):
    target = small_disk / "state.pt"
    with pytest.raises(CannotWrite, match=r"state\.pt: the disk is full \(it needs about 1\.0 MB; 524 kB free"):
        write_atomically(target, lambda file: torch.save(MEGABYTE_OF_FLOATS, file), size_hint=1_048_576)
    # Without the size told in advance, torch's writer meets the full disk midway and says only "[enforce fail at
    # inline_container.cc] unexpected pos": the OSError behind it is found and reported the same way.
    with pytest.raises(CannotWrite, match=r"state\.pt: the disk is full \(\d+ kB free there\)") as error:
        write_atomically(target, lambda file: torch.save(MEGABYTE_OF_FLOATS, file))
    assert "unexpected pos" in str(error.value.__cause__) or "No space" in str(error.value.__cause__)
    assert list(small_disk.iterdir()) == [], "nothing partial is left, under the name or beside it"
    write_text_atomically(target, "fits")  # the same place takes what fits
    assert target.read_text() == "fits"


def test_a_read_only_folder_is_named_before_anything_is_written(read_only_folder):
    with pytest.raises(CannotWrite, match=r"cannot write .*out\.json: .*read-only.*choose a folder you can write"):
        check_writable(read_only_folder / "sub" / "out.json")
    with pytest.raises(CannotWrite, match="read-only"):
        write_text_atomically(read_only_folder / "out.json", "{}")


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    target = tmp_path / "shared.json"
    errors = []

    def writer(n: int) -> None:
        try:
            for _ in range(20):
                write_text_atomically(target, json.dumps({"writer": n, "payload": "x" * 100_000}))
        except Exception as error:  # noqa: BLE001  (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert json.loads(target.read_text())["writer"] in range(4), "the file is one writer's, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write_there(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    left_by_dead = tmp_path / f".step-000000002.ckpt.{dead_pid}-0123456789ab.partial"
    being_written = tmp_path / f".step-000000003.ckpt.{os.getpid()}-0123456789ab.partial"
    users_own = tmp_path / ".notes.partial"
    for path in (left_by_dead, being_written, users_own):
        path.write_bytes(b"x")
    assert remove_stale_partials(tmp_path) == [left_by_dead]
    assert being_written.exists() and users_own.exists(), "a running writer's file and the user's files stay"


def test_the_first_stop_signal_is_a_request_and_the_second_acts(tmp_path):
    requests, repeats, previous_calls = [], [], []
    previous = signal.signal(signal.SIGTERM, lambda number, frame: previous_calls.append(number))
    try:
        with stop_requests(requests.append, repeats.append) as release:
            os.kill(os.getpid(), signal.SIGTERM)
            assert requests == ["SIGTERM"] and repeats == [], "the first asks to stop, nothing else"
            os.kill(os.getpid(), signal.SIGTERM)
            assert repeats == ["SIGTERM"] and previous_calls == [], "the second acts (here: recorded)"
            release()
            os.kill(os.getpid(), signal.SIGTERM)
            assert previous_calls == [signal.SIGTERM], "released: the handler in place before acts again"
        assert requests == ["SIGTERM"]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_commands_refuse_a_place_that_cannot_take_their_output(small_disk, read_only_folder, tmp_path):
    """pixelsplat-convert-checkpoint on a full disk: one line with the bytes needed, nothing left, and the rerun
    once there is room is not refused for a leftover; pixelsplat-evaluate and pixelsplat-ply-to-input-frame on a
    read-only folder: refused before any work; pixelsplat-process-data on a full disk: the output folder as it was."""
    from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER
    from pixelsplat_ns.cli import convert_checkpoint, evaluate, ply_to_input_frame, process_data

    def refused(main, *argv) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main([str(a) for a in argv])
        return str(exit_info.value.code)

    fill(small_disk, leave_kb=64)
    message = refused(convert_checkpoint.main, BUNDLED_TINY_ENCODER, small_disk / "tiny.pt")
    assert re.search(r"tiny\.pt: the disk is full \(it needs about 7\.6 MB; \d+ kB free there\)", message), message
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
    (small_disk / "filler").unlink()
    fill(small_disk, leave_kb=128)  # the sample scene takes 256 KiB
    message = refused(process_data.main, "sample", "--output-dir", small_disk / "scene")
    assert "the disk is full" in message, message
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"], "the scene's files that fitted are removed"

    missing = tmp_path / "never_read"  # the inputs are not looked at: the output is refused first
    message = refused(
        evaluate.main, "--checkpoint", missing, "--data", missing, "--index", missing,
        "--output-path", read_only_folder / "eval.json",
    )  # fmt: skip
    assert "eval.json: " in message and "read-only" in message, message
    message = refused(ply_to_input_frame.main, BUNDLED_TINY_ENCODER, missing, read_only_folder / "out.ply")
    assert "out.ply: " in message and "read-only" in message, message


def test_ns_train_refuses_a_read_only_output_dir_in_one_line(read_only_folder, monkeypatch):
    """``ns-train pixelsplat --output-dir`` on a read-only folder: refused before the run starts (nerfstudio made
    the run's folder and wrote config.yml in place, ending in a traceback). Run in-process: the refusal comes before
    nerfstudio's launcher, so the command line's whole path up to it is the real one."""
    from nerfstudio.scripts.train import entrypoint

    from helpers.cli import SAMPLE, train_command

    monkeypatch.setattr(sys, "argv", [str(a) for a in train_command(SAMPLE, read_only_folder / "outputs")])
    with pytest.raises(CannotWrite, match=r"cannot write .*config\.yml: .*read-only"):
        entrypoint()


def test_ns_eval_output_path_is_checked_before_the_evaluation(read_only_folder):
    """The check a pixelsplat pipeline makes when ``ns-eval`` builds it (tyro's spellings of the flag), before any
    image is rendered; the command itself is tested in test_per_scene_cli."""
    from pixelsplat_ns.nerfstudio_compat.error_reporting import check_ns_eval_output_path

    output = str(read_only_folder / "eval.json")
    for argv in (
        ["ns-eval", "--output-path", output],
        ["/bin/ns-eval", "--load-config=c.yml", f"--output_path={output}"],
    ):
        with pytest.raises(CannotWrite, match="eval.json"):
            check_ns_eval_output_path(argv)
    check_ns_eval_output_path(["ns-train", "--output-path", output])  # only ns-eval's flag is its output
    check_ns_eval_output_path(["ns-eval", "--output-path", str(read_only_folder.parent / "eval.json")])


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    """nerfstudio names a run's folder by the second it started: runs started together (a sweep, a script) each
    claim their own (``<timestamp>``, ``_2``, ``_3``, ...), even when they claim at the same moment."""
    from pixelsplat_ns.methods import _pixelsplat

    configs = []
    for _ in range(6):
        config = _pixelsplat()
        config.output_dir, config.experiment_name, config.timestamp = tmp_path, "scene", "2026-12-06_120000"
        configs.append(config)
    threads = [threading.Thread(target=config.claim_run_folder) for config in configs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    folders = {config.get_base_dir() for config in configs}
    assert len(folders) == 6 and all((folder / "config.yml").exists() for folder in folders)
    assert sorted(config.timestamp for config in configs)[:2] == ["2026-12-06_120000", "2026-12-06_120000_2"]


def test_a_second_stop_signal_quits_at_once_in_one_line(tmp_path):
    """The first SIGTERM is a request; the second ends the process at once with the signal's status and one line,
    no traceback (a KeyboardInterrupt from inside a kernel or a save came out as a traceback with status 0)."""
    script = (
        "import os, signal, time\n"
        "from pixelsplat_ns.core.stop_signals import stop_requests\n"
        "with stop_requests(lambda name: print('requested', name, flush=True)):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "print('not reached')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert result.stdout.strip() == "requested SIGTERM"
    assert result.stderr.strip() == "SIGTERM again: quitting at once, without saving"


def test_what_cannot_be_written_is_named_before_the_work(tmp_path, read_only_folder, monkeypatch):
    from nerfstudio.scripts.train import entrypoint

    from helpers.cli import SAMPLE, blender_scene, train_command
    from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER
    from pixelsplat_ns.cli import convert_checkpoint, make_synthetic
    from pixelsplat_ns.core.atomic_files import cannot_write
    from pixelsplat_ns.core.errors import InputError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(CannotWrite, match=r"afile is a file, not a folder"):
        check_writable(tmp_path / "afile" / "sub" / "eval.json")
    with pytest.raises(SystemExit, match=r"^error: cannot write .*conv\.pt: .*read-only"):
        convert_checkpoint.main([str(BUNDLED_TINY_ENCODER), str(read_only_folder / "conv.pt")])
    with pytest.raises(SystemExit, match=r"^error: .*read-only|^error: .*Read-only"):
        make_synthetic.main(["--output-dir", str(read_only_folder / "synthetic"), "--scenes", "2"])
    # A full disk whose error names no file says so, without another disk's free space.
    unnamed = cannot_write(None, OSError(28, "No space left on device"), atomic=False)
    assert str(unnamed) == "a file could not be written: the disk is full: free some space or write elsewhere"

    for data, refusal in (
        (SAMPLE / "images" / "frame_00000.jpg", r"frame_00000\.jpg is a file: give the scene's folder"),
        (blender_scene(tmp_path / "lego") / "transforms_train.json", r"--data \S*lego blender-data`"),
    ):
        monkeypatch.setattr(sys, "argv", [str(a) for a in train_command(data, tmp_path / "outputs")])
        with pytest.raises(InputError, match=refusal):
            entrypoint()
    assert not (tmp_path / "outputs").exists()


def test_a_partial_dataset_is_removed_so_the_rerun_works(small_disk, tmp_path):
    """pixelsplat-make-synthetic on a disk that fills midway (the train chunk fits, the test chunk does not): what
    fitted is removed again, so the rerun once there is room is not refused for it ("already holds chunk files")."""
    from pixelsplat_ns.cli import make_synthetic

    def argv(out):
        scene = ["--scene.height", "64", "--scene.width", "64", "--scene.min-frames", "24", "--scene.max-frames", "24"]
        return ["--output-dir", str(out), "--scenes", "6", "--test-fraction", "0.5", *scene]

    make_synthetic.main(argv(tmp_path / "probe"))  # the same dataset where there is room: its chunks' sizes
    train_bytes = sum(p.stat().st_size for p in (tmp_path / "probe" / "train").iterdir())
    test_bytes = sum(p.stat().st_size for p in (tmp_path / "probe" / "test").iterdir())
    assert test_bytes > 40_000, "the test chunk must not fit in what the fill leaves beyond the train chunk"
    fill(small_disk, leave_kb=(train_bytes + 20_000) // 1024)
    with pytest.raises(SystemExit, match="the disk is full"):
        make_synthetic.main(argv(small_disk / "synthetic"))
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
    (small_disk / "filler").unlink()
    make_synthetic.main(argv(small_disk / "synthetic"))
    assert (small_disk / "synthetic" / "test" / "index.json").is_file()


def test_ns_train_checks_the_room_for_a_checkpoint_before_training(small_disk, monkeypatch):
    """A disk without room for one checkpoint is refused after the prediction, before any training step (it used
    to train every step, then fail at the first save), and the run folder it made is removed again."""
    from nerfstudio.scripts.train import entrypoint

    from helpers.cli import SAMPLE, SMALL_CONTEXT, train_command

    command = train_command(SAMPLE, small_disk / "outputs", "--max-num-iterations", "30", *SMALL_CONTEXT)
    monkeypatch.setattr(sys, "argv", [str(a) for a in command])
    with pytest.raises(CannotWrite, match=r"step-000000000\.ckpt: the disk is full \(it needs about \d+\.\d MB"):
        entrypoint()
    assert not list(small_disk.rglob("config.yml")), "the run folder, which held nothing to resume, is removed"
