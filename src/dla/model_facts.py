"""What ``dla models`` prints of each registered model (its paper's name, its block, parameters, multiply-adds),
counted once per code version and kept in a cache file.

The counts are exact (``dla.complexity`` on the model built on the meta device, where nothing is computed), but
counting some 30 models takes 10-50 s on a CPU all the same: PyTorch's meta kernels of BatchNorm and of the weight
initialisers are Python decompositions, run op by op. The counts change only when the code does, so they are
kept in ``<cache>/models-<fingerprint>.json``: the fingerprint hashes every source file of the ``dla`` package
and the PyTorch version, so that any edit of the package or another PyTorch starts a new file (and the old one
is removed). ``<cache>`` is ``$DLA_CACHE_DIR``, else ``$XDG_CACHE_HOME/dla``, else ``~/.cache/dla``. Models
registered outside the package (by a user's code or a test) are counted on every call, since their code is not
in the fingerprint. A cache that cannot be read is counted again; one that cannot be written is done without.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from .complexity import count_macs, count_params
from .models import create_model, get_pretrained_cfg, model_entrypoint

Size = tuple[int, int]  # (H, W)


@dataclass(frozen=True)
class ModelFacts:
    """A model's names and size: ``macs`` maps an input size ``"HxW"`` to multiply-adds at batch 1."""

    paper_name: str
    block: str
    params: int
    macs: dict[str, int]


def size_key(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def count_facts(name: str, sizes: Sequence[Size]) -> ModelFacts:
    """The facts of the registered model ``name`` (default arguments, built on the meta device), counted now."""
    with torch.device("meta"):
        model = create_model(name).eval()
    return ModelFacts(
        get_pretrained_cfg(model).paper_name,
        getattr(model, "block_name", ""),
        count_params(model),
        {size_key(size): count_macs(model, (1, 3, *size)) for size in sizes},
    )


PACKAGE = Path(__file__).resolve().parent


def fingerprint(package: Path = PACKAGE) -> str:
    """A hash of the source files of ``package`` (the ``dla`` package: paths and contents) and the PyTorch version."""
    digest = hashlib.sha256(torch.__version__.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_folder() -> Path:
    """``$DLA_CACHE_DIR``, else ``$XDG_CACHE_HOME/dla``, else ``~/.cache/dla``."""
    if os.environ.get("DLA_CACHE_DIR"):
        return Path(os.environ["DLA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dla"


class FactsCache:
    """The facts of the models, read from this code version's cache file and counted where missing (``facts``);
    ``save`` writes what was counted."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else cache_folder()
        self.path = self.folder / f"models-{fingerprint()}.json"
        self.entries = self._read()
        self.changed = False

    def _read(self) -> dict[str, dict]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def facts(self, name: str, sizes: Sequence[Size]) -> ModelFacts:
        """The facts of ``name`` with its multiply-adds at each of ``sizes``: cached, or counted and cached."""
        try:
            cached: ModelFacts | None = ModelFacts(**self.entries[name])
        except (KeyError, TypeError):  # not counted yet, or an entry of another layout
            cached = None
        known = cached.macs if cached is not None else {}
        missing = [size for size in sizes if size_key(size) not in known]
        if cached is not None and not missing:
            return cached
        facts = count_facts(name, missing)
        facts = replace(facts, macs={**known, **facts.macs})
        if model_entrypoint(name).__module__.split(".")[0] == __package__:  # its code is in the fingerprint
            self.entries[name] = asdict(facts)
            self.changed = True
        return facts

    def save(self) -> None:
        """Write the entries if some were counted (atomically), removing the files of other code versions."""
        if not self.changed:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False) as file:
                json.dump(self.entries, file)
            os.replace(file.name, self.path)
            for stale in self.folder.glob("models-*.json"):
                if stale != self.path:
                    stale.unlink(missing_ok=True)
        except OSError:
            return  # a read-only home: the counts are right, only not kept
        self.changed = False
