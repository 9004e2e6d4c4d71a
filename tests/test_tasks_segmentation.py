"""Segmentation loss, test-time inference (scales, flip, sliding window) and prediction output."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dla.data.meta import DatasetMeta, default_palette
from dla.errors import DLAError
from dla.tasks import class_index_image, colorize, infer, overlay, save_prediction, segment_image, segmentation_loss

NUM_CLASSES = 4


def pointwise_model(in_channels=3, num_classes=NUM_CLASSES):
    """A 1x1 convolution: each output pixel depends on its input pixel alone (and is flip-equivariant)."""
    torch.manual_seed(1)
    return nn.Conv2d(in_channels, num_classes, 1).eval()


class RecordingModel(nn.Module):
    """Wraps a model and records the spatial sizes it is run on."""

    def __init__(self, model):
        super().__init__()
        self.model, self.sizes = model, []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return self.model(x)


class ChannelModel(nn.Module):
    """Logits = 10 x the (normalised) colour channels: the class is the channel that stands out most."""

    def forward(self, x):
        return 10 * x


# --- loss -----------------------------------------------------------------------------------------------------


def two_pixel_logits(second):
    """1 x 2 x 1 x 2 logits: pixel 0 scores (0, 0), pixel 1 scores ``second``."""
    return torch.tensor([[[[0.0, second[0]]], [[0.0, second[1]]]]], requires_grad=True)


def test_loss_by_hand_and_ignored_pixels_do_not_count():
    target = torch.tensor([[[0, 255]]])
    loss = segmentation_loss(two_pixel_logits((5.0, -5.0)), target)
    assert loss.item() == pytest.approx(math.log(2))  # only pixel 0 counts
    assert segmentation_loss(two_pixel_logits((-50.0, 80.0)), target).item() == pytest.approx(loss.item())


def test_ignored_pixels_leave_a_random_loss_unchanged():
    logits, target = torch.randn(2, 5, 6, 7), torch.randint(0, 5, (2, 6, 7))
    target[:, :3] = 255
    changed = logits.clone()
    changed[:, :, :3] = torch.randn(2, 5, 3, 7) * 100
    assert segmentation_loss(changed, target).item() == pytest.approx(segmentation_loss(logits, target).item())
    changed[0, 0, 5, 5] += 1  # a counted pixel does matter
    assert segmentation_loss(changed, target).item() != pytest.approx(segmentation_loss(logits, target).item())


def test_class_weights_by_hand():
    # pixel 0: class 0, p = 1/2; pixel 1: class 1, logits (ln 3, 0), p = 1/4
    logits, target = two_pixel_logits((math.log(3), 0.0)), torch.tensor([[[0, 1]]])
    assert segmentation_loss(logits, target).item() == pytest.approx((math.log(2) + math.log(4)) / 2)
    weighted = segmentation_loss(logits, target, class_weights=[1.0, 3.0])
    assert weighted.item() == pytest.approx((math.log(2) + 3 * math.log(4)) / 4)


def test_all_ignored_gives_a_zero_with_gradient():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((1, 4, 4), 255))
    assert loss.item() == 0.0 and loss.grad_fn is not None
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_loss_rejects_bad_weights_and_shapes():
    logits, target = torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(DLAError, match="class_weights"):
        segmentation_loss(logits, target, class_weights=[1.0, 2.0])
    with pytest.raises(DLAError, match="N x H x W"):
        segmentation_loss(logits, target[0])


# --- infer ----------------------------------------------------------------------------------------------------


def test_single_scale_is_the_softmax_of_the_model():
    model, image = pointwise_model(), torch.randn(1, 3, 21, 34)
    out = infer(model, image, NUM_CLASSES)
    assert not out.requires_grad
    torch.testing.assert_close(out, model(image).softmax(dim=1))


def test_flip_of_a_flip_equivariant_model_doubles_the_single_run():
    model, image = pointwise_model(), torch.randn(1, 3, 21, 34)
    torch.testing.assert_close(infer(model, image, NUM_CLASSES, flip=True), 2 * infer(model, image, NUM_CLASSES))


def test_multi_scale_with_flip_sums_the_runs():
    model, image = pointwise_model(), torch.randn(2, 3, 37, 45)
    out = infer(model, image, NUM_CLASSES, scales=(0.5, 0.75, 1.25), flip=True)
    assert out.shape == (2, NUM_CLASSES, 37, 45)
    torch.testing.assert_close(out.sum(dim=1), torch.full((2, 37, 45), 6.0))


def test_scales_resize_the_model_input():
    model, image = RecordingModel(pointwise_model()), torch.randn(1, 3, 20, 30)
    infer(model, image, NUM_CLASSES, scales=(0.5, 1.0, 1.5))
    assert model.sizes == [(10, 15), (20, 30), (30, 45)]


def test_sliding_window_of_a_pointwise_model_equals_whole_image_inference():
    model, image = RecordingModel(pointwise_model()), torch.randn(1, 3, 50, 70)
    whole = infer(model, image, NUM_CLASSES)
    model.sizes.clear()
    tiled = infer(model, image, NUM_CLASSES, window=(24, 32))
    torch.testing.assert_close(tiled, whole)
    # stride round(2/3 * window) = (16, 21): rows at 0, 16, 26; columns at 0, 21, 38
    assert model.sizes == [(24, 32)] * 9


def test_sliding_window_pads_images_smaller_than_the_window():
    model, image = RecordingModel(pointwise_model()), torch.randn(1, 3, 20, 70)
    tiled = infer(model, image, NUM_CLASSES, scales=(1.0, 0.5), flip=True, window=(32, 32))
    assert set(model.sizes) == {(32, 32)}
    expected = infer(pointwise_model(), image, NUM_CLASSES, scales=(1.0, 0.5), flip=True)
    torch.testing.assert_close(tiled, expected)


def test_infer_rejects_a_model_of_the_wrong_class_count():
    with pytest.raises(DLAError, match="num_classes"):
        infer(pointwise_model(num_classes=3), torch.randn(1, 3, 8, 8), NUM_CLASSES)


@pytest.mark.parametrize("options", [{"scales": ()}, {"overlap": 1.0}, {"window": (0, 8)}])
def test_infer_rejects_bad_options(options):
    with pytest.raises(DLAError):
        infer(pointwise_model(), torch.randn(1, 3, 8, 8), NUM_CLASSES, **options)


# --- predict and output ---------------------------------------------------------------------------------------


def rgb_meta(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    return DatasetMeta(name="rgb", classes=("red", "green", "blue"), palette=tuple(default_palette(3)), mean=mean, std=std)


def stripes():
    """A 4 x 6 image: two columns each of pure red, green and blue."""
    image = np.zeros((4, 6, 3), dtype=np.uint8)
    for channel in range(3):
        image[:, 2 * channel : 2 * channel + 2, channel] = 255
    return image


@pytest.mark.parametrize("as_pil", [True, False])
def test_predict_reads_rgb_channels_in_order(as_pil):
    image = stripes()
    label, probabilities = segment_image(
        ChannelModel(), Image.fromarray(image) if as_pil else image, rgb_meta(), scales=(1.0, 0.5), flip=True
    )
    assert label.shape == (4, 6) and label.dtype == np.uint8
    assert label.tolist() == [[0, 0, 1, 1, 2, 2]] * 4
    assert probabilities.shape == (3, 4, 6) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-5)
    assert np.array_equal(probabilities.argmax(axis=0), label)


def test_predict_normalises_with_the_meta():
    grey = np.full((3, 5, 3), 128, dtype=np.uint8)  # every channel 0.502 before normalisation
    label, _ = segment_image(ChannelModel(), grey, rgb_meta(mean=(0.9, 0.2, 0.1), std=(1.0, 1.0, 1.0)))
    assert (label == 2).all()  # blue: 0.40 > green 0.30 > red -0.40
    label, _ = segment_image(ChannelModel(), grey, rgb_meta(mean=(0.9, 0.2, 0.1), std=(1.0, 0.1, 1.0)))
    assert (label == 1).all()  # green: 3.0


def test_predict_rejects_images_that_are_not_rgb_uint8():
    with pytest.raises(DLAError, match="H x W x 3"):
        segment_image(ChannelModel(), np.zeros((4, 6), dtype=np.uint8), rgb_meta())


PALETTE = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
LABEL = np.array([[0, 1, 2], [255, 7, 1]])


def test_colorize_draws_palette_colours_and_black_for_no_class():
    mask = colorize(LABEL, PALETTE)
    assert mask.mode == "RGB" and mask.size == (3, 2)  # PIL sizes are width x height
    pixels = np.asarray(mask)
    assert pixels[0].tolist() == [list(c) for c in PALETTE]
    assert pixels[1].tolist() == [[0, 0, 0], [0, 0, 0], [0, 255, 0]]
    full_palette = colorize(np.array([[255, 3]]), default_palette(256))  # 255 has a colour but is ignored
    assert np.asarray(full_palette).tolist() == [[[0, 0, 0], list(default_palette(4)[3])]]


def test_overlay_blends_classes_and_leaves_other_pixels():
    image = Image.new("RGB", (3, 2), (100, 100, 100))
    pixels = np.asarray(overlay(image, LABEL, PALETTE, alpha=0.5)).astype(int)
    assert pixels[0, 0].tolist() == [178, 50, 50]  # (100 + 255) / 2 rounds to 178 (177.5, half to even)
    assert pixels[1, 0].tolist() == [100, 100, 100]  # ignored
    assert pixels[1, 1].tolist() == [100, 100, 100]  # outside the palette
    with pytest.raises(DLAError, match="label map"):
        overlay(Image.new("RGB", (2, 3)), LABEL, PALETTE)


def test_class_index_images_hold_the_indices_and_the_palette(tmp_path):
    label = np.array([[0, 1, 255], [2, 0, 1]])
    class_index_image(label, PALETTE).save(tmp_path / "mask.png")
    with Image.open(tmp_path / "mask.png") as mask:
        assert mask.mode == "P" and np.array_equal(np.asarray(mask), label)
        assert mask.convert("RGB").getpixel((0, 1)) == PALETTE[2] and mask.convert("RGB").getpixel((2, 0)) == (0, 0, 0)
    many = np.array([[0, 300], [1000, 65535]])  # beyond a byte: 16-bit values, no colours
    class_index_image(many, default_palette(2)).save(tmp_path / "many.png")
    with Image.open(tmp_path / "many.png") as mask:
        assert np.array_equal(np.asarray(mask).astype(np.int64), many)
    with pytest.raises(DLAError, match="within 0..65535"):
        class_index_image(np.array([[-1]]), PALETTE)


def test_save_prediction_writes_mask_overlay_and_probabilities(tmp_path):
    meta = rgb_meta()
    image = stripes()
    label, probabilities = segment_image(ChannelModel(), image, meta)
    paths = save_prediction(tmp_path / "out", "frame", image, label, probabilities, meta=meta)
    assert [p.name for p in paths] == ["frame_mask.png", "frame_overlay.png", "frame_probs.npy"]
    with Image.open(paths[0]) as mask:  # class indices as pixel values, the palette embedded
        assert mask.size == (6, 4) and mask.mode == "P"
        assert np.array_equal(np.asarray(mask), label)
        assert mask.convert("RGB").getpixel((4, 0)) == meta.palette[2]
    with Image.open(paths[1]) as blended:
        assert blended.size == (6, 4) and blended.mode == "RGB"
    saved = np.load(paths[2])
    assert saved.dtype == np.float16 and saved.shape == (3, 4, 6)
    np.testing.assert_allclose(saved, probabilities, atol=1e-3)
    assert len(save_prediction(tmp_path, "no_probs", Image.fromarray(image), label, meta=meta)) == 2
