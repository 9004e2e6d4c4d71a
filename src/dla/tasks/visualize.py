"""Drawing label maps (a colour mask and a blend of it over the image) and confusion matrices.

Pixels without a colour (the ignore value, or a class beyond the palette) are drawn black in the mask and
left untouched in the overlay, so "no class" never looks like a class.
"""

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..constants import IGNORE_INDEX
from ..errors import DLAError

Palette = Sequence[tuple[int, int, int]]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont  # what ImageFont.load_default() returns


def _palette_lookup(label: np.ndarray, palette: Palette, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """``H x W x 3`` uint8 colours of ``label`` (``H x W``) and the ``H x W`` mask of pixels that have one."""
    label = np.asarray(label)
    colours = np.asarray(palette, dtype=np.uint8)
    if label.ndim != 2:
        raise DLAError(f"a label map is H x W, got shape {label.shape}")
    if colours.ndim != 2 or colours.shape[1] != 3:
        raise DLAError(f"a palette is a list of (r, g, b) triples, got an array of shape {colours.shape}")
    label = label.astype(np.int64)
    valid = (label >= 0) & (label < len(colours)) & (label != ignore_index)
    rgb = np.zeros(label.shape + (3,), dtype=np.uint8)
    rgb[valid] = colours[label[valid]]
    return rgb, valid


def colorize(label: np.ndarray, palette: Palette, ignore_index: int = IGNORE_INDEX) -> Image.Image:
    """An RGB image of ``label`` (``H x W`` class indices) in ``palette``'s colours; uncoloured pixels black."""
    return Image.fromarray(_palette_lookup(label, palette, ignore_index)[0])


def class_index_image(label: np.ndarray, palette: Palette, ignore_index: int = IGNORE_INDEX) -> Image.Image:
    """``label`` (``H x W`` class indices, or ``ignore_index``) as an image whose pixel values are the class indices,
    for programs and eyes alike: palette mode (``P``) with ``palette`` embedded when every value fits a byte (the
    ignored value, 255 usually, shows black), 16-bit grey (``I;16``, values only) beyond 256 classes. Saved as PNG,
    ``np.asarray(Image.open(path))`` gives the class indices back."""
    values = np.asarray(label)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise DLAError(f"class indices must be within 0..65535 to be written as an image, got {values.min()}..{values.max()}")
    if values.size == 0 or values.max() <= 255:
        image = Image.fromarray(values.astype(np.uint8), mode="P")
        colours = [0, 0, 0] * 256
        for index, colour in enumerate(palette[:256]):
            if index != ignore_index:
                colours[3 * index : 3 * index + 3] = list(colour)
        image.putpalette(colours)
        return image
    return Image.fromarray(values.astype(np.uint16))  # I;16


def overlay(
    image: Image.Image | np.ndarray, label: np.ndarray, palette: Palette, alpha: float = 0.5, ignore_index: int = IGNORE_INDEX
) -> Image.Image:
    """``image`` with the colour mask blended in: ``(1 - alpha) * image + alpha * colour`` where a pixel has a
    class colour, the image unchanged elsewhere. ``image``: PIL or ``H x W x 3`` uint8, same size as ``label``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise DLAError(f"alpha must be within [0, 1], got {alpha}")
    base = np.asarray(as_rgb_image(image), dtype=np.float32)
    rgb, valid = _palette_lookup(label, palette, ignore_index)
    if base.shape != rgb.shape:
        raise DLAError(f"image is {base.shape[1]}x{base.shape[0]} but the label map is {rgb.shape[1]}x{rgb.shape[0]}")
    blended = np.where(valid[..., None], (1 - alpha) * base + alpha * rgb, base)
    return Image.fromarray(np.rint(blended).astype(np.uint8))


def as_rgb_image(image: Image.Image | np.ndarray) -> Image.Image:
    """A PIL RGB image from a PIL image (any mode) or an ``H x W x 3`` uint8 array."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise DLAError(f"expected an H x W x 3 uint8 image, got shape {array.shape} and dtype {array.dtype}")
    return Image.fromarray(array)


CONFUSION_DARK = (8, 48, 107)  # the colour of a row-normalised 1 (white is 0)
GRID_SIDE = 1600  # the matrix is at most this many pixels wide (at least one pixel per cell)
MAX_CELL = 48  # cell side for small matrices
VALUES_UP_TO = 20  # cells show their value for at most this many classes
MAX_NAME = 24  # class names are cut to this many characters


def _text_size(font: Font, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return int(right - left), int(bottom - top)


def _vertical_text(text: str, font: Font) -> Image.Image:
    """``text`` in black on white, turned 90 degrees anticlockwise (reads bottom to top)."""
    width, height = _text_size(font, text)
    strip = Image.new("RGB", (width + 2, height + 4), "white")
    ImageDraw.Draw(strip).text((1, -font.getbbox(text)[1] + 2), text, fill="black", font=font)
    return strip.rotate(90, expand=True)


def _tick_step(cell: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that puts unlabelled index ticks at least 30 px apart."""
    step = 1
    while step * cell < 30:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def draw_confusion_matrix(
    matrix: np.ndarray | torch.Tensor, classes: Sequence[str], normalize: bool = True, max_classes_labelled: int = 40
) -> Image.Image:
    """A confusion matrix as an RGB image: rows are the true classes, columns the predicted ones.

    ``matrix``: ``(K, K)`` counts, ``matrix[t, p]`` samples of class ``t`` predicted ``p``. Each cell is shaded
    from white (0) to dark blue (1) by its row-normalised value, so every class reads as a recall profile
    whatever its frequency; a row without samples stays white. For at most 20 classes each cell also shows its
    value (the row fraction with ``normalize``, the raw count without) where it fits. Class names (cut to
    24 characters) label rows and columns for at most ``max_classes_labelled`` classes, otherwise every few
    indices get a tick. The cell side is 48 px for small matrices and shrinks so that the matrix is at most
    1600 px wide (200 classes: 8 px), keeping the image under ~2000 px. Uses PIL's default font.
    """
    values = matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    values = values.astype(np.float64)
    num = len(classes)
    if values.shape != (num, num) or num == 0:
        raise DLAError(f"a confusion matrix for {num} classes is {num} x {num}, got shape {values.shape}")
    totals = values.sum(axis=1, keepdims=True)
    fractions = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)

    font = ImageFont.load_default()
    line = _text_size(font, "Ag0")[1] + 4
    labelled = num <= max_classes_labelled
    cell = max(1, min(MAX_CELL, GRID_SIDE // num))
    if labelled:
        names = [str(name)[:MAX_NAME] for name in classes]
        cell = max(cell, line)  # one name per row without overlap
        label_side = max(_text_size(font, name)[0] for name in names) + 6
    else:
        step = _tick_step(cell)
        ticks: list[int] = list(range(0, num, step))
        label_side = _text_size(font, str(ticks[-1]))[0] + 10
    side = num * cell
    left = line + label_side  # "true" caption, then the row labels
    top = 2 * line + (label_side if labelled else line + 4)  # title, "predicted", then the column labels
    title = f"confusion matrix, {num} classes (shade: share of the true class)"
    canvas = Image.new("RGB", (max(left + side + 10, _text_size(font, title)[0] + 8), top + side + 10), "white")
    draw = ImageDraw.Draw(canvas)

    white, dark = np.array([255.0, 255.0, 255.0]), np.array(CONFUSION_DARK, dtype=np.float64)
    shades = np.rint(white + fractions[..., None] * (dark - white)).astype(np.uint8)
    canvas.paste(Image.fromarray(shades).resize((side, side), Image.Resampling.NEAREST), (left, top))
    draw.rectangle([left - 1, top - 1, left + side, top + side], outline="black")

    draw.text((4, 2), title, fill="black", font=font)
    caption_w = _text_size(font, "predicted")[0]
    draw.text((left + (side - caption_w) // 2, line + 2), "predicted", fill="black", font=font)
    caption = _vertical_text("true", font)
    canvas.paste(caption, (2, top + (side - caption.height) // 2))

    if labelled:
        for i, name in enumerate(names):
            width, height = _text_size(font, name)
            centre = i * cell + cell // 2
            draw.text((left - width - 4, top + centre - height // 2 - font.getbbox(name)[1]), name, fill="black", font=font)
            column = _vertical_text(name, font)
            canvas.paste(column, (left + centre - column.width // 2, top - column.height - 2))
    else:
        for i in ticks:
            centre = i * cell + cell // 2
            width, height = _text_size(font, str(i))
            draw.line([(left - 4, top + centre), (left - 1, top + centre)], fill="black")
            draw.text((left - width - 6, top + centre - height // 2 - 1), str(i), fill="black", font=font)
            draw.line([(left + centre, top - 4), (left + centre, top - 1)], fill="black")
            draw.text((left + centre - width // 2, top - line - 2), str(i), fill="black", font=font)

    if num <= VALUES_UP_TO:
        for (t, p), fraction in np.ndenumerate(fractions):
            if totals[t, 0] == 0:
                continue
            text = f"{fraction:.2f}" if normalize else f"{values[t, p]:g}"
            width, height = _text_size(font, text)
            if width > cell - 2:
                continue
            x, y = left + p * cell + (cell - width) // 2, top + t * cell + (cell - height) // 2
            draw.text((x, y - font.getbbox(text)[1]), text, fill="white" if fraction > 0.5 else "black", font=font)
    return canvas
