"""Boundary datasets: the real BSDS500 ground truth, the consensus rule, thin boundaries from segments,
the generic folder layout, BSDS-like files built in tmp_path, and every kind of bad ground truth."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from dla.data import (
    BSDS500,
    DATASETS,
    BoundaryFolder,
    boundaries_from_segmentation,
    build_dataset,
    consensus_label,
    train_transforms,
)
from dla.data.bsds import read_bsds_boundaries
from dla.errors import DLAError

H, W = 12, 16


@pytest.fixture
def bsds(real_data):
    """The real BSDS500 (the test is skipped without it)."""
    return real_data("bsds500", "groundTruth/train")


def save_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def random_rgb(seed: int, height: int = H, width: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_truth(path: Path, maps) -> Path:
    """A BSDS-style ground-truth file: ``groundTruth`` a 1xN cell of structs (Segmentation, Boundaries)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cell = np.empty((1, len(maps)), dtype=object)
    for k, boundary_map in enumerate(maps):
        segmentation = np.cumsum(boundary_map, axis=1).astype(np.uint16) + 1
        cell[0, k] = {"Segmentation": segmentation, "Boundaries": np.asarray(boundary_map, dtype=np.uint8)}
    scipy.io.savemat(str(path), {"groundTruth": cell})
    return path


def annotator_maps(counts: np.ndarray, annotators: int):
    """``annotators`` boolean maps in which pixel p is marked by exactly ``counts[p]`` of them (the first ones)."""
    return [counts > k for k in range(annotators)]


def make_bsds(root: Path, names=("a", "b"), split: str = "train", annotators: int = 5) -> Path:
    counts = np.arange(H * W).reshape(H, W) % (annotators + 1)
    for i, name in enumerate(names):
        save_image(root / "images" / split / f"{name}.jpg", random_rgb(i))
        write_truth(root / "groundTruth" / split / f"{name}.mat", annotator_maps(counts, annotators))
    return root


# --------------------------------------------------------------------------------------- the real BSDS500


def test_real_bsds_every_annotator_image_sized(bsds):
    for split, size in (("train", 200), ("val", 100)):
        dataset = BSDS500(bsds, split)
        assert len(dataset) == size and dataset.task == "boundaries"
        for image_path, mat_path in dataset.files:  # one pass, maps checked against the image header (~1.5 s)
            maps = read_bsds_boundaries(mat_path)
            with Image.open(image_path) as image:
                width, height = image.size
            assert 4 <= len(maps) <= 9, mat_path
            assert all(m.shape == (height, width) and m.dtype == np.uint8 and m.max() <= 1 for m in maps), mat_path


def test_real_bsds_sample_labels_and_transforms(bsds):
    dataset = build_dataset("bsds500", str(bsds), "val")
    assert dataset.meta.classes == ("background", "boundary") and dataset.meta.ignore_index == 255
    image, label = dataset.read(0)
    maps = dataset.annotations(0)
    assert all(m.dtype == bool and m.shape == label.shape == image.size[::-1] for m in maps)
    counts = np.sum(maps, axis=0)
    assert label.dtype == np.int64 and set(np.unique(label)) == {0, 1}
    np.testing.assert_array_equal(label, (counts >= 3).astype(np.int64))
    uncertain = BSDS500(bsds, "val", min_annotators=3, ignore_uncertain=True).read(0)[1]
    assert set(np.unique(uncertain)) == {0, 1, 255}
    np.testing.assert_array_equal(uncertain == 255, (counts > 0) & (counts < 3))

    tensor, target = train_transforms(dataset.meta, (256, 256), rotation=20)(image, label)
    assert tuple(tensor.shape) == (3, 256, 256) and tuple(target.shape) == (256, 256)
    assert set(target.unique().tolist()) <= {0, 1, 255}


# --------------------------------------------------------------------------------------- the consensus rule


COUNTS = np.array([[0, 1, 2], [3, 4, 5]])


def test_consensus_threshold_and_ignore_uncertain():
    maps = annotator_maps(COUNTS, 5)
    assert [int(m.sum()) for m in maps] == [5, 4, 3, 2, 1]
    label = consensus_label(maps, 3, False)
    assert label.dtype == np.int64
    np.testing.assert_array_equal(label, [[0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(consensus_label(maps, 3, True), [[0, 255, 255], [1, 1, 1]])
    np.testing.assert_array_equal(consensus_label(maps, 1, True), [[0, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(consensus_label(maps, 5, True), [[0, 255, 255], [255, 255, 1]])


def test_consensus_clamps_to_the_number_of_annotators():
    maps = annotator_maps(COUNTS, 5)
    np.testing.assert_array_equal(consensus_label(maps, 9, False), consensus_label(maps, 5, False))
    single = COUNTS % 2 == 1
    np.testing.assert_array_equal(consensus_label([single], 3, True), single.astype(np.int64))
    with pytest.raises(DLAError, match="at least one"):
        consensus_label([], 3, False)
    with pytest.raises(DLAError, match="min_annotators"):
        consensus_label(maps, 0, False)


def test_boundaries_from_segmentation_marks_the_first_side():
    ids = np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    expected = np.array([[0, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=bool)
    boundaries = boundaries_from_segmentation(ids)
    assert boundaries.dtype == bool
    np.testing.assert_array_equal(boundaries, expected)
    assert not boundaries_from_segmentation(np.full((3, 4), 7)).any()


# --------------------------------------------------------------------------------------- BSDS-like files


def test_written_truth_reads_back_like_the_release(tmp_path, data_root):
    maps = annotator_maps(COUNTS, 4)
    path = write_truth(tmp_path / "x.mat", maps)
    written = scipy.io.loadmat(str(path))["groundTruth"]
    assert written.shape == (1, 4) and written.dtype == object
    assert written[0, 0].dtype.names == ("Segmentation", "Boundaries") and written[0, 0].shape == (1, 1)
    real_truth = data_root / "bsds500" / "groundTruth" / "val"
    if real_truth.is_dir():
        real = scipy.io.loadmat(str(next(real_truth.glob("*.mat"))))["groundTruth"]
        assert real.dtype == written.dtype and real[0, 0].dtype.names == written[0, 0].dtype.names
    for read, expected in zip(read_bsds_boundaries(path), maps, strict=True):
        np.testing.assert_array_equal(read, expected.astype(np.uint8))


def test_bsds_layout_in_tmp_path(tmp_path):
    root = make_bsds(tmp_path / "bsds", names=("a", "b", "c"))
    dataset = BSDS500(root, "train", min_annotators=2, ignore_uncertain=True)
    assert len(dataset) == 3 and [p.stem for p, _ in dataset.files] == ["a", "b", "c"]
    counts = np.arange(H * W).reshape(H, W) % 6
    expected = np.where(counts >= 2, 1, np.where(counts == 1, 255, 0))
    image, label = dataset[1]
    assert image.size == (W, H)
    np.testing.assert_array_equal(label, expected)
    assert len(dataset.annotations(2)) == 5
    with pytest.raises(DLAError, match="no split 'trainval'"):
        BSDS500(root, "trainval")
    with pytest.raises(DLAError, match="min_annotators"):
        BSDS500(root, "train", min_annotators=0)


def test_transforms_pad_rotation_with_ignore(tmp_path):
    dataset = BSDS500(make_bsds(tmp_path / "bsds"), "train")
    dataset.transform = train_transforms(dataset.meta, (16, 20), scale=None, rotation=45, flip=False)
    tensor, target = dataset[0]
    assert tuple(tensor.shape) == (3, 16, 20) and tuple(target.shape) == (16, 20)
    assert set(target.unique().tolist()) == {0, 1, 255}


def test_bad_ground_truth_names_the_file(tmp_path):
    root = make_bsds(tmp_path / "bsds")
    mat = root / "groundTruth" / "train" / "b.mat"
    mat.unlink()
    with pytest.raises(DLAError, match=r"1 image\(s\) have no label .*b\.jpg"):
        BSDS500(root, "train")

    mat.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 4)
    dataset = BSDS500(root, "train")
    with pytest.raises(DLAError, match=f"{mat}: cannot read"):
        dataset.read(1)
    mat.write_bytes((root / "groundTruth" / "train" / "a.mat").read_bytes()[:600])  # truncated
    with pytest.raises(DLAError, match=f"{mat}: cannot read"):
        dataset.annotations(1)

    scipy.io.savemat(str(mat), {"labels": np.zeros((H, W))})
    with pytest.raises(DLAError, match=f"{mat}: no 'groundTruth' variable \\(variables: labels\\)"):
        dataset.annotations(1)

    write_truth(mat, [np.zeros((H, W - 1))] * 3)
    with pytest.raises(DLAError, match=f"{mat}: annotator 1's boundary map is 15x12 but its image .*b.jpg is 16x12"):
        dataset.read(1)

    scipy.io.savemat(str(mat), {"groundTruth": np.array([[{"Segmentation": np.ones((H, W))}]], dtype=object)})
    with pytest.raises(DLAError, match="groundTruth entry 1 has no 'Boundaries' map"):
        dataset.read(1)


# --------------------------------------------------------------------------------------- the generic layout


def make_folder(root: Path, labels) -> Path:
    for i, (name, label) in enumerate(labels.items()):
        save_image(root / "images" / "val" / f"{name}.jpg", random_rgb(i))
        save_image(root / "labels" / "val" / f"{name}.png", label)
    return root


def test_boundary_folder_boundary_maps(tmp_path):
    boundary = np.zeros((H, W), dtype=np.uint8)
    boundary[4, :] = 255
    root = make_folder(tmp_path / "pascal", {"x": boundary, "y": np.zeros((H, W), dtype=np.uint8)})
    dataset = build_dataset("boundary_folder", str(root), "val")
    assert isinstance(dataset, BoundaryFolder) and dataset.task == "boundaries" and len(dataset) == 2
    assert dataset.meta.name == "pascal" and dataset.meta.num_classes == 2
    image, label = dataset.read(0)
    np.testing.assert_array_equal(label, (boundary > 0).astype(np.int64))
    [annotation] = dataset.annotations(0)
    assert annotation.dtype == bool and annotation.sum() == W
    assert not dataset.read(1)[1].any()


def test_boundary_folder_segment_masks(tmp_path):
    segments = np.zeros((H, W), dtype=np.uint8)
    segments[3:7, 5:9] = 2
    root = make_folder(tmp_path / "pascal", {"x": segments})
    dataset = BoundaryFolder(root, "val", label_kind="segments", ignore_uncertain=True)
    np.testing.assert_array_equal(dataset.read(0)[1], boundaries_from_segmentation(segments).astype(np.int64))
    with pytest.raises(DLAError, match="label_kind must be one of boundaries, segments"):
        BoundaryFolder(root, "val", label_kind="instances")
    (root / "labels" / "val" / "x.png").unlink()
    with pytest.raises(DLAError, match="have no label"):
        BoundaryFolder(root, "val")


def test_boundary_folder_size_mismatch(tmp_path):
    root = make_folder(tmp_path / "pascal", {"x": np.zeros((H, W + 2), dtype=np.uint8)})
    with pytest.raises(DLAError, match=r"x\.png: annotator 1's boundary map is 18x12 but its image .*x\.jpg is 16x12"):
        BoundaryFolder(root, "val").read(0)


def test_registered_names():
    assert DATASETS["bsds500"] is BSDS500 and DATASETS["boundary_folder"] is BoundaryFolder
