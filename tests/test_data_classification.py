"""Classification datasets: the real hymenoptera ImageFolder, every layout built small in tmp_path, and bad data."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from dla.data import (
    CUB200,
    DATASETS,
    ClassificationDataset,
    FGVCAircraft,
    Food101,
    ImageFolder,
    StanfordCars,
    build_dataset,
    default_palette,
)
from dla.errors import DLAError

H, W = 6, 8


def save(path: Path, mode: str = "RGB", seed: int = 0) -> Path:
    """A tiny ``W`` x ``H`` image of ``mode`` at ``path`` (parents created; format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (H, W, 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    image = image.convert("RGB").quantize(8) if mode == "P" else image.convert(mode)
    image.save(path)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def check_samples(dataset: ClassificationDataset) -> None:
    """Every sample reads as an RGB image of the stored size with an int label matching ``targets``."""
    assert dataset.samples == sorted(dataset.samples)
    assert dataset.targets == [label for _, label in dataset.samples]
    for i in range(len(dataset)):
        image, label = dataset[i]
        assert image.mode == "RGB" and image.size == (W, H)
        assert type(label) is int and label == dataset.targets[i]


# ------------------------------------------------------------------------------------------- ImageFolder


def make_imagefolder(root: Path) -> Path:
    save(root / "train" / "cat" / "a.jpg")
    save(root / "train" / "cat" / "b.PNG", "L")
    save(root / "train" / "cat" / ".hidden.jpg")
    write(root / "train" / "cat" / "notes.txt", "not an image")
    save(root / "train" / "dog" / "c.png", "RGBA")
    save(root / "train" / "dog" / "d.gif", "P")
    save(root / "train" / "owl" / "f.bmp", "1")
    save(root / "val" / "dog" / "e.jpeg")
    return root


@pytest.fixture
def folder_root(tmp_path):
    return make_imagefolder(tmp_path / "pets")


def test_imagefolder_samples_classes_and_conversion(folder_root):
    train = ImageFolder(folder_root, "train")
    assert train.task == "classification" and train.classes == ["cat", "dog", "owl"]
    assert [(p.relative_to(folder_root).as_posix(), label) for p, label in train.samples] == [
        ("train/cat/a.jpg", 0),
        ("train/cat/b.PNG", 0),
        ("train/dog/c.png", 1),
        ("train/dog/d.gif", 1),
        ("train/owl/f.bmp", 2),
    ]
    assert train.meta.name == "pets" and train.meta.classes == ("cat", "dog", "owl")
    assert list(train.meta.palette) == default_palette(3)
    check_samples(train)
    assert repr(train) == f"ImageFolder(root={str(folder_root)!r}, split='train', images=5, classes=3)"


def test_imagefolder_val_takes_the_train_classes(folder_root):
    val = ImageFolder(folder_root, "val")
    assert val.classes == ["cat", "dog", "owl"] and val.targets == [1]


def test_imagefolder_without_train_uses_its_own_folder(tmp_path):
    save(tmp_path / "test" / "b" / "x.jpg")
    save(tmp_path / "test" / "a" / "y.jpg")
    test = tmp_path / "test"
    assert ImageFolder(tmp_path, "test").samples == [(test / "a" / "y.jpg", 0), (test / "b" / "x.jpg", 1)]


def test_imagefolder_classes_option(folder_root):
    train = ImageFolder(folder_root, "train", classes=["owl", "dog", "cat"])
    assert train.classes == ["owl", "dog", "cat"] and train.targets == [2, 2, 1, 1, 0]
    assert ImageFolder(folder_root, "val", classes=["owl", "dog", "cat"]).targets == [1]
    with pytest.raises(DLAError, match=r"owl.*'owl' is not one of the classes= passed"):
        ImageFolder(folder_root, "train", classes=["cat", "dog"])
    with pytest.raises(DLAError, match=r"bird.*no folder for the class 'bird' listed"):
        ImageFolder(folder_root, "train", classes=["cat", "dog", "owl", "bird"])
    with pytest.raises(DLAError, match="listed twice"):
        ImageFolder(folder_root, "train", classes=["cat", "dog", "owl", "cat"])


def test_imagefolder_errors(folder_root, tmp_path):
    with pytest.raises(DLAError, match=r"nowhere.*root folder not found"):
        ImageFolder(tmp_path / "nowhere")
    with pytest.raises(DLAError, match=r"test.*split 'test' not found.*train, val"):
        ImageFolder(folder_root, "test")
    save(folder_root / "val" / "bird" / "f.jpg")
    with pytest.raises(DLAError, match=r"val/bird.*'bird' is not one of the 3 classes"):
        ImageFolder(folder_root, "val")
    (tmp_path / "bare" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DLAError, match=r"bare.*'train' split of ImageFolder is empty"):
        ImageFolder(tmp_path / "bare")
    (tmp_path / "noclass" / "train").mkdir(parents=True)
    with pytest.raises(DLAError, match=r"noclass.*found no classes"):
        ImageFolder(tmp_path / "noclass")


def test_corrupt_image_is_named_on_read(folder_root):
    bad = folder_root / "train" / "cat" / "a.jpg"
    bad.write_bytes(b"not an image")
    train = ImageFolder(folder_root, "train")
    with pytest.raises(DLAError, match=rf"{bad}: cannot read the image"):
        train[0]


def test_transform_gets_the_image_only(folder_root):
    seen = []

    def transform(image):
        seen.append(image)
        return np.asarray(image).shape

    dataset = ImageFolder(folder_root, "train", transform=transform)
    assert dataset[3] == ((H, W, 3), 1)
    assert len(seen) == 1 and isinstance(seen[0], Image.Image)


# ------------------------------------------------------------------------------------------- real data


@pytest.fixture
def hymenoptera(real_data):
    """The real hymenoptera ImageFolder (the test is skipped without it)."""
    return real_data("hymenoptera", "train")


def count_images(folder: Path) -> int:
    return sum(1 for p in folder.glob("*/*") if p.suffix.lower() in (".jpg", ".jpeg", ".gif"))


def test_real_hymenoptera(hymenoptera):
    train, val = ImageFolder(hymenoptera, "train"), build_dataset("imagefolder", str(hymenoptera), "val")
    assert (len(train), len(val)) == (count_images(hymenoptera / "train"), count_images(hymenoptera / "val"))
    assert (len(train), len(val)) == (245, 153)
    assert train.classes == val.classes == ["ants", "bees"] and train.meta.classes == ("ants", "bees")
    assert set(train.targets) == set(val.targets) == {0, 1}
    assert all(label == ["ants", "bees"].index(path.parent.name) for path, label in train.samples + val.samples)
    gif = [path for path, _ in train.samples].index(hymenoptera / "train" / "ants" / "imageNotFound.gif")
    image, label = train[gif]
    assert image.mode == "RGB" and label == 0


# ------------------------------------------------------------------------------------------------- CUB


def make_cub(root: Path) -> Path:
    """Three classes, five images (ids 1..5, train 1, 2, 4); image 3 is grayscale."""
    write(root / "classes.txt", "1 001.Albatross\n2 002.Auklet\n3 003.Blackbird\n")
    paths = [
        "001.Albatross/a_1.jpg",
        "001.Albatross/a_2.jpg",
        "002.Auklet/b_1.jpg",
        "003.Blackbird/c_1.jpg",
        "003.Blackbird/c_2.jpg",
    ]
    for i, path in enumerate(paths):
        save(root / "images" / path, "L" if i == 2 else "RGB", seed=i)
    write(root / "images.txt", "".join(f"{i} {p}\n" for i, p in enumerate(paths, 1)))
    write(root / "image_class_labels.txt", "1 1\n2 1\n3 2\n\n4 3\n5 3\n")
    write(root / "train_test_split.txt", "1 1\n2 1\n3 0\n4 1\n5 0\n")
    return root


def test_cub200(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011")
    train, test = CUB200(root, "train"), CUB200(tmp_path, "test")
    assert train.classes == ["001.Albatross", "002.Auklet", "003.Blackbird"] and train.meta.name == "cub200"
    assert [(p.name, label) for p, label in train.samples] == [("a_1.jpg", 0), ("a_2.jpg", 0), ("c_1.jpg", 2)]
    assert test.root == root and [(p.name, label) for p, label in test.samples] == [("b_1.jpg", 1), ("c_2.jpg", 2)]
    assert CUB200(root, "val").split == "test" and len(build_dataset("cub200", str(root), "val")) == 2
    check_samples(train)
    check_samples(test)


def test_cub200_errors(tmp_path):
    root = make_cub(tmp_path)
    with pytest.raises(DLAError, match=r"no split 'trainval'; valid splits: train, test \(or val, an alias of test\)"):
        CUB200(root, "trainval")
    write(root / "image_class_labels.txt", "1 1\n2 1\n3 2\n4 4\n5 3\n")
    with pytest.raises(DLAError, match=r"image_class_labels.txt, line 4: class 4 is not one of the 3 classes 1..3"):
        CUB200(root, "train")
    write(root / "image_class_labels.txt", "1 1\n2 1\n3 2\n4\n5 3\n")
    with pytest.raises(DLAError, match=r"image_class_labels.txt, line 4: expected 2 fields"):
        CUB200(root, "train")
    write(root / "image_class_labels.txt", "1 1\n2 1\n3 2\n5 3\n")
    with pytest.raises(DLAError, match=r"labels.txt: no line for image 4 \(listed in .*split.txt, line 4\)"):
        CUB200(root, "train")
    (root / "image_class_labels.txt").unlink()
    with pytest.raises(DLAError, match=r"image_class_labels.txt: list file not found"):
        CUB200(root, "train")
    write(root / "classes.txt", "1 001.Albatross\n3 003.Blackbird\n")
    with pytest.raises(DLAError, match=r"classes.txt, line 2: class number '3', expected 2"):
        CUB200(root, "train")


def test_cub200_missing_images_are_counted_and_named(tmp_path):
    root = make_cub(tmp_path)
    for path in ("001.Albatross/a_1.jpg", "001.Albatross/a_2.jpg"):
        (root / "images" / path).unlink()
    with pytest.raises(DLAError, match=r"2 of the 3 images of the 'train' split of CUB200 not found: .*a_1.jpg, .*a_2"):
        CUB200(root, "train")
    assert len(CUB200(root, "test")) == 2


# ------------------------------------------------------------------------------------------ Stanford Cars


def annotations(entries):
    """A MATLAB struct array like the Cars devkit's: one record per ``(fname, class)``."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    records = np.zeros((1, len(entries)), dtype=[(f, object) for f in fields])
    for i, (fname, number) in enumerate(entries):
        records[0, i] = (np.uint16(1), np.uint16(2), np.uint16(7), np.uint16(5), np.uint8(number), fname)
    return records


def make_cars(root: Path, test_in_devkit: bool = False) -> Path:
    (root / "devkit").mkdir(parents=True)
    names = np.array(["AM General Hummer SUV 2000", "Acura RL Sedan 2012"], dtype=object)
    scipy.io.savemat(root / "devkit" / "cars_meta.mat", {"class_names": names.reshape(1, -1)})
    train = annotations([("00002.jpg", 2), ("00001.jpg", 1)])
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": train})
    test = root / ("devkit" if test_in_devkit else "") / "cars_test_annos_withlabels.mat"
    scipy.io.savemat(test, {"annotations": annotations([("00001.jpg", 2)])})
    for split, name in (("train", "00001.jpg"), ("train", "00002.jpg"), ("test", "00001.jpg")):
        save(root / f"cars_{split}" / name, "CMYK" if split == "test" else "RGB")
    return root


def test_stanford_cars(tmp_path):
    root = make_cars(tmp_path)
    train = StanfordCars(root, "train")
    assert train.classes == ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"]
    assert train.samples == [(root / "cars_train" / "00001.jpg", 0), (root / "cars_train" / "00002.jpg", 1)]
    test = build_dataset("stanford_cars", str(root), "val")
    assert test.split == "test" and test.samples == [(root / "cars_test" / "00001.jpg", 1)]
    check_samples(train)
    check_samples(test)
    devkit = make_cars(tmp_path / "other", test_in_devkit=True)
    assert StanfordCars(devkit, "test").targets == [1]


def test_stanford_cars_errors(tmp_path):
    root = make_cars(tmp_path)
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": annotations([("00001.jpg", 3)])})
    with pytest.raises(DLAError, match=r"cars_train_annos.mat, annotation 1: class 3 is not one of the 2 classes"):
        StanfordCars(root, "train")
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"other": np.zeros(2)})
    with pytest.raises(DLAError, match=r"cars_train_annos.mat: no variable 'annotations' \(found: other\)"):
        StanfordCars(root, "train")
    (root / "devkit" / "cars_train_annos.mat").write_bytes(b"not a mat file, not at all")
    with pytest.raises(DLAError, match=r"cars_train_annos.mat: cannot read it as a MATLAB file"):
        StanfordCars(root, "train")
    (root / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(DLAError, match=r"cars_test_annos_withlabels.mat: annotation file not found"):
        StanfordCars(root, "test")


# ----------------------------------------------------------------------------------------- FGVC-Aircraft


def make_aircraft(data: Path) -> Path:
    write(data / "variants.txt", "Boeing 707-320\nF/A-18\nA300B4\n")
    write(data / "families.txt", "Boeing 707\nF/A-18\nA300\n")
    write(data / "manufacturers.txt", "Airbus\nBoeing\nMcDonnell Douglas\n")
    rows = [
        ("0034309", "Boeing 707-320", "Boeing 707", "Boeing"),
        ("1514522", "F/A-18", "F/A-18", "McDonnell Douglas"),
        ("0056978", "A300B4", "A300", "Airbus"),
    ]
    for i, (image_id, *_rest) in enumerate(rows):
        save(data / "images" / f"{image_id}.jpg", seed=i)
    for level, column in (("variant", 1), ("family", 2), ("manufacturer", 3)):
        write(data / f"images_{level}_trainval.txt", "".join(f"{row[0]} {row[column]}\n" for row in rows[:2]))
        write(data / f"images_{level}_test.txt", f"{rows[2][0]} {rows[2][column]}\n")
    return data


def test_fgvc_aircraft(tmp_path):
    data = make_aircraft(tmp_path / "fgvc-aircraft-2013b" / "data")
    trainval = FGVCAircraft(tmp_path, "trainval")
    assert trainval.root == data and trainval.classes == ["Boeing 707-320", "F/A-18", "A300B4"]
    assert trainval.samples == [(data / "images" / "0034309.jpg", 0), (data / "images" / "1514522.jpg", 1)]
    assert FGVCAircraft(data.parent, "test").targets == [2]
    families = build_dataset("fgvc_aircraft", str(tmp_path), "trainval", annotation_level="family")
    assert families.classes == ["Boeing 707", "F/A-18", "A300"] and families.targets == [0, 1]
    makers = FGVCAircraft(data.parent, "trainval", annotation_level="manufacturer")
    assert makers.classes == ["Airbus", "Boeing", "McDonnell Douglas"] and makers.targets == [1, 2]
    check_samples(trainval)


def test_fgvc_aircraft_errors(tmp_path):
    data = make_aircraft(tmp_path / "data")
    with pytest.raises(DLAError, match="no annotation_level 'model'; valid: variant, family, manufacturer"):
        FGVCAircraft(tmp_path, "train", annotation_level="model")
    with pytest.raises(DLAError, match=r"images_variant_train.txt: list file not found"):
        FGVCAircraft(tmp_path, "train")
    with pytest.raises(DLAError, match=r"no split 'validation'; valid splits: train, val, trainval, test$"):
        FGVCAircraft(tmp_path, "validation")
    write(data / "images_variant_test.txt", "0056978 A300B4\n\n0034309 Boeing 747\n")
    with pytest.raises(DLAError, match=r"images_variant_test.txt, line 3: unknown class 'Boeing 747'"):
        FGVCAircraft(tmp_path, "test")
    write(data / "images_variant_test.txt", "0056978 A300B4\n9999999 F/A-18\n")
    with pytest.raises(DLAError, match=r"1 of the 2 images .* not found: .*9999999.jpg$"):
        FGVCAircraft(tmp_path, "test")
    write(data / "images_variant_test.txt", "\n")
    with pytest.raises(DLAError, match=r"data: the 'test' split of FGVCAircraft is empty"):
        FGVCAircraft(tmp_path, "test")


# ---------------------------------------------------------------------------------------------- Food-101


def make_food(root: Path) -> Path:
    write(root / "meta" / "classes.txt", "apple_pie\nbaby_back_ribs\n")
    write(root / "meta" / "train.txt", "baby_back_ribs/2\napple_pie/1005649\n")
    write(root / "meta" / "test.txt", "apple_pie/7\n")
    for name in ("apple_pie/1005649", "baby_back_ribs/2", "apple_pie/7"):
        save(root / "images" / f"{name}.jpg")
    return root


def test_food101(tmp_path):
    root = make_food(tmp_path / "food-101")
    train = Food101(tmp_path, "train")
    assert train.root == root and train.classes == ["apple_pie", "baby_back_ribs"]
    images = root / "images"
    assert train.samples == [(images / "apple_pie" / "1005649.jpg", 0), (images / "baby_back_ribs" / "2.jpg", 1)]
    test = build_dataset("food101", str(root), "val")
    assert test.split == "test" and test.targets == [0]
    assert repr(test) == f"Food101(root={str(root)!r}, split='test', images=1, classes=2)"
    check_samples(train)


def test_food101_errors(tmp_path):
    root = make_food(tmp_path)
    write(root / "meta" / "test.txt", "apple_pie/7\npizza/3\n")
    with pytest.raises(DLAError, match=r"test.txt, line 2: unknown class 'pizza' \(not one of the 2 classes\)"):
        Food101(root, "test")
    write(root / "meta" / "test.txt", "apple_pie/7\napple_pie\n")
    with pytest.raises(DLAError, match=r"test.txt, line 2: expected <class>/<image id>, got 'apple_pie'"):
        Food101(root, "test")
    (root / "meta" / "classes.txt").unlink()
    with pytest.raises(DLAError, match=r"classes.txt: class list not found"):
        Food101(root, "train")


# ------------------------------------------------------------------------------------------- registry


def test_registry_and_build_dataset(tmp_path):
    names = {
        "imagefolder": ImageFolder,
        "cub200": CUB200,
        "stanford_cars": StanfordCars,
        "fgvc_aircraft": FGVCAircraft,
        "food101": Food101,
    }
    for name, cls in names.items():
        assert DATASETS[name] is cls and cls.task == "classification" and cls.needs_root
    with pytest.raises(DLAError, match="needs a root folder"):
        build_dataset("food101", None, "train")
    with pytest.raises(DLAError, match="does not take option.*annotation_level.*it accepts: classes"):
        build_dataset("imagefolder", str(tmp_path), "train", annotation_level="family")
