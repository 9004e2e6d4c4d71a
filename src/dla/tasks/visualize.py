"""Pictures for people: label maps (a colour mask, a blend of it over the image), and figures drawn with matplotlib
(confusion matrices, grids of samples) rendered to RGB PIL images.

Pixels without a colour (the ignore value, or a class beyond the palette) are drawn black in the mask and left
untouched in the overlay, so "no class" never looks like a class.

Figures are ``matplotlib.figure.Figure`` objects rendered by an Agg canvas of their own (``new_figure``,
``figure_image``), never through ``pyplot``: no display is needed, the user's backend is left alone and no global
list of open figures grows. matplotlib is imported when the first figure is made, so that commands that draw
nothing (``dla models``) start without it.
"""

import math
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from ..constants import IGNORE_INDEX
from ..errors import DLAError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Palette = Sequence[tuple[int, int, int]]
Tile = tuple[Image.Image, str]  # a picture and its title
LegendEntry = tuple[str, tuple[int, int, int]]  # a name and its colour

DPI = 100  # pixels per inch of the rendered figures
TILE_SIDE = 2.6  # inches: the longer side of one picture in a grid
MAX_NAME = 24  # class names are cut to this many characters
PICTURE_HEIGHT = 360  # pixels of a result picture on the page of dla app; scaled to fit, downloaded as it is
PICTURE_CLASS = "result-picture"  # the CSS class of those pictures (dla.app's CSS keeps their pixels sharp)


def new_figure(width: float, height: float) -> "Figure":
    """An empty figure of ``width x height`` inches (``DPI`` pixels each) with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def figure_image(figure: "Figure") -> Image.Image:
    """``figure`` rendered by an Agg canvas into an RGB image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")


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


def unnormalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> Image.Image:
    """A normalised ``3 x H x W`` image tensor (what the transforms give the model) back as an RGB image:
    ``image * std + mean`` on the 0..1 scale, clipped (colour jitter and lighting may leave it) and rounded."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise DLAError(f"expected a 3 x H x W image tensor, got shape {tuple(image.shape)}")
    pixels = image.detach().float().cpu() * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    return Image.fromarray((pixels.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())


def palette_legend(classes: Sequence[str], palette: Palette, labels: Iterable[np.ndarray]) -> list[LegendEntry]:
    """``(name, colour)`` of each class that occurs in ``labels`` (class-index maps), in class order."""
    present: set[int] = set()
    for label in labels:
        present.update(int(value) for value in np.unique(label))
    return [(classes[i], palette[i]) for i in range(min(len(classes), len(palette))) if i in present]


def draw_grid(tiles: Sequence[Tile], columns: int | None = None, legend: Sequence[LegendEntry] = ()) -> Image.Image:
    """``tiles`` (pictures with titles) in rows of ``columns`` (default: a square grid), each at the aspect of the
    first one, with ``legend`` (colour swatches and names) under them; an RGB image."""
    return figure_image(grid_figure(tiles, columns, legend))


def grid_figure(tiles: Sequence[Tile], columns: int | None = None, legend: Sequence[LegendEntry] = ()) -> "Figure":
    """The figure of ``draw_grid``."""
    from matplotlib.patches import Patch

    if not tiles:
        raise DLAError("a grid of pictures needs at least one picture")
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    width, height = tiles[0][0].size
    tile_w, tile_h = TILE_SIDE * min(1.0, width / height), TILE_SIDE * min(1.0, height / width)
    legend_rows = math.ceil(len(legend) / 6)
    figure = new_figure(columns * tile_w, rows * (tile_h + 0.3) + 0.3 * legend_rows)
    for axes, (picture, title) in zip(figure.subplots(rows, columns, squeeze=False).flat, tiles, strict=False):
        axes.imshow(np.asarray(picture.convert("RGB")), interpolation="antialiased")
        axes.set_title(title, fontsize=8)
    for axes in figure.axes:
        axes.set_axis_off()
    if legend:
        patches = [Patch(facecolor="#{:02x}{:02x}{:02x}".format(*rgb), edgecolor="black", label=name) for name, rgb in legend]
        figure.legend(handles=patches, loc="outside lower center", ncols=min(6, len(legend)), fontsize=8, frameon=False)
    return figure


def draw_confusion_matrix(
    matrix: np.ndarray | torch.Tensor, classes: Sequence[str], normalize: bool = True, max_classes_labelled: int = 40
) -> Image.Image:
    """A confusion matrix as an RGB image (``confusion_figure``)."""
    return figure_image(confusion_figure(matrix, classes, normalize, max_classes_labelled))


def confusion_figure(
    matrix: np.ndarray | torch.Tensor, classes: Sequence[str], normalize: bool = True, max_classes_labelled: int = 40
) -> "Figure":
    """A confusion matrix: rows are the true classes, columns the predicted ones, as ``ConfusionMatrix`` counts.

    ``matrix``: ``(K, K)`` counts, ``matrix[t, p]`` samples of class ``t`` predicted ``p``. Each cell is shaded
    from white (0) to dark blue (1) by its row-normalised value, so every class reads as a recall profile whatever
    its frequency; a row without samples stays blank. For at most 20 classes each cell also shows its value (the
    row fraction with ``normalize``, the raw count without, as ``12k`` / ``3.4M``). Class names (cut to 24
    characters) label the rows and columns for at most ``max_classes_labelled`` classes, otherwise indices do,
    every few classes. The matrix is 0.45 inch a class from 3 to 14 inches (200 classes: 1400 pixels).
    """
    values = matrix.detach().cpu().numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    values = values.astype(np.float64)
    num = len(classes)
    if values.shape != (num, num) or num == 0:
        raise DLAError(f"a confusion matrix for {num} classes is {num} x {num}, got shape {values.shape}")
    totals = values.sum(axis=1, keepdims=True)
    fractions = np.divide(values, totals, out=np.full_like(values, np.nan), where=totals > 0)

    side = min(14.0, max(3.0, 0.45 * num))
    labelled = num <= max_classes_labelled
    figure = new_figure(side + (3.2 if labelled else 2.0), side + (2.2 if labelled else 1.2))
    axes = figure.add_subplot()
    shading = axes.imshow(np.ma.masked_invalid(fractions), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(shading, ax=axes, shrink=0.8, label="share of the true class")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"confusion matrix, {num} classes")
    if labelled:
        names = [str(name)[:MAX_NAME] for name in classes]
        axes.set_xticks(range(num), names, rotation=90, fontsize=8)
        axes.set_yticks(range(num), names, fontsize=8)
    else:
        axes.locator_params(integer=True)
    if num <= 20:
        for (t, p), fraction in np.ndenumerate(fractions):
            if not np.isnan(fraction):
                text = f"{fraction:.2f}" if normalize else compact_count(values[t, p])
                axes.text(p, t, text, ha="center", va="center", fontsize=7, color="white" if fraction > 0.5 else "black")
    return figure


def compact_count(count: float) -> str:
    """A count in at most 4 characters and a suffix: ``950``, ``1.23k``, ``12k``, ``3.4M``, ``1.2G``."""
    for suffix, unit in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= unit:
            return f"{count / unit:.3g}{suffix}" if count < 10 * unit else f"{count / unit:.0f}{suffix}"
    return f"{count:g}"


def picture_output(gr: ModuleType, label: str, elem_id: str | None = None) -> Any:
    """A result picture of the ``dla app`` page (``gr``: Gradio's module), downloaded as the PNG it is (a palette mask
    stays one); no share button (it posts to the Hub)."""
    return gr.Image(
        label=label,
        format="png",
        elem_id=elem_id,
        elem_classes=[PICTURE_CLASS],
        height=PICTURE_HEIGHT,
        interactive=False,
        buttons=["download", "fullscreen"],
    )
