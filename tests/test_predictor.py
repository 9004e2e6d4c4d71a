"""``dla.Predictor`` and what ``dla predict`` writes: the same results from Python (PIL images, NumPy arrays, paths,
lists) as in the written files, bad inputs named, ``summary.json``, and batches that change nothing."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dla import DLAError, Prediction, Predictor
from dla.cli import main
from dla.tasks import TASKS
from engine_runs import train_tiny, write_image

TASK_NAMES = ("segmentation", "classification", "boundaries")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """A one-epoch stand-in checkpoint of each task (a few seconds in all)."""
    return {task: train_tiny(tmp_path_factory.mktemp(task), task, tmp_path_factory.mktemp("rectangles")) for task in TASK_NAMES}


def predicted(checkpoint: str, images: list[str], out: Path, *options: str) -> dict:
    """Run ``dla predict`` (with ``--probs``) into ``out``; its ``summary.json``."""
    assert main(["predict", *images, "--checkpoint", checkpoint, "--out", str(out), "--probs", *options]) == 0
    return json.loads((out / "summary.json").read_text())


def as_inputs(path: str) -> dict[str, object]:
    """The image at ``path`` as every kind of input the predictor takes."""
    pixels = np.asarray(Image.open(path))
    return {"path": path, "pathlib": Path(path), "PIL": Image.open(path), "NumPy": pixels}


# 1. The same results as the written files, from every kind of input


def test_segmentation_from_every_input_equals_the_written_files(checkpoints, tmp_path):
    rgb, grey = write_image(tmp_path / "rgb.png"), write_image(tmp_path / "grey.png", (30, 22), seed=1, mode="L")
    summary = predicted(checkpoints["segmentation"], [rgb, grey], tmp_path / "out")
    predictor = Predictor(checkpoints["segmentation"])
    assert predictor.task == "segmentation" and predictor.classes == summary["classes"] and len(predictor.palette) == 3
    for path, record in zip((rgb, grey), summary["images"], strict=True):
        stem = tmp_path / "out" / Path(path).stem
        mask, probs = np.asarray(Image.open(f"{stem}_mask.png")), np.load(f"{stem}_probs.npy")
        overlay = np.asarray(Image.open(f"{stem}_overlay.png"))
        for kind, image in as_inputs(path).items():
            prediction = predictor(image, probabilities=True)
            assert np.array_equal(prediction.arrays["mask"], mask), kind
            assert prediction.arrays["mask"].dtype == np.int64 and prediction.arrays["probabilities"].dtype == np.float32
            np.testing.assert_allclose(prediction.arrays["probabilities"], probs, atol=1e-3)  # the file is float16
            pictures = prediction.pictures()
            assert np.array_equal(np.asarray(pictures["overlay"]), overlay) and pictures["mask"].mode == "P"
            assert np.array_equal(np.asarray(pictures["mask"]), mask)
            assert prediction.summary == record["summary"] and prediction.size == tuple(record["size"])
            assert prediction.path == (Path(path) if kind in ("path", "pathlib") else None)
        assert "probabilities" not in predictor(path).arrays


def test_a_list_gives_predictions_in_order(checkpoints, tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", (24 + i, 20), seed=i) for i in range(3)]
    predictor = Predictor(checkpoints["segmentation"])
    listed = predictor([paths[0], Image.open(paths[1]), np.asarray(Image.open(paths[2]))])
    assert isinstance(listed, list) and all(isinstance(p, Prediction) for p in listed)
    assert [p.size for p in listed] == [(24, 20), (25, 20), (26, 20)]
    assert all(np.array_equal(a.arrays["mask"], predictor(path).arrays["mask"]) for a, path in zip(listed, paths, strict=True))
    assert predictor(tuple(paths[:1]))[0].summary == listed[0].summary and predictor([]) == []


def test_boundaries_equal_the_written_files(checkpoints, tmp_path):
    path = write_image(tmp_path / "x.png", (40, 36))
    summary = predicted(checkpoints["boundaries"], [path], tmp_path / "out")
    predictor = Predictor(checkpoints["boundaries"])
    for kind, image in as_inputs(path).items():
        prediction = predictor(image)
        pictures = prediction.pictures()
        for name in ("boundaries", "thin"):
            assert np.array_equal(np.asarray(pictures[name]), np.asarray(Image.open(tmp_path / "out" / f"x_{name}.png"))), kind
        np.testing.assert_allclose(prediction.arrays["boundaries"], np.load(tmp_path / "out" / "x_probs.npy"), atol=1e-3)
        assert prediction.summary == summary["images"][0]["summary"]
        assert prediction.summary["edge_pixels"] == int((prediction.arrays["thin"] >= 0.5).sum())


def test_classification_equals_the_written_files(checkpoints, tmp_path):
    paths = [write_image(tmp_path / "a.png", seed=0), write_image(tmp_path / "b.png", (16, 16), seed=1, mode="L")]
    summary = predicted(checkpoints["classification"], paths, tmp_path / "out", "--top-k", "1")
    ranked = json.loads((tmp_path / "out" / "predictions.json").read_text())
    predictor = Predictor(checkpoints["classification"], top_k=1)
    for path, record in zip(paths, summary["images"], strict=True):
        for kind, image in as_inputs(path).items():
            prediction = predictor(image)
            (top,) = prediction.summary["top_k"]
            assert prediction.summary == record["summary"] and [[top["class"], top["probability"]]] == ranked[path], kind
            assert prediction.arrays["probabilities"].shape == (2,) and prediction.pictures() == {}
            assert top["index"] == int(prediction.arrays["probabilities"].argmax())
    assert summary["outputs"] == ["predictions.json"] and all(record["outputs"] == [] for record in summary["images"])


def test_a_shared_folder_predicts_as_the_checkpoint(checkpoints, tmp_path):
    checkpoint, image = checkpoints["segmentation"], write_image(tmp_path / "x.png")
    assert main(["export", checkpoint, "--format", "hub", "--out", str(tmp_path / "shared")]) == 0
    assert np.array_equal(Predictor(tmp_path / "shared")(image).arrays["mask"], Predictor(checkpoint)(image).arrays["mask"])


@pytest.mark.slow  # exporting to ONNX takes about 10 s
def test_an_onnx_export_predicts_as_the_checkpoint(checkpoints, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    checkpoint, images = checkpoints["segmentation"], [write_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    assert main(["export", checkpoint, "--out", str(tmp_path / "model.onnx")]) == 0
    graph = Predictor(tmp_path / "model.onnx", batch_size=2)
    assert graph.settings["backend"] == "onnxruntime"
    for of_graph, of_checkpoint in zip(graph(images), Predictor(checkpoint)(images), strict=True):
        assert np.array_equal(of_graph.arrays["mask"], of_checkpoint.arrays["mask"])


# 2. Bad inputs


@pytest.mark.parametrize(
    ("image", "named"),
    [
        (3, "the input: int is not an image"),
        (torch.zeros(3, 4, 4), "the input: Tensor is not an image"),
        ([np.zeros((4, 4), np.uint8), None], "input 1: NoneType is not an image"),
        (np.zeros((4, 4, 3), np.float32), r"got shape \(4, 4, 3\) and dtype float32"),
        (np.zeros((4, 4, 4), np.uint8), r"got shape \(4, 4, 4\)"),
        (Image.new("F", (4, 4)), "the input \\(a PIL image\\): image has mode F"),
        ("missing.png", "missing.png: image file not found"),
        ("notes.txt", r"notes.txt: cannot read the image .*not an image"),
    ],
)
def test_what_is_not_an_image_is_named(checkpoints, tmp_path, monkeypatch, image, named):
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("not an image\n")
    with pytest.raises(DLAError, match=named):
        Predictor(checkpoints["segmentation"])(image)


def test_bad_settings_are_refused_before_loading(tmp_path):
    for option, flag in (({"batch_size": 0}, "--batch-size"), ({"top_k": 0}, "--top-k"), ({"max_pixels": 0}, "--max-pixels")):
        with pytest.raises(DLAError, match=flag):
            Predictor(tmp_path / "missing.pt", **option)


def test_large_images_are_tiled_or_refused_as_by_dla_predict(checkpoints, tmp_path, capsys):
    image = write_image(tmp_path / "large.png", (64, 48))
    predicted(checkpoints["segmentation"], [image], tmp_path / "out", "--max-pixels", "1000")
    tiled = Predictor(checkpoints["segmentation"], max_pixels=1000)(Image.open(image))
    assert np.array_equal(tiled.arrays["mask"], np.asarray(Image.open(tmp_path / "out" / "large_mask.png")))
    assert "run in 32x32 windows" in capsys.readouterr().out
    with pytest.raises(DLAError, match=r"the image \(64x48\): 3072 pixels, above the budget of 1000"):
        Predictor(checkpoints["boundaries"], max_pixels=1000)(np.asarray(Image.open(image)))


# 3. summary.json


def test_the_summary_describes_the_run_and_every_image(checkpoints, tmp_path):
    images = [write_image(tmp_path / "in" / "a.png"), write_image(tmp_path / "in" / "sub" / "b.png", (33, 17), seed=3)]
    out = tmp_path / "out"
    summary = predicted(checkpoints["segmentation"], [str(tmp_path / "in")], out, "--recursive", "--flip")
    assert summary["task"] == "segmentation" and summary["model"] == "engine_train_tiny" and summary["device"] == "cpu"
    assert summary["checkpoint"] == checkpoints["segmentation"] and summary["classes"] == ["background", "bright", "dark"]
    assert summary["settings"]["eval"] == {"scales": [1.0], "flip": True, "window": None, "output_stride": None}
    assert summary["settings"]["batch_size"] == 1 and summary["settings"]["backend"] == "eager"
    assert [record["path"] for record in summary["images"]] == images and summary["seconds"] > 0
    for record in summary["images"]:
        width, height = record["size"]
        mask = np.asarray(Image.open(out / record["outputs"][0]))
        assert Image.open(record["path"]).size == (width, height) and record["seconds"] > 0
        assert record["outputs"] == [
            str(Path(record["path"]).relative_to(tmp_path / "in").with_suffix("")) + s
            for s in ("_mask.png", "_overlay.png", "_probs.npy")
        ]
        counts = record["summary"]["class_pixels"]
        assert sum(counts.values()) == width * height
        assert list(counts.values()) == np.bincount(mask.ravel(), minlength=3).tolist()


def test_the_progress_bar_shows_on_a_terminal_unless_quiet(checkpoints, tmp_path, monkeypatch, capsys):
    image, checkpoint = write_image(tmp_path / "x.png"), checkpoints["segmentation"]
    assert main(["predict", image, "--checkpoint", checkpoint, "--out", str(tmp_path / "a")]) == 0
    assert "predicting" not in capsys.readouterr().err  # stderr is not a terminal here
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert main(["predict", image, "--checkpoint", checkpoint, "--out", str(tmp_path / "b")]) == 0
    assert "predicting: 100%" in capsys.readouterr().err
    assert main(["predict", image, "--checkpoint", checkpoint, "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert "predicting" not in capsys.readouterr().err


# 4. Batches


@pytest.fixture
def batches(monkeypatch) -> dict[str, list[int]]:
    """How many images each call of each task's ``predict`` got, by task."""
    seen: dict[str, list[int]] = {name: [] for name in TASKS}
    for name, task in TASKS.items():
        real = task.predict

        def recording(model, images, *args, name=name, real=real, **kwargs):
            seen[name].append(len(images))
            return real(model, images, *args, **kwargs)

        monkeypatch.setattr(task, "predict", recording)
    return seen


@pytest.mark.parametrize("task", TASK_NAMES)
def test_a_batch_predicts_what_single_images_do(checkpoints, tmp_path, batches, task):
    sizes = [(24, 20), (24, 20), (24, 20), (24, 20), (30, 20), (24, 20)]
    images = [write_image(tmp_path / "in" / f"{i}.png", size, seed=i) for i, size in enumerate(sizes)]
    one = predicted(checkpoints[task], images, tmp_path / "one")
    assert batches[task] == [1] * 6
    batches[task].clear()
    three = predicted(checkpoints[task], images, tmp_path / "three", "--batch-size", "3")
    assert batches[task] == [3, 1, 1, 1] and three["settings"]["batch_size"] == 3  # consecutive images of one size
    for a, b in zip(one["images"], three["images"], strict=True):
        assert a["outputs"] == b["outputs"] and a["size"] == b["size"]
        if task == "classification":  # the same classes, their probabilities within float tolerance
            tops = [
                [(top["class"], top["index"], pytest.approx(top["probability"], abs=1e-6)) for top in record["summary"]["top_k"]]
                for record in (a, b)
            ]
            assert tops[0] == tops[1]
        else:
            assert a["summary"] == b["summary"]
        for name in a["outputs"]:
            files = [tmp_path / folder / name for folder in ("one", "three")]
            if name.endswith(".npy"):
                np.testing.assert_allclose(*(np.load(f).astype(np.float32) for f in files), atol=1e-3)
            else:  # a float difference may round to the next of 65536 levels, not of 256
                levels = [np.asarray(Image.open(f)).astype(np.int64) for f in files]
                assert np.abs(levels[0] - levels[1]).max() <= (1 if name.endswith("16.png") else 0), name
    batches[task].clear()
    predictor = Predictor(checkpoints[task], batch_size=4)
    together, alone = predictor(images), [Predictor(checkpoints[task])(image) for image in images]
    assert batches[task] == [4, 1, 1] + [1] * 6
    for a, b in zip(together, alone, strict=True):
        for name in a.arrays:
            np.testing.assert_allclose(a.arrays[name], b.arrays[name], atol=1e-5)
