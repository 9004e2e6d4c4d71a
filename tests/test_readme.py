"""The README's ```python blocks run as written (```py blocks, which need the network, are shown only)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert tuple(namespace["logits"].shape) == (1, 1000)
    assert [tuple(m.shape) for m in namespace["maps"]] == [
        (1, 64, 128, 128),
        (1, 128, 64, 64),
        (1, 256, 32, 32),
        (1, 512, 32, 32),
    ]
    assert tuple(namespace["features"].shape) == (2, 256)
    assert tuple(namespace["y"].shape) == (2, 128, 28, 28)
    assert tuple(namespace["z"].shape) == (2, 256, 14, 14)
    assert tuple(namespace["masks"].shape) == (1, 360, 480)
