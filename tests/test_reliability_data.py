"""Reliability of the data side: every image mode is read right or refused naming the file, corrupt files
are named, an ImageFolder class without training images is refused, and ``verify()`` checks every file of
a split from its headers alone. All data is built small in ``tmp_path``."""

import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import PIL
import pytest
import scipy.io
from PIL import Image, ImageFile

from dla.data import (
    BSDS500,
    BoundaryFolder,
    FolderDataset,
    ImageFolder,
    SyntheticShapes,
    load_image,
    load_label,
)
from dla.data.base import IMAGE_MODES, LABEL_MODES, image_header, label_header
from dla.errors import DLAError

H, W = 9, 13

# A 16-bit gradient over the whole range, starting with values whose 8-bit value is known by hand.
GRADIENT16 = np.linspace(0, 65535, H * W).round().astype(np.uint16).reshape(H, W)
GRADIENT16.flat[:6] = [0, 255, 256, 32896, 65280, 65535]
GRADIENT8_START = [0, 0, 1, 128, 255, 255]

RGB = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def save(path: Path, image: Image.Image) -> Path:
    """``image`` saved at ``path`` (parents created; format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    """An ``(H, W)`` uint8 array as the ``(H, W, 3)`` RGB array of the same gray."""
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)


def read_or_refuse(read, path: Path):
    """``read(path)``, or ``None`` when it raises :class:`DLAError` naming ``path``; any other exception fails."""
    try:
        return read(path)
    except DLAError as e:
        assert path.name in str(e), f"the message does not name {path.name}: {e}"
        return None


# ------------------------------------------------------------------------------------- 16-bit and other modes


@pytest.mark.parametrize(
    "name, image, mode",
    [
        ("png16.png", Image.fromarray(GRADIENT16), "I;16"),
        ("little.tif", Image.fromarray(GRADIENT16), "I;16"),
        ("big.tif", Image.fromarray(GRADIENT16.astype(">u2")), "I;16B"),
        ("sixteen.pgm", Image.fromarray(GRADIENT16), "I"),  # PIL opens 16-bit PGMs as 32-bit I
        ("int32.tif", Image.fromarray(GRADIENT16.astype(np.int32)), "I"),
    ],
)
def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path, name, image, mode):
    path = save(tmp_path / name, image)
    with Image.open(path) as opened:
        assert opened.mode == mode  # the file really has that mode
    loaded = load_image(path)
    assert loaded.mode == "RGB" and loaded.size == (W, H)
    pixels = np.asarray(loaded)
    np.testing.assert_array_equal(pixels, gray_rgb(GRADIENT16 >> 8))
    assert pixels[..., 0].flat[:6].tolist() == GRADIENT8_START


@pytest.mark.parametrize("bad_value", [70000, -1])
def test_mode_i_outside_16_bits_is_refused(tmp_path, bad_value):
    values = GRADIENT16.astype(np.int32)
    values[2, 3] = bad_value
    path = save(tmp_path / "wide.tif", Image.fromarray(values))
    with pytest.raises(DLAError, match=rf"wide\.tif: image has mode I with values {min(bad_value, 0)}\.\..*16-bit range"):
        load_image(path)


def test_float_images_are_refused_naming_file_and_mode(tmp_path):
    path = save(tmp_path / "depth.tif", Image.fromarray(GRADIENT16.astype(np.float32) / 65535))
    for read in (load_image, image_header):
        with pytest.raises(DLAError, match=r"depth\.tif: image has mode F \(32-bit floating point"):
            read(path)
    for read in (load_label, label_header):
        with pytest.raises(DLAError, match=r"depth\.tif: label image has mode F"):
            read(path)


def test_label_modes_keep_values_or_are_refused(tmp_path):
    ids = (GRADIENT16 % 3000).astype(np.uint16)
    np.testing.assert_array_equal(load_label(save(tmp_path / "ids.png", Image.fromarray(ids))), ids)  # not scaled
    palette = Image.fromarray(RGB).quantize(7)
    np.testing.assert_array_equal(load_label(save(tmp_path / "voc.png", palette)), np.asarray(palette))
    for name, mode in (("alpha.png", "LA"), ("colour.png", "RGB"), ("cmyk.tif", "CMYK"), ("rgba.png", "RGBA")):
        path = save(tmp_path / name, Image.fromarray(RGB).convert(mode))
        with pytest.raises(DLAError, match=rf"{name}: label image has mode {mode}; expected a single-channel"):
            load_label(path)


# ------------------------------------------------------------------------------------------------- fuzzing

FUZZ_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "I", "I;16", "I;16B", "F")
FUZZ_EXTENSIONS = ("png", "jpg", "tif", "bmp", "gif", "webp", "pgm")
# Modes files must really open as, so that a PIL which saves differently cannot make the test pass vacuously.
# Pillow 12 (which gradio, the app's extra, requires) writes YCbCr TIFFs it cannot read back; 13 reads them.
MODES_ON_DISK = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "LAB", "I", "I;16", "I;16B", "F"} | (
    {"YCbCr"} if int(PIL.__version__.split(".")[0]) >= 13 else set()
)


def mode_image(mode: str) -> Image.Image:
    """A ``W`` x ``H`` image of ``mode``: the 16-bit gradient for integer and float modes, ``RGB`` otherwise."""
    if mode == "I;16":
        return Image.fromarray(GRADIENT16)
    if mode == "I;16B":
        return Image.fromarray(GRADIENT16.astype(">u2"))
    if mode == "I":
        return Image.fromarray(GRADIENT16.astype(np.int32))
    if mode == "F":
        return Image.fromarray(GRADIENT16.astype(np.float32))
    if mode in ("P", "PA"):
        return Image.fromarray(RGB).quantize(16).convert(mode)
    return Image.fromarray(RGB).convert(mode)


@pytest.fixture(scope="module")
def fuzz_files(tmp_path_factory) -> list[Path]:
    """One file per mode and format that PIL can write (``1.png``, ``I_16B.tif``, ...)."""
    folder = tmp_path_factory.mktemp("modes")
    files = []
    for mode in FUZZ_MODES:
        for extension in FUZZ_EXTENSIONS:
            path = folder / f"{mode.replace(';', '_')}.{extension}"
            try:
                mode_image(mode).save(path)
                with Image.open(path) as written:  # Pillow 12 writes YCbCr TIFFs it cannot read back
                    written.load()
            except (OSError, ValueError, KeyError):  # this format cannot hold this mode (in this Pillow)
                path.unlink(missing_ok=True)
                continue
            files.append(path)
    return files


def expected_rgb(path: Path) -> np.ndarray | None:
    """What ``load_image`` must give for the intact file ``path``, or ``None`` where it must refuse: grayscale
    modes computed here (bilevel 0/255, 8-bit as is, 16-bit by its high byte), colour ones by PIL's conversion."""
    with Image.open(path) as image:
        mode, values = image.mode, np.asarray(image)
        if mode not in IMAGE_MODES:
            return None
        if mode == "1":
            return gray_rgb(values * 255)
        if mode.startswith("I"):
            return gray_rgb(values.astype(np.int64) >> 8)
        if mode == "L":
            return gray_rgb(values)
        return np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB").convert("RGB"))


def test_fuzz_every_mode_reads_right_or_is_refused(fuzz_files):
    seen = set()
    for path in fuzz_files:
        with Image.open(path) as image:
            mode, stored = image.mode, np.asarray(image)
        seen.add(mode)
        expected, loaded = expected_rgb(path), read_or_refuse(load_image, path)
        if expected is None:
            assert loaded is None, f"{path.name} (mode {mode}) should be refused"
        else:
            assert loaded is not None and loaded.mode == "RGB", f"{path.name} (mode {mode}) should be read"
            np.testing.assert_array_equal(np.asarray(loaded), expected, err_msg=path.name)
        label = read_or_refuse(load_label, path)
        assert (label is not None) == (mode in LABEL_MODES), f"{path.name} (mode {mode})"
        if label is not None:
            np.testing.assert_array_equal(label, stored.astype(np.int64), err_msg=path.name)
    assert MODES_ON_DISK <= seen


def corrupt_files(sources: list[Path], folder: Path, rng: np.random.Generator) -> list[tuple[Path, Path | None]]:
    """``(corrupt file, the intact file it was cut from or None)``: each source truncated at 0, 1, 8 bytes
    and five random offsets, PNG bytes named ``.jpg`` and JPEG bytes named ``.png``, random bytes, an empty
    file, and a PNG signature followed by garbage."""
    made: list[tuple[Path, Path | None]] = []

    def write(name: str, data: bytes, source: Path | None) -> None:
        path = folder / name
        path.write_bytes(data)
        made.append((path, source))

    for source in sources:
        data = source.read_bytes()
        for offset in sorted({0, 1, 8, *rng.integers(1, len(data), 5).tolist()}):
            write(f"{source.stem}_cut{offset}{source.suffix}", data[:offset], source)
    pngs = [p for p in sources if p.suffix == ".png"]
    jpegs = [p for p in sources if p.suffix == ".jpg"]
    write("png_bytes.jpg", pngs[0].read_bytes(), pngs[0])
    write("jpeg_bytes.png", jpegs[0].read_bytes(), jpegs[0])
    write("random.png", rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), None)
    write("random.tif", b"II*\x00" + rng.integers(0, 256, 300, dtype=np.uint8).tobytes(), None)
    write("empty.jpg", b"", None)
    write("garbage.png", b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 100, dtype=np.uint8).tobytes(), None)
    return made


def test_fuzz_corrupt_files_read_right_or_are_named(fuzz_files, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about corrupt EXIF / TIFF tags before it fails
        for path, source in corrupt_files(fuzz_files, tmp_path, np.random.default_rng(7)):
            for read in (load_image, load_label):
                result = read_or_refuse(read, path)
                if result is not None:  # only trailing bytes were cut: the pixels must be the intact file's
                    assert source is not None, f"{path.name} should be refused"
                    np.testing.assert_array_equal(np.asarray(result), np.asarray(read(source)), err_msg=path.name)
            for header in (image_header, label_header):
                read_or_refuse(header, path)


def test_fuzz_flipped_bytes_read_or_are_named(fuzz_files, tmp_path):
    """Files with a few bytes changed anywhere (header included) read as some RGB image / int64 label, or are
    refused naming the file; they never raise anything else."""
    rng = np.random.default_rng(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for source in fuzz_files:
            for copy in range(4):
                data = np.frombuffer(source.read_bytes(), np.uint8).copy()
                data[rng.integers(0, len(data), copy + 1)] = rng.integers(0, 256, copy + 1, dtype=np.uint8)
                path = tmp_path / f"{source.stem}_flip{copy}{source.suffix}"
                path.write_bytes(data.tobytes())
                image, label = read_or_refuse(load_image, path), read_or_refuse(load_label, path)
                assert image is None or image.mode == "RGB"
                assert label is None or (label.dtype == np.int64 and label.ndim == 2)
                read_or_refuse(image_header, path)
                read_or_refuse(label_header, path)


def flags(dataset, index: int) -> bool:
    """Whether ``dataset.verify_sample(index)`` finds a problem, raising :class:`DLAError` naming the image."""
    try:
        dataset.verify_sample(index)
    except DLAError as e:
        assert dataset.files[index][0].name in str(e), f"the message does not name {dataset.files[index][0].name}: {e}"
        return True
    return False


def opens_in_a_read_mode(path: Path) -> bool:
    """Whether PIL opens ``path`` at all, in a mode ``load_image`` reads."""
    try:
        with Image.open(path) as image:
            return image.mode in IMAGE_MODES
    except Exception:
        return False


def test_fuzz_verify_flags_every_bad_header_and_no_readable_file(fuzz_files, tmp_path):
    images, masks = tmp_path / "fuzz" / "images" / "train", tmp_path / "fuzz" / "masks" / "train"
    images.mkdir(parents=True)
    for path in fuzz_files + [path for path, _ in corrupt_files(fuzz_files, tmp_path, np.random.default_rng(3))]:
        stem = path.name.replace(".", "_")  # 1.png and 1.jpg become 1_png.png and 1_jpg.jpg
        shutil.copy(path, images / f"{stem}{path.suffix}")
        save(masks / f"{stem}.png", Image.fromarray(np.zeros((H, W), np.uint8)))
    dataset = FolderDataset(tmp_path / "fuzz", "train", classes=["background"])
    flagged = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for index, (image_path, _) in enumerate(dataset.files):
            bad = flags(dataset, index)
            assert bad != opens_in_a_read_mode(image_path), image_path.name
            assert not bad or read_or_refuse(load_image, image_path) is None, f"{image_path.name} is flagged but reads"
            flagged += bad
        assert 0 < flagged < len(dataset)
        with pytest.raises(DLAError, match=rf"^{flagged} of the {len(dataset)} samples of the 'train' split"):
            dataset.verify()


# ------------------------------------------------------------------------------------------------ verify()


def make_folder(root: Path, names=("a", "b", "c")) -> Path:
    """A FolderDataset layout: an RGB image and an L mask of its size per name."""
    for name in names:
        save(root / "images" / "train" / f"{name}.png", Image.fromarray(RGB))
        save(root / "masks" / "train" / f"{name}.png", Image.fromarray(np.zeros((H, W), np.uint8)))
    return root


def test_verify_passes_a_good_split_and_names_every_bad_file(tmp_path):
    root = make_folder(tmp_path / "seg", names="abcdefghij")
    dataset = FolderDataset(root, "train", classes=["background", "thing"])
    assert dataset.verify() is None
    images, masks = root / "images" / "train", root / "masks" / "train"
    save(masks / "b.png", Image.fromarray(np.zeros((H + 1, W), np.uint8)))  # wrong size
    save(masks / "c.png", Image.fromarray(RGB))  # a colour rendering
    (images / "d.png").unlink()
    save(images / "d.tif", Image.fromarray(GRADIENT16.astype(np.float32)))  # 32-bit float
    (images / "e.png").write_bytes(b"not an image")
    (masks / "f.png").write_bytes(b"")
    (images / "g.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    dataset = FolderDataset(root, "train", classes=["background", "thing"])
    (images / "h.png").unlink()  # gone since the dataset was made
    with pytest.raises(DLAError) as error:
        dataset.verify()
    message = str(error.value)
    assert message.startswith("7 of the 10 samples of the 'train' split of FolderDataset cannot be read")
    assert f"{masks / 'b.png'}: label is 13x10 but its image {images / 'b.png'} is 13x9" in message
    assert f"{masks / 'c.png'}: label image has mode RGB" in message
    assert f"{images / 'd.tif'}: image has mode F" in message
    assert f"{images / 'e.png'}: cannot read the image" in message
    assert f"{masks / 'f.png'}: cannot read the label image" in message
    assert "g.png" not in message and message.endswith("\n  and 2 more")  # five named, the rest counted


def write_truth(path: Path) -> Path:
    """A BSDS ground-truth file: ``groundTruth``, a 1x3 cell of structs with a ``Boundaries`` map."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cell = np.empty((1, 3), dtype=object)
    for k in range(3):
        cell[0, k] = {"Boundaries": np.eye(H, W, k, dtype=np.uint8)}
    scipy.io.savemat(str(path), {"groundTruth": cell})
    return path


def make_bsds(root: Path, names=("a", "b", "c", "d")) -> Path:
    for name in names:
        save(root / "images" / "train" / f"{name}.jpg", Image.fromarray(RGB))
        write_truth(root / "groundTruth" / "train" / f"{name}.mat")
    return root


def make_imagefolder(root: Path, per_class: int = 2, classes=("cat", "dog")) -> Path:
    for name in classes:
        for i in range(per_class):
            save(root / "train" / name / f"{i}.png", Image.fromarray(RGB))
    return root


def every_dataset(tmp_path: Path) -> list:
    """One good dataset of each kind whose verify reads files: segmentation, classification, both boundary layouts."""
    boundary = make_folder(tmp_path / "boundaries")
    (boundary / "masks").rename(boundary / "labels")
    return [
        FolderDataset(make_folder(tmp_path / "seg"), "train", classes=["background"]),
        ImageFolder(make_imagefolder(tmp_path / "pets")),
        BoundaryFolder(boundary, "train"),
        BSDS500(make_bsds(tmp_path / "bsds"), "train"),
    ]


def test_verify_reads_headers_only(tmp_path, monkeypatch):
    datasets = every_dataset(tmp_path)

    def no_decoding(*args, **kwargs):
        raise AssertionError("verify decoded pixels")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(scipy.io, "loadmat", no_decoding)
    for dataset in datasets:
        assert dataset.verify() is None
    with pytest.raises(AssertionError, match="decoded"):  # the patches do catch decoding
        datasets[0].read(0)
    with pytest.raises(AssertionError, match="decoded"):
        datasets[3].read(0)


def test_verify_checks_thousands_of_files_quickly(tmp_path):
    root = make_imagefolder(tmp_path / "many", per_class=1)
    png = (root / "train" / "cat" / "0.png").read_bytes()
    for i in range(3000):
        (root / "train" / ("cat" if i % 2 else "dog") / f"{i:04d}.png").write_bytes(png)
    (root / "train" / "dog" / "2998.png").write_bytes(png[:20])  # the last but one: verify looks at every file
    dataset = ImageFolder(root)
    start = time.perf_counter()
    with pytest.raises(DLAError, match=r"(?s)^1 of the 3002 samples .*2998\.png: cannot read the image"):
        dataset.verify()
    assert time.perf_counter() - start < 5.0  # about 0.1 s here: headers only


def test_verify_classification_names_bad_images(tmp_path):
    root = make_imagefolder(tmp_path / "pets")
    save(root / "train" / "dog" / "depth.tif", Image.fromarray(GRADIENT16.astype(np.float32)))
    (root / "train" / "cat" / "1.png").write_bytes(b"")
    with pytest.raises(DLAError, match=r"(?s)^2 of the 5 samples of the 'train' split of ImageFolder.*cat/1\.png.*depth\.tif"):
        ImageFolder(root).verify()


def test_verify_bsds_checks_mat_headers(tmp_path):
    root = make_bsds(tmp_path / "bsds")
    truth = root / "groundTruth" / "train"
    (truth / "a.mat").write_bytes(b"")
    (truth / "b.mat").write_bytes(b"MATLAB 7.3 MAT-file".ljust(124) + b"\x00\x02IM" + bytes(64))
    (truth / "c.mat").write_bytes(np.random.default_rng(0).integers(1, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(DLAError) as error:
        BSDS500(root, "train").verify()
    message = str(error.value)
    assert message.startswith("3 of the 4 samples of the 'train' split of BSDS500")
    assert f"{truth / 'a.mat'}: not a MATLAB ground-truth file" in message
    assert f"{truth / 'b.mat'}: a version 7.3 (HDF5) MAT-file; BSDS ground truth is read from version 5 or 7" in message
    assert f"{truth / 'c.mat'}: not a MATLAB ground-truth file" in message and "d.mat" not in message


def test_verify_boundary_folder_checks_label_size(tmp_path):
    root = make_folder(tmp_path / "pascal")
    (root / "masks").rename(root / "labels")
    save(root / "labels" / "train" / "b.png", Image.fromarray(np.zeros((H, W + 2), np.uint8)))
    with pytest.raises(DLAError, match=r"labels/train/b\.png: label is 15x9 but its image .*images/train/b\.png is 13x9"):
        BoundaryFolder(root, "train").verify()


def test_verify_synthetic_has_nothing_to_check():
    assert SyntheticShapes(None, "train", length=4).verify() is None


# ------------------------------------------------------------------------------- ImageFolder empty classes


def test_imagefolder_refuses_a_class_without_training_images(tmp_path):
    root = make_imagefolder(tmp_path / "pets")
    (root / "train" / "bird").mkdir()
    (root / "train" / "bird" / "photo.heic").write_bytes(b"an extension not read")
    with pytest.raises(
        DLAError,
        match=r"pets/train/bird: class folder 'bird' of the 'train' split has no images .*"
        r"add images to it or remove the folder$",
    ):
        ImageFolder(root, "train")
    (root / "train" / "eel").mkdir()
    with pytest.raises(DLAError, match=r"train/bird: .* remove the folder \(the same holds for eel\)$"):
        ImageFolder(root, "train")


def test_imagefolder_other_splits_may_lack_a_class(tmp_path):
    root = make_imagefolder(tmp_path / "pets")
    save(root / "val" / "dog" / "x.png", Image.fromarray(RGB))
    (root / "val" / "cat").mkdir()
    val = ImageFolder(root, "val")
    assert val.classes == ["cat", "dog"] and val.targets == [1]


def test_imagefolder_split_that_defines_the_classes_must_fill_them(tmp_path):
    save(tmp_path / "test" / "a" / "x.png", Image.fromarray(RGB))
    (tmp_path / "test" / "b").mkdir()
    with pytest.raises(DLAError, match=r"test/b: class folder 'b' of the 'test' split has no images"):
        ImageFolder(tmp_path, "test")
