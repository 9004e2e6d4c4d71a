"""Classification transforms: paper shapes, crop geometry, colour noise, and torch-seeded determinism."""

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from dla.constants import IMAGENET_PCA_EIGVAL, IMAGENET_PCA_EIGVEC
from dla.data import SYNTHETIC_META
from dla.data.classification_transforms import classification_eval_transforms, classification_train_transforms
from dla.data.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Lighting,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    TenCrop,
    ToTensor,
)
from dla.errors import DLAError


def random_image(height: int = 120, width: int = 160, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_train_transform_gives_a_normalised_float_crop():
    transform = classification_train_transforms(SYNTHETIC_META, color_jitter=0.4, lighting=0.1)
    out = transform(random_image(300, 400))
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    assert -3 < float(out.min()) < 0 < float(out.max()) < 3  # normalised, not 0..1 or 0..255


def test_fine_grained_setting_resizes_then_crops():
    transform = classification_train_transforms(SYNTHETIC_META, crop_size=448, resize=(512, 512))
    assert isinstance(transform.transforms[0], Resize)
    assert transform(random_image(90, 200)).shape == (3, 448, 448)


def test_train_transform_is_seeded_by_torch_alone():
    transform = classification_train_transforms(SYNTHETIC_META, crop_size=64, color_jitter=0.4, lighting=0.1)
    image = random_image()
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        np.random.seed(seed + 100)  # other generators must not matter
        outs.append(transform(image))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("size", [(120, 160), (300, 100), (50, 400)])
def test_random_resized_crop_box_within_bounds(size):
    height, width = size
    crop = RandomResizedCrop(32)
    for _ in range(200):
        left, top, right, bottom = crop.get_params(width, height)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        w, h = right - left, bottom - top
        # rounding w and h to integers moves area and ratio a little for small boxes
        assert 0.08 * 0.9 <= w * h / (width * height) <= 1.0
        assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1


def test_random_resized_crop_ratio_is_log_uniform():
    """Wide and tall crops are equally likely (log-uniform aspect ratio is symmetric about 1)."""
    crop = RandomResizedCrop(32, scale=(0.1, 0.2))
    boxes = (crop.get_params(1000, 1000) for _ in range(2000))
    logs = [math.log((right - left) / (bottom - top)) for left, top, right, bottom in boxes]
    assert abs(np.mean(logs)) < 0.02 and max(logs) > 0.25 and min(logs) < -0.25


def test_random_resized_crop_falls_back_to_a_centred_clamped_box():
    crop = RandomResizedCrop(32)
    # a 1000 x 10 strip: any box with ratio <= 4/3 covers at most 13 x 10, under 8% of the area
    assert crop.get_params(1000, 10) == (493, 0, 506, 10)  # 13 = round(10 * 4/3) wide, centred
    assert crop.get_params(10, 1000) == (0, 493, 10, 506)
    assert RandomResizedCrop(32, scale=(2.0, 3.0)).get_params(100, 80) == (0, 0, 100, 80)  # ratio fits: whole
    assert crop(Image.new("RGB", (1000, 10))).size == (32, 32)


def test_random_resized_crop_output_is_the_resized_box():
    image = random_image()
    crop = RandomResizedCrop((20, 30))
    torch.manual_seed(5)
    box = crop.get_params(*image.size)
    torch.manual_seed(5)
    out = crop(image)
    assert out.size == (30, 20)
    np.testing.assert_array_equal(pixels(out), pixels(image.crop(box).resize((30, 20), Image.Resampling.BILINEAR)))


def test_random_resized_crop_rejects_bad_ranges():
    with pytest.raises(DLAError):
        RandomResizedCrop(32, scale=(0.5, 0.1))
    with pytest.raises(DLAError):
        RandomResizedCrop(32, ratio=(0.0, 1.0))


def test_resize_keeps_aspect_or_takes_an_exact_pair():
    assert Resize(256)(random_image(300, 400)).size == (341, 256)
    assert Resize(256)(random_image(400, 300)).size == (256, 341)
    assert Resize((512, 448))(random_image(300, 400)).size == (448, 512)


def test_center_crop_is_the_middle():
    image = random_image(10, 12)
    np.testing.assert_array_equal(pixels(CenterCrop((4, 6))(image)), pixels(image)[3:7, 3:9])


def test_ten_crop_corners_centre_and_mirrors():
    image = random_image(10, 12)
    array = pixels(image)
    crops = [pixels(c) for c in TenCrop((4, 6))(image)]
    assert len(crops) == 10
    expected = [array[:4, :6], array[:4, 6:], array[6:, :6], array[6:, 6:], array[3:7, 3:9]]
    for crop, want in zip(crops[:5], expected, strict=True):
        np.testing.assert_array_equal(crop, want)
    for crop, original in zip(crops[5:], crops[:5], strict=True):
        np.testing.assert_array_equal(crop, original[:, ::-1])
    with pytest.raises(DLAError):
        TenCrop(20)(image)


def test_eval_transforms_are_deterministic_with_paper_shapes():
    image = random_image(300, 400)
    single = classification_eval_transforms(SYNTHETIC_META)
    assert single(image).shape == (3, 224, 224)
    torch.manual_seed(1)
    first = single(image)
    torch.manual_seed(2)
    assert torch.equal(first, single(image))
    ten = classification_eval_transforms(SYNTHETIC_META, ten_crop=True)(image)
    assert ten.shape == (10, 3, 224, 224) and ten.dtype == torch.float32
    assert torch.equal(ten[4], first)  # the central crop is the single-crop input
    assert classification_eval_transforms(SYNTHETIC_META, None, None)(image).shape == (3, 300, 400)
    with pytest.raises(DLAError):
        classification_eval_transforms(SYNTHETIC_META, crop_size=None, ten_crop=True)


def test_to_tensor_is_zero_one_and_stacks_lists():
    image = random_image(8, 5)
    tensor = ToTensor()(image)
    assert tensor.shape == (3, 8, 5) and tensor.dtype == torch.float32
    assert 0.0 <= float(tensor.min()) and float(tensor.max()) <= 1.0
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy() * 255, pixels(image), atol=1e-4)
    assert ToTensor()([image, image]).shape == (2, 3, 8, 5)


def test_normalize_per_channel():
    tensor = torch.full((3, 2, 2), 0.5)
    out = Normalize((0.5, 0.25, 0.0), (1.0, 0.5, 0.25))(tensor)
    assert torch.allclose(out[:, 0, 0], torch.tensor([0.0, 0.5, 2.0]))


def test_lighting_adds_the_pca_offset_for_the_drawn_alpha():
    tensor = torch.rand(2, 3, 4, 5)
    torch.manual_seed(7)
    alpha = torch.randn(3) * 0.1
    expected = torch.tensor(IMAGENET_PCA_EIGVEC) @ (alpha * torch.tensor(IMAGENET_PCA_EIGVAL))
    torch.manual_seed(7)
    offset = Lighting(0.1)(tensor) - tensor
    assert torch.allclose(offset, expected.view(3, 1, 1).expand_as(tensor), atol=1e-6)
    state = torch.get_rng_state()
    assert Lighting(0.0)(tensor) is tensor and torch.equal(torch.get_rng_state(), state)  # identity, no draw


def test_random_order_color_jitter_zero_strength_is_identity_and_factors_in_range():
    image = random_image()
    assert ColorJitter(0, 0, 0, random_order=True)(image) is image
    grey = Image.new("RGB", (4, 4), (100, 100, 100))  # only brightness changes a flat grey image
    for seed in range(20):
        torch.manual_seed(seed)
        value = pixels(ColorJitter(0.4, 0.4, 0.4, random_order=True)(grey))[0, 0, 0]
        assert 60 - 1 <= value <= 140 + 1


def test_random_order_color_jitter_order_is_random():
    """The output is brightness and contrast applied in the drawn order with the drawn factors; both orders occur
    (they differ: contrast blends towards the mean grey of its input)."""
    image = random_image(16, 16)
    enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast)
    orders = set()
    for seed in range(20):
        torch.manual_seed(seed)
        order = torch.randperm(2).tolist()
        expected = image
        for index in order:
            expected = enhancers[index](expected).enhance(0.6 + (1.4 - 0.6) * float(torch.rand(())))
        torch.manual_seed(seed)
        np.testing.assert_array_equal(pixels(ColorJitter(0.4, 0.4, 0.0, random_order=True)(image)), pixels(expected))
        orders.add(tuple(order))
    assert orders == {(0, 1), (1, 0)}


def test_random_flip_and_compose():
    image = random_image(6, 8)
    flip = Compose([RandomHorizontalFlip(1.0), RandomHorizontalFlip(1.0)])
    np.testing.assert_array_equal(pixels(flip(image)), pixels(image))
    np.testing.assert_array_equal(pixels(RandomHorizontalFlip(1.0)(image)), pixels(image)[:, ::-1])
    assert RandomHorizontalFlip(0.0)(image) is image
    assert "RandomHorizontalFlip(1.0)" in repr(flip)
