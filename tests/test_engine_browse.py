"""``dla browse``: the first training samples exactly as ``dla train`` augments them, drawn by each task with its
labels, and the pictures' parts (un-normalising, legends, boundary marks, grids)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dla.cli import main
from dla.commands.browse import training_samples
from dla.commands.demo import NEXT_STEPS
from dla.data import BSDS_META, CAMVID_META
from dla.engine.datasets import build_datasets
from dla.engine.sampling import make_train_loader
from dla.errors import DLAError
from dla.tasks import boundaries, classification, get_task, segmentation
from dla.tasks.base import Sample
from dla.tasks.visualize import figure_image, grid_figure, palette_legend, unnormalize
from engine_runs import quick_config, write_boundary_folder

SYNTHETIC = ["data.dataset=synthetic", "data.options={length: 8, height: 48, width: 64}", "data.crop_size=[40, 40]"]


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


def test_the_samples_are_the_first_batch_that_training_sees(tmp_path):
    cfg = quick_config(tmp_path / "run", *SYNTHETIC, "data.batch_size=4", "data.rotation=20", "seed=3")
    task = get_task("segmentation")
    samples, meta = training_samples(cfg, task, "train", 4)
    loader, batches = make_train_loader(build_datasets(cfg, task)[0], cfg, torch.device("cpu"))
    batches.set_epoch(0)
    images, targets = next(iter(loader))
    for sample, image, target in zip(samples, images, targets, strict=True):
        assert np.array_equal(np.asarray(sample.image), np.asarray(unnormalize(image, meta.mean, meta.std)))
        assert np.array_equal(sample.target, target.numpy())
    assert len({sample.title for sample in samples}) == 4 and all(sample.title.startswith("#") for sample in samples)


def test_unnormalize_undoes_the_normalisation():
    pixels = torch.randint(0, 256, (3, 5, 7)).float() / 255
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    normalised = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    image = unnormalize(normalised, mean, std)
    assert image.size == (7, 5) and np.array_equal(np.asarray(image), (pixels * 255).round().byte().permute(1, 2, 0).numpy())
    assert np.asarray(unnormalize(torch.full((3, 2, 2), 50.0), mean, std)).max() == 255  # jitter beyond 1 is clipped
    with pytest.raises(DLAError, match="3 x H x W"):
        unnormalize(torch.zeros(1, 4, 4), mean, std)


def test_legend_lists_the_classes_shown_in_class_order():
    labels = [np.array([[3, 255], [1, 1]]), np.array([[3, 0]])]
    assert palette_legend(CAMVID_META.classes, CAMVID_META.palette, labels) == [
        (CAMVID_META.classes[i], CAMVID_META.palette[i]) for i in (0, 1, 3)
    ]


def test_grid_has_one_picture_per_tile_and_a_legend():
    tiles = [(Image.new("RGB", (40, 20), (i * 40, 0, 0)), f"#{i}") for i in range(5)]
    figure = grid_figure(tiles, legend=[("road", (128, 64, 128))])
    image = figure_image(figure)
    shown = [axes for axes in figure.axes if axes.images]
    assert len(figure.axes) == 6 and len(shown) == 5  # a 3 x 2 grid, the last cell empty
    assert [axes.get_title() for axes in shown] == [f"#{i}" for i in range(5)]
    assert image.width > image.height  # the tiles' aspect
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["road"]
    with pytest.raises(DLAError, match="at least one"):
        grid_figure([])


def captured_grid(monkeypatch, module):
    """Replace ``module.draw_grid`` by a recorder of its arguments."""
    calls = []
    monkeypatch.setattr(module, "draw_grid", lambda tiles, columns=None, legend=(): calls.append((tiles, legend)))
    return calls


def test_each_task_draws_its_labels(monkeypatch):
    grey = Image.new("RGB", (4, 3), (100, 100, 100))
    label = np.array([[1, 0, 0, 255], [0, 1, 0, 0], [0, 0, 1, 0]])

    calls = captured_grid(monkeypatch, boundaries)
    get_task("boundaries").draw_samples([Sample("#0", grey, label)], BSDS_META)
    ((tile, title),) = calls[0][0]
    pixels = np.asarray(tile)
    assert title == "#0" and calls[0][1] == boundaries.SAMPLE_MARKS
    assert tuple(pixels[0, 0]) == (224, 20, 20) and tuple(pixels[0, 3]) == (20, 122, 224)  # 0.8 red, 0.8 blue
    assert tuple(pixels[0, 1]) == (100, 100, 100)  # not a boundary: the image

    calls = captured_grid(monkeypatch, segmentation)
    get_task("segmentation").draw_samples([Sample("#2", grey, label)], CAMVID_META)
    ((tile, _),) = calls[0][0]
    assert tuple(np.asarray(tile)[0, 3]) == (100, 100, 100)  # ignored: left as it is
    assert [name for name, _ in calls[0][1]] == ["Sky", "Building"]

    calls = captured_grid(monkeypatch, classification)
    get_task("classification").draw_samples([Sample("#7", grey, 1)], CAMVID_META)
    assert [title for _, title in calls[0][0]] == ["#7 Building"] and calls[0][1] == ()


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """A tiny boundary layout and a tiny ImageFolder, with the configs that browse them."""
    root = tmp_path_factory.mktemp("layouts")
    edges = write_boundary_folder(root / "edges", {"train": 3}, (48, 56))
    for name in ("ants", "bees"):
        (root / "folder" / "train" / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 30), (200 * i, 90, 10)).save(root / "folder" / "train" / name / f"{i}.png")
    return {
        "segmentation": {"data": {"dataset": "synthetic", "options": {"length": 4, "height": 48, "width": 64}}},
        "boundaries": {"task": "boundaries", "data": {"dataset": "boundary_folder", "root": str(edges), "crop_size": [40, 40]}},
        "classification": {
            "task": "classification",
            "data": {"dataset": "imagefolder", "root": str(root / "folder"), "crop_size": [32, 32], "resize": [36]},
        },
    }


@pytest.mark.parametrize("task", ["segmentation", "boundaries", "classification"])
def test_browse_writes_a_grid_for_each_task(layouts, tmp_path, task, capsys):
    config = write_config(tmp_path / f"{task}.yaml", **layouts[task])
    out = tmp_path / "pictures" / "grid.png"
    assert main(["browse", str(config), "--n", "3", "--out", str(out), "--set", "data.crop_size=[40, 40]"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    with Image.open(out) as image:
        assert image.mode == "RGB" and image.width > 300


def test_browse_names_its_default_file_and_refuses_bad_requests(layouts, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "seg.yaml", **layouts["segmentation"])
    assert main(["browse", str(config), "--split", "val", "--n", "1"]) == 0
    assert (tmp_path / "browse_synthetic_val.png").is_file()
    assert main(["browse", str(config), "--n", "0"]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    wrong = write_config(tmp_path / "wrong.yaml", **{**layouts["segmentation"], "task": "classification"})
    assert main(["browse", str(wrong)]) == 2
    assert "is a segmentation dataset but the task is classification" in capsys.readouterr().err


def test_browse_the_camvid_recipe(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("DLA_DATA_ROOT", str(real_data("camvid", "train").parent))
    config = Path(__file__).resolve().parents[1] / "configs" / "camvid_cpu.yaml"
    assert main(["browse", str(config), "--n", "4", "--out", str(tmp_path / "camvid.png")]) == 0
    with Image.open(tmp_path / "camvid.png") as image:
        assert image.mode == "RGB" and image.width > 400


def test_the_demos_next_steps_config_reads_a_folder_layout(tmp_path, capsys):
    """``configs/my_data.yaml``, which ``dla demo`` points to, on a folder of the layout its header describes."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (tmp_path / "data" / "images" / split).mkdir(parents=True)
        (tmp_path / "data" / "masks" / split).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
                tmp_path / "data" / "images" / split / f"{i}.jpg"
            )
            Image.fromarray(rng.integers(0, 3, (48, 64), dtype=np.uint8)).save(tmp_path / "data" / "masks" / split / f"{i}.png")
    (tmp_path / "data" / "classes.txt").write_text("road\ncar\nsky\n")
    config = Path(__file__).resolve().parents[1] / "configs" / "my_data.yaml"
    out = tmp_path / "grid.png"
    assert main(["browse", str(config), "--set", f"data.root={tmp_path / 'data'}", "--n", "2", "--out", str(out)]) == 0
    assert out.is_file() and "my_data.yaml" in NEXT_STEPS
