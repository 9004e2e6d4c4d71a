"""Writing scores: JSON files (NaN as null) and the pictures that go with them."""

import json
import math
from pathlib import Path
from typing import Any

from PIL import Image


def write_result(path: Path, result: dict[str, Any], pictures: dict[str, Image.Image]) -> None:
    """Scores as JSON at ``path``, and each of their ``pictures`` (name: PIL image) beside it as
    ``<path stem>_<name>.png``."""
    write_json(path, result)
    for name, picture in pictures.items():
        picture.save(path.with_name(f"{path.stem}_{name}.png"))


def write_json(path: Path, data: dict[str, Any]) -> None:
    """``data`` as indented JSON; NaN scores (classes absent from the split) become null, as JSON has no NaN."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_nan_to_none(data), indent=2) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
