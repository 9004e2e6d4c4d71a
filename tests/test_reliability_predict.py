"""``dla predict`` on awkward inputs: the same file name in two folders, images above the pixel budget, an
out-of-memory error in inference, ``--out`` naming a file, and folders and glob patterns as inputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dla.cli import main
from dla.commands import predictor as predictor_module
from dla.commands.predict import find_images, output_names, predict_files
from dla.commands.predictor import window_for
from dla.errors import DLAError
from dla.tasks import segmentation
from engine_runs import write_image

# 1. The same file name in two folders


def test_same_name_in_two_folders_writes_both_under_their_folders(segmentation_checkpoint, tmp_path):
    images = [write_image(tmp_path / "a" / "x.png", seed=1), write_image(tmp_path / "b" / "x.png", seed=2)]
    written = predict_files(segmentation_checkpoint, images, str(tmp_path / "out"))
    expected = {tmp_path / "out" / folder / f"x_{kind}.png" for folder in "ab" for kind in ("mask", "overlay")}
    expected.add(tmp_path / "out" / "summary.json")
    assert len(written) == 5 and set(written) == expected and all(path.is_file() for path in expected)
    overlays = [np.asarray(Image.open(tmp_path / "out" / folder / "x_overlay.png")) for folder in "ab"]
    assert not np.array_equal(*overlays)  # each is drawn over its own image


def test_output_names_never_collide():
    def names(*files):
        return [str(name) for name in output_names([(Path(f), Path(f).parent) for f in files])]

    assert names("/d/x.png") == ["x"]
    assert names("/d/a/x.png", "/d/b/x.png") == ["a/x", "b/x"]
    assert names("/d/x.png", "/d/x.jpg", "/d/y.png") == ["x.png", "x.jpg", "y"]  # same stem: the extension stays
    assert names("/d/Photo.png", "/d/photo.jpg") == ["Photo.png", "photo.jpg"]  # one file on case-insensitive disks
    assert names("/d/x.png", "/d/x.jpg", "/d/x.png.png") == ["x.png", "x.jpg", "x.png.png"]
    # a folder given is the base of its images' names, even when they all lie in one subfolder
    assert [str(n) for n in output_names([(Path("/d/s/x.png"), Path("/d"))])] == ["s/x"]


def test_classification_keys_each_image_by_its_path(classification_checkpoint, tmp_path):
    images = [write_image(tmp_path / "a" / "x.png", seed=1), write_image(tmp_path / "b" / "x.png", seed=2)]
    assert main(["predict", *images, "--checkpoint", classification_checkpoint, "--out", str(tmp_path / "out")]) == 0
    ranked = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert list(ranked) == images and all(len(classes) == 2 for classes in ranked.values())


# 2. Images above the pixel budget, and memory running out


@pytest.fixture
def windows(monkeypatch) -> list:
    """The ``window`` of each image ``dla.tasks.segmentation.segment`` is called with, as ``(height, width, window)``."""
    seen, real = [], segmentation.segment

    def recording(model, images, meta, device, **options):
        seen.extend((image.height, image.width, options["window"]) for image in images)
        return real(model, images, meta, device, **options)

    monkeypatch.setattr(segmentation, "segment", recording)
    return seen


def test_a_large_image_runs_in_windows_and_says_so_once(segmentation_checkpoint, tmp_path, windows, capsys):
    small, large = write_image(tmp_path / "small.png", (20, 16)), write_image(tmp_path / "large.png", (64, 64))
    other = write_image(tmp_path / "other.png", (50, 40))
    out = tmp_path / "out"
    args = ["predict", small, large, other, "--checkpoint", segmentation_checkpoint, "--out", str(out), "--max-pixels", "1000"]
    assert main(args) == 0
    assert windows == [(16, 20, None), (64, 64, (32, 32)), (40, 50, (32, 32))]
    printed = capsys.readouterr().out
    assert printed.count("sliding-window") == 1 and "2 image(s) above 1000 pixels" in printed and "large.png" in printed
    assert Image.open(out / "large_mask.png").size == (64, 64) and Image.open(out / "other_mask.png").size == (50, 40)


def test_the_default_budget_runs_ordinary_images_whole(segmentation_checkpoint, tmp_path, windows, capsys):
    predict_files(segmentation_checkpoint, [write_image(tmp_path / "x.png", (64, 64))], str(tmp_path / "out"))
    assert windows == [(64, 64, None)] and "sliding-window" not in capsys.readouterr().out


def test_a_window_given_tiles_every_image_with_it(segmentation_checkpoint, tmp_path, windows, capsys):
    images = [write_image(tmp_path / "small.png", (20, 16)), write_image(tmp_path / "large.png", (64, 64))]
    predict_files(segmentation_checkpoint, images, str(tmp_path / "out"), max_pixels=1000, window=[16, 16])
    assert windows == [(16, 20, (16, 16)), (64, 64, (16, 16))] and "sliding-window" not in capsys.readouterr().out


def test_window_follows_the_budget():
    assert window_for(4_000_000) == (1024, 1024)
    assert window_for(200_000) == (416, 416)  # the largest multiple of 32 whose square fits
    assert window_for(1000) == (32, 32) and window_for(1) == (32, 32)  # one 32 x 32 window at least


def test_boundaries_refuse_a_large_image_before_predicting_any(boundary_checkpoint, tmp_path, capsys):
    small, large = write_image(tmp_path / "small.png", (20, 16)), write_image(tmp_path / "large.png", (64, 64))
    out = tmp_path / "out"
    args = ["predict", small, large, "--checkpoint", boundary_checkpoint, "--out", str(out), "--max-pixels", "1000"]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "large.png (64x64)" in error and "1000" in error and "--max-pixels 4096" in error and "small.png" not in error
    assert not out.exists()
    assert main([*args[:-1], "4096"]) == 0 and (out / "large_boundaries.png").is_file()


def test_classification_takes_a_large_image_as_any_other(classification_checkpoint, tmp_path):
    image = write_image(tmp_path / "large.png", (64, 64))
    predict_files(classification_checkpoint, [image], str(tmp_path / "out"), max_pixels=1000)
    assert list(json.loads((tmp_path / "out" / "predictions.json").read_text())) == [image]


def test_a_budget_below_one_pixel_is_refused(tmp_path):
    with pytest.raises(DLAError, match="--max-pixels"):
        predict_files("missing.pt", [write_image(tmp_path / "x.png")], str(tmp_path / "out"), max_pixels=0)


class RunsOutOfMemory(nn.Module):
    """The trained model for its first call, then ``error``."""

    def __init__(self, model: nn.Module, error: Exception) -> None:
        super().__init__()
        self.model, self.error, self.calls = model, error, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            raise self.error
        return self.model(x)


def running_out_of_memory(monkeypatch, error: Exception) -> None:
    real = predictor_module.load_for_inference

    def loading(*args, **kwargs):
        model, meta, cfg = real(*args, **kwargs)
        return RunsOutOfMemory(model, error), meta, cfg

    monkeypatch.setattr(predictor_module, "load_for_inference", loading)


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate 8"),
        MemoryError(),
    ],
)
def test_out_of_memory_names_the_image_and_what_to_do(segmentation_checkpoint, tmp_path, monkeypatch, capsys, error):
    running_out_of_memory(monkeypatch, error)
    first, second = write_image(tmp_path / "first.png"), write_image(tmp_path / "second.png", (30, 22))
    assert main(["predict", first, second, "--checkpoint", segmentation_checkpoint, "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert "second.png (30x22): out of memory" in message and "first.png" not in message
    assert "--window" in message and "--max-pixels" in message


def test_out_of_memory_in_a_whole_image_task_does_not_advise_windows(boundary_checkpoint, tmp_path, monkeypatch):
    running_out_of_memory(monkeypatch, torch.OutOfMemoryError("CUDA out of memory"))
    images = [write_image(tmp_path / "first.png"), write_image(tmp_path / "second.png")]
    with pytest.raises(DLAError, match=r"second.png \(24x20\): out of memory .*boundaries runs whole images") as caught:
        predict_files(boundary_checkpoint, images, str(tmp_path / "out"))
    assert "--window" not in str(caught.value) and "--max-pixels" in str(caught.value)


def test_other_errors_in_inference_are_not_called_out_of_memory(segmentation_checkpoint, tmp_path, monkeypatch):
    running_out_of_memory(monkeypatch, RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    images = [write_image(tmp_path / "first.png"), write_image(tmp_path / "second.png")]
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        predict_files(segmentation_checkpoint, images, str(tmp_path / "out"))


# 3. --out naming a file


@pytest.mark.parametrize("inside", ["", "sub"])
def test_out_naming_a_file_is_refused_before_anything(tmp_path, capsys, inside):
    (tmp_path / "taken").write_text("a file\n")
    out = tmp_path / "taken" / inside
    image = write_image(tmp_path / "x.png")
    assert main(["predict", image, "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "must be a folder" in error and str(tmp_path / "taken") in error and "missing.pt" not in error


# 4. Folders and glob patterns


@pytest.fixture
def folder(tmp_path) -> Path:
    """``b.png``, ``a.jpg``, a text file, a hidden image, ``sub/c.png`` and ``.hidden/d.png``."""
    root = tmp_path / "images"
    for name in ("b.png", "a.jpg", ".hidden.png", "sub/c.png", ".hidden/d.png"):
        write_image(root / name)
    (root / "notes.txt").write_text("not an image\n")
    return root


def test_a_folder_is_its_images_sorted_and_subfolders_with_recursive(folder):
    assert [file for file, _ in find_images([str(folder)])] == [folder / "a.jpg", folder / "b.png"]
    found = find_images([str(folder)], recursive=True)
    assert found == [(folder / name, folder) for name in ("a.jpg", "b.png", "sub/c.png")]


def test_predict_a_folder_keeps_its_layout(segmentation_checkpoint, folder, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--recursive", "--checkpoint", segmentation_checkpoint, "--out", str(out)]) == 0
    masks = sorted(str(path.relative_to(out)) for path in out.rglob("*_mask.png"))
    assert masks == ["a_mask.png", "b_mask.png", "sub/c_mask.png"] and "wrote 7 files" in capsys.readouterr().out


def test_an_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not an image\n")
    with pytest.raises(DLAError, match=r"empty: no images in this folder .*--recursive"):
        find_images([str(tmp_path / "empty")])
    with pytest.raises(DLAError, match="no images in this folder"):
        find_images([str(tmp_path / "empty")], recursive=True)


def test_an_unexpanded_glob_pattern_is_expanded(folder):
    assert [file for file, _ in find_images([str(folder / "*.png")])] == [folder / "b.png"]
    assert [file for file, _ in find_images([str(folder / "**" / "*.png")])] == [folder / "b.png", folder / "sub" / "c.png"]
    with pytest.raises(DLAError, match=r"\*\.gif: no file matches this pattern"):
        find_images([str(folder / "*.gif")])


def test_a_file_named_twice_is_predicted_once(folder, monkeypatch):
    monkeypatch.chdir(folder)
    assert find_images(["b.png", "./b.png", folder / "b.png", "*.png"]) == [(Path("b.png"), Path("."))]
