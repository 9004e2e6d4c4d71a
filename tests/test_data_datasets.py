"""Datasets: the real CamVid, every on-disk layout built small in tmp_path, and every kind of bad data."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dla.data import (
    CAMVID_META,
    DATASETS,
    CamVid,
    Cityscapes,
    FolderDataset,
    ListFileDataset,
    SyntheticShapes,
    VOCSegmentation,
    build_dataset,
    default_palette,
    eval_transforms,
    prepare_cityscapes,
    train_transforms,
)
from dla.errors import DLAError

H, W = 12, 16


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    """Write ``array`` as an image at ``path`` (parents created); mode follows the array (uint8 HxW: L, HxWx3: RGB)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def random_rgb(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def label_with(values, height: int = H, width: int = W) -> np.ndarray:
    """A uint8 label whose rows cycle through ``values``."""
    values = np.asarray(values, dtype=np.uint8)
    return np.repeat(values[np.arange(height) % len(values)][:, None], width, axis=1)


# ----------------------------------------------------------------------------------------------- CamVid


def make_camvid(root: Path, names=("a", "b", "c"), split: str = "train") -> Path:
    for i, name in enumerate(names):
        save(root / split / f"{name}.png", random_rgb(i))
        save(root / f"{split}annot" / f"{name}.png", label_with([0, 3, 10, 11]))
    return root


@pytest.fixture
def camvid_root(tmp_path):
    return make_camvid(tmp_path / "camvid")


@pytest.fixture
def camvid(real_data):
    """The real CamVid (the test is skipped without it)."""
    return real_data("camvid", "train")


def test_real_camvid_splits_and_meta(camvid):
    train, val = CamVid(camvid, "train"), CamVid(camvid, "val")
    assert (len(train), len(val)) == (367, 101)
    assert train.meta.num_classes == 11 and train.meta.classes[0] == "Sky" and train.meta.classes[-1] == "Bicyclist"
    assert len(train.meta.palette) == 11 and train.meta.ignore_index == 255
    assert all(image.name == label.name for image, label in train.files)


def test_real_camvid_samples_map_void_to_ignore(camvid):
    dataset = CamVid(camvid, "val")
    void_seen = 0
    for index in (0, 17, 50, len(dataset) - 1):
        image, label = dataset.read(index)
        raw = np.asarray(Image.open(dataset.files[index][1]))
        assert image.mode == "RGB" and image.size == (480, 360)
        assert label.shape == (360, 480) and label.dtype == np.int64
        assert set(np.unique(label)) <= set(range(11)) | {255}
        np.testing.assert_array_equal(label == 255, raw == 11)
        np.testing.assert_array_equal(label[raw != 11], raw[raw != 11])
        void_seen += int((raw == 11).sum())
    assert void_seen > 0, "the checked samples should contain void pixels"


def test_real_camvid_through_transforms(camvid):
    dataset = CamVid(camvid, "train", transform=train_transforms(CAMVID_META, (128, 160)))
    image, label = dataset[3]
    assert image.shape == (3, 128, 160) and image.dtype == torch.float32
    assert label.shape == (128, 160) and label.dtype == torch.int64
    evaluation = CamVid(camvid, "val", transform=eval_transforms(dataset.meta))
    image, label = evaluation[0]
    assert image.shape == (3, 360, 480) and label.shape == (360, 480)


def test_camvid_layout_pairs_and_maps_void(camvid_root):
    dataset = CamVid(camvid_root, "train")
    assert len(dataset) == 3
    assert [(image.name, label.parent.name) for image, label in dataset.files] == [(f"{n}.png", "trainannot") for n in "abc"]
    image, label = dataset[1]
    np.testing.assert_array_equal(np.asarray(image), random_rgb(1))
    expected = label_with([0, 3, 10, 11]).astype(np.int64)
    expected[expected == 11] = 255
    np.testing.assert_array_equal(label, expected)


def test_real_camvid_sequence_held_out_splits(camvid):
    """``train_heldout`` and ``heldout`` cut train by drive: 0006R0's 101 frames apart, no frame in both, none of val."""
    rest, heldout = CamVid(camvid, "train_heldout"), CamVid(camvid, "heldout")
    assert (len(rest), len(heldout)) == (266, 101)
    assert all(image.name.startswith("0006R0") for image, _ in heldout.files)
    assert not any(image.name.startswith("0006R0") for image, _ in rest.files)
    names = {image.name for image, _ in CamVid(camvid, "train").files}
    assert {image.name for image, _ in rest.files} | {image.name for image, _ in heldout.files} == names


def test_camvid_sequence_splits_read_the_train_folder_by_drive(tmp_path):
    root = make_camvid(tmp_path / "camvid", names=("0001TP_1", "0006R0_1", "0006R0_2", "0016E5_1"))
    assert [image.name for image, _ in CamVid(root, "heldout").files] == ["0006R0_1.png", "0006R0_2.png"]
    assert [image.name for image, _ in CamVid(root, "train_heldout").files] == ["0001TP_1.png", "0016E5_1.png"]
    make_camvid(tmp_path / "other", names=("0001TP_1",))
    with pytest.raises(DLAError, match="heldout"):  # no frame of the drive: an empty split, named
        CamVid(tmp_path / "other", "heldout")


def test_camvid_unknown_split(camvid_root):
    with pytest.raises(DLAError, match="trainval"):
        CamVid(camvid_root, "trainval")


# ------------------------------------------------------------------------------------------- Cityscapes

LABEL_IDS = np.arange(34, dtype=np.uint8)
# label id -> train id, written out independently of the loader's table
EXPECTED_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}


def make_cityscapes(root: Path) -> Path:
    ids = np.tile(LABEL_IDS, (2, 1))  # 2 x 34, every label id
    for split, city, number in (("train", "aachen", 19), ("train", "bochum", 20), ("val", "lindau", 21)):
        stem = f"{city}_000000_0000{number}"
        save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", random_rgb(number, 2, 34))
        save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", ids)
    return root


def expected_train_ids() -> np.ndarray:
    row = np.array([EXPECTED_TRAIN_IDS.get(i, 255) for i in range(34)])
    return np.tile(row, (2, 1))


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    dataset = Cityscapes(make_cityscapes(tmp_path), "train")
    assert len(dataset) == 2 and dataset.meta.num_classes == 19
    assert dataset.meta.classes[0] == "road" and dataset.meta.palette[0] == (128, 64, 128)
    assert all(label.name.endswith("_gtFine_labelIds.png") for _, label in dataset.files)
    image, label = dataset[0]
    assert image.size == (34, 2)
    np.testing.assert_array_equal(label, expected_train_ids())
    assert len(Cityscapes(tmp_path, "val")) == 1


def test_prepare_cityscapes_writes_train_ids(tmp_path):
    root = make_cityscapes(tmp_path)
    assert prepare_cityscapes(root) == 3
    written = sorted(root.glob("gtFine/*/*/*_gtFine_labelTrainIds.png"))
    assert len(written) == 3
    np.testing.assert_array_equal(np.asarray(Image.open(written[0])), expected_train_ids())
    dataset = Cityscapes(root, "train")
    assert all(label.name.endswith("_gtFine_labelTrainIds.png") for _, label in dataset.files)
    np.testing.assert_array_equal(dataset[1][1], expected_train_ids())


def test_cityscapes_prefers_train_id_files(tmp_path):
    root = make_cityscapes(tmp_path)
    label_ids = next(root.glob("gtFine/train/aachen/*_labelIds.png"))
    save(label_ids.with_name(label_ids.name.replace("labelIds", "labelTrainIds")), np.full((2, 34), 5, np.uint8))
    _, label = Cityscapes(root, "train").read(0)
    assert (label == 5).all()


def test_cityscapes_bad_label_ids(tmp_path):
    root = make_cityscapes(tmp_path)
    label_ids = next(root.glob("gtFine/val/lindau/*_labelIds.png"))
    save(label_ids, np.full((2, 34), 40, np.uint8))
    with pytest.raises(DLAError, match=label_ids.name):
        Cityscapes(root, "val").read(0)
    with pytest.raises(DLAError, match=label_ids.name):
        prepare_cityscapes(root)


def test_cityscapes_image_without_label(tmp_path):
    root = make_cityscapes(tmp_path)
    orphan = save(root / "leftImg8bit" / "val" / "lindau" / "lindau_000001_000019_leftImg8bit.png", random_rgb(0))
    with pytest.raises(DLAError, match=orphan.name):
        Cityscapes(root, "val")


def test_prepare_cityscapes_needs_gtfine(tmp_path):
    with pytest.raises(DLAError, match="gtFine"):
        prepare_cityscapes(tmp_path)


# -------------------------------------------------------------------------------------------------- VOC

VOC_IDS = ("2007_000032", "2007_000039", "2007_000063")


def voc_label(index: int) -> np.ndarray:
    return label_with([0, index % 21, 15, 255])


def save_palette_png(path: Path, indices: np.ndarray) -> None:
    """A palette (``P``) PNG storing ``indices``, coloured with the VOC palette, as VOC ships its labels."""
    image = Image.frombytes("P", (indices.shape[1], indices.shape[0]), np.ascontiguousarray(indices, np.uint8).tobytes())
    image.putpalette([v for colour in default_palette(256) for v in colour])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_voc(root: Path, aug_list: bool = True) -> Path:
    for i, name in enumerate(VOC_IDS):
        save(root / "JPEGImages" / f"{name}.jpg", random_rgb(i), quality=95)
        save_palette_png(root / "SegmentationClass" / f"{name}.png", voc_label(i + 1))
        save(root / "SegmentationClassAug" / f"{name}.png", voc_label(i + 5))
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("\n".join(VOC_IDS[:2]) + "\n")
    (sets / "val.txt").write_text(VOC_IDS[2] + "\n")
    if aug_list:
        aug = root / "ImageSets" / "SegmentationAug"
        aug.mkdir(parents=True)
        (aug / "train.txt").write_text("".join(f"/JPEGImages/{n}.jpg /SegmentationClassAug/{n}.png\n" for n in VOC_IDS))
    return root


def test_voc_reads_palette_indices(tmp_path):
    root = make_voc(tmp_path)
    assert Image.open(root / "SegmentationClass" / f"{VOC_IDS[0]}.png").mode == "P"
    dataset = VOCSegmentation(root, "train")
    assert len(dataset) == 2 and dataset.meta.num_classes == 21 and dataset.meta.classes[0] == "background"
    assert dataset.meta.palette[1] == (128, 0, 0)
    image, label = dataset[1]
    assert image.mode == "RGB" and image.size == (W, H)
    np.testing.assert_array_equal(label, voc_label(2))
    assert (label == 255).any()


def test_voc_aug_uses_aug_labels_and_list(tmp_path):
    dataset = VOCSegmentation(make_voc(tmp_path), "train", aug=True)
    assert len(dataset) == 3
    assert dataset.files[0][1].parent.name == "SegmentationClassAug"
    np.testing.assert_array_equal(dataset[2][1], voc_label(7))


def test_voc_aug_falls_back_to_segmentation_list(tmp_path):
    dataset = build_dataset("voc", str(make_voc(tmp_path, aug_list=False)), "val", aug=True)
    assert [p.stem for p, _ in dataset.files] == [VOC_IDS[2]]


def test_voc_missing_split_file_and_image(tmp_path):
    root = make_voc(tmp_path)
    with pytest.raises(DLAError, match="test.txt"):
        VOCSegmentation(root, "test")
    (root / "JPEGImages" / f"{VOC_IDS[1]}.jpg").unlink()
    with pytest.raises(DLAError, match=VOC_IDS[1]):
        VOCSegmentation(root, "train")


# --------------------------------------------------------------------------------------------- listfile


def make_listfile(root: Path, info=None, count: int = 3) -> Path:
    for i in range(count):
        save(root / "imgs" / f"img{i}.jpg", random_rgb(i))
        save(root / "gt" / f"mask_{i}.png", label_with([0, i % 3, 2]))
    (root / "train_images.txt").write_text("".join(f"imgs/img{i}.jpg\n" for i in range(count)) + "\n")
    (root / "train_labels.txt").write_text("".join(f"gt/mask_{i}.png\n" for i in range(count)))
    info = {"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]} if info is None else info
    (root / "info.json").write_text(json.dumps(info))
    return root


def test_listfile_pairs_by_line(tmp_path):
    dataset = ListFileDataset(make_listfile(tmp_path), "train", num_classes=3)
    assert [(image.name, label.name) for image, label in dataset.files] == [(f"img{k}.jpg", f"mask_{k}.png") for k in range(3)]
    assert dataset.meta.classes == ("class_0", "class_1", "class_2")
    assert dataset.meta.mean == (0.1, 0.2, 0.3) and dataset.meta.std == (0.4, 0.5, 0.6)
    assert dataset.meta.palette == tuple(default_palette(3))
    np.testing.assert_array_equal(dataset[2][1], label_with([0, 2, 2]))


def test_listfile_classes_and_palette_from_info(tmp_path):
    palette = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    info = {"mean": [0.5] * 3, "std": [0.25] * 3, "classes": ["sky", "road", "car"], "palette": palette}
    dataset = ListFileDataset(make_listfile(tmp_path, info), "train")
    assert dataset.meta.classes == ("sky", "road", "car") and dataset.meta.palette[2] == (7, 8, 9)
    with pytest.raises(DLAError, match="num_classes=4"):
        ListFileDataset(tmp_path, "train", num_classes=4)


def test_listfile_errors(tmp_path):
    root = make_listfile(tmp_path)
    with pytest.raises(DLAError, match="info.json.*classes"):
        ListFileDataset(root, "train")
    with pytest.raises(DLAError, match="val_images.txt"):
        ListFileDataset(root, "val", num_classes=3)
    (root / "train_labels.txt").write_text("gt/mask_0.png\n")
    with pytest.raises(DLAError, match="train_labels.txt"):
        ListFileDataset(root, "train", num_classes=3)
    (root / "train_labels.txt").write_text("gt/mask_0.png\ngt/mask_1.png\ngt/missing.png\n")
    with pytest.raises(DLAError, match="missing.png"):
        ListFileDataset(root, "train", num_classes=3)
    (root / "info.json").write_text('{"mean": [0.5, 0.5]}')
    with pytest.raises(DLAError, match="info.json.*mean"):
        ListFileDataset(root, "train", num_classes=3)
    (root / "info.json").unlink()
    with pytest.raises(DLAError, match="info.json"):
        ListFileDataset(root, "train", num_classes=3)


# ----------------------------------------------------------------------------------------------- folder


def make_folder(root: Path, split: str = "train", classes=("bg", "cat", "dog")) -> Path:
    for i, name in enumerate(("x1", "x2")):
        save(root / "images" / split / f"{name}.jpg", random_rgb(i))
        save(root / "masks" / split / f"{name}.png", label_with([0, 2, 99]))
    if classes:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def test_folder_pairs_by_stem_with_classes_file(tmp_path):
    dataset = FolderDataset(make_folder(tmp_path), "train", ignore_index=99)
    assert dataset.meta.classes == ("bg", "cat", "dog") and dataset.meta.ignore_index == 99
    assert [(i.name, m.name) for i, m in dataset.files] == [("x1.jpg", "x1.png"), ("x2.jpg", "x2.png")]
    np.testing.assert_array_equal(dataset[0][1], label_with([0, 2, 99]))


def test_folder_ignore_value_is_configurable(tmp_path):
    dataset = FolderDataset(make_folder(tmp_path), "train")  # ignore 255: 99 is not a class
    with pytest.raises(DLAError, match=r"x1\.png.*99"):
        dataset.read(0)


def test_folder_classes_argument_single_split_and_suffix(tmp_path):
    save(tmp_path / "rgb" / "p.png", random_rgb(3))
    save(tmp_path / "ann" / "p_mask.png", label_with([0, 1]))
    dataset = FolderDataset(tmp_path, "all", images_dir="rgb", masks_dir="ann", classes=["a", "b"], mask_suffix="_mask")
    assert dataset.meta.classes == ("a", "b") and len(dataset) == 1
    with pytest.raises(DLAError, match="p.png"):
        FolderDataset(tmp_path, "all", images_dir="rgb", masks_dir="ann", classes=["a", "b"])


def test_folder_needs_class_names(tmp_path):
    with pytest.raises(DLAError, match="classes.txt"):
        FolderDataset(make_folder(tmp_path, classes=None), "train")


# ----------------------------------------------------------------------------------------------- bad data


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    for name in ("camvid", "cityscapes", "voc", "listfile", "folder"):
        with pytest.raises(DLAError, match="nowhere"):
            build_dataset(name, str(missing), "train")


def test_missing_split_folder(camvid_root):
    with pytest.raises(DLAError, match="val"):
        CamVid(camvid_root, "val")
    (camvid_root / "val").mkdir()
    with pytest.raises(DLAError, match="valannot"):
        CamVid(camvid_root, "val")


def test_empty_split(camvid_root):
    (camvid_root / "val").mkdir()
    (camvid_root / "valannot").mkdir()
    with pytest.raises(DLAError, match="'val'.*empty"):
        CamVid(camvid_root, "val")
    with pytest.raises(DLAError, match="empty"):
        SyntheticShapes(split="val", length=0)


def test_image_without_label(camvid_root):
    save(camvid_root / "train" / "orphan_0042.png", random_rgb(9))
    with pytest.raises(DLAError, match="orphan_0042.png"):
        CamVid(camvid_root, "train")


def test_truncated_image(camvid_root):
    path = camvid_root / "train" / "b.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    dataset = CamVid(camvid_root, "train")  # construction does not open images
    dataset.read(0)
    with pytest.raises(DLAError, match="b.png"):
        dataset.read(1)


def test_truncated_jpeg(tmp_path):
    root = make_folder(tmp_path)
    path = root / "images" / "train" / "x2.jpg"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DLAError, match="x2.jpg"):
        FolderDataset(root, "train", ignore_index=99).read(1)


def test_non_image_file(camvid_root):
    (camvid_root / "train" / "c.png").write_text("not an image")
    with pytest.raises(DLAError, match="c.png"):
        CamVid(camvid_root, "train").read(2)
    (camvid_root / "trainannot" / "a.png").write_bytes(b"\x00" * 10)
    with pytest.raises(DLAError, match="a.png"):
        CamVid(camvid_root, "train").read(0)


def test_label_size_mismatch(camvid_root):
    save(camvid_root / "trainannot" / "b.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DLAError, match=r"b\.png.*same size"):
        CamVid(camvid_root, "train").read(1)


def test_label_value_out_of_range(camvid_root):
    dataset = CamVid(camvid_root, "train")
    save(camvid_root / "trainannot" / "c.png", label_with([0, 255, 11]))  # void and the ignore value are fine
    assert set(np.unique(dataset.read(2)[1])) == {0, 255}
    save(camvid_root / "trainannot" / "c.png", label_with([0, 12, 200]))
    with pytest.raises(DLAError, match=r"c\.png.*12, 200"):
        dataset.read(2)


def test_colour_label_is_refused(camvid_root):
    save(camvid_root / "trainannot" / "a.png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(DLAError, match=r"a\.png.*RGB"):
        CamVid(camvid_root, "train").read(0)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "P-transparent"])
def test_image_modes_load_as_rgb(camvid_root, mode):
    rgb = random_rgb(0)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    if mode.startswith("P"):
        image = Image.fromarray(rgb).quantize(colors=16)
        if mode == "P-transparent":
            image.info["transparency"] = 0
        palette = np.array(image.getpalette()[: 3 * 16], np.uint8).reshape(-1, 3)
        expected = palette[np.asarray(image)]
    elif mode == "RGBA":
        image, expected = Image.fromarray(np.dstack([rgb, np.full((H, W), 7, np.uint8)])), rgb
    else:
        image = Image.fromarray(gray).convert(mode)
        expected = np.repeat(gray[..., None], 3, axis=2)
    image.save(camvid_root / "train" / "a.png")
    assert Image.open(camvid_root / "train" / "a.png").mode == mode.split("-")[0]  # the file really has that mode
    loaded, _ = CamVid(camvid_root, "train").read(0)
    assert loaded.mode == "RGB" and loaded.size == (W, H)
    np.testing.assert_array_equal(np.asarray(loaded), expected)


# ---------------------------------------------------------------------------------------- build_dataset


def test_build_dataset_names_and_options(camvid_root):
    assert set(DATASETS) == {
        "camvid",
        "cityscapes",
        "voc",
        "listfile",
        "folder",
        "synthetic",
        "imagefolder",
        "cub200",
        "stanford_cars",
        "fgvc_aircraft",
        "food101",
        "bsds500",
        "boundary_folder",
    }
    assert isinstance(build_dataset("camvid", str(camvid_root), "train"), CamVid)
    names = "camvid, cityscapes, voc, listfile, folder, synthetic, imagefolder, .*, food101, bsds500, boundary_folder$"
    with pytest.raises(DLAError, match=names):
        build_dataset("kitti", str(camvid_root), "train")
    with pytest.raises(DLAError, match="bogus.*crop"):
        build_dataset("camvid", str(camvid_root), "train", crop=3, bogus=1)
    with pytest.raises(DLAError, match="root"):
        build_dataset("camvid", None, "train")
    dataset = build_dataset("synthetic", None, "val", length=4, height=32, width=48)
    assert len(dataset) == 4 and dataset.read(0)[0].size == (48, 32)


def test_dataloader_batches_transformed_samples():
    dataset = build_dataset("synthetic", None, "train", length=6, height=40, width=40)
    dataset.transform = train_transforms(dataset.meta, (32, 32))
    images, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (3, 32, 32) and labels.dtype == torch.int64
