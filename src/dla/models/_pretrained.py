"""Pretrained weights: where they are, how they are fetched and checked, and how they are loaded.

A model's published weights (``pretrained=True``) are fetched from the Hugging Face Hub copy its cfg names
(``hf_hub_id``, through ``huggingface_hub``: ``_hub``), else from its original URL with
``torch.hub.download_url_to_file`` into ``<torch.hub.get_dir()>/checkpoints``, the SHA-256 prefix checked. Files are
read as safetensors or with ``torch.load(..., weights_only=True)``: a checkpoint is untrusted input. Whatever the
source, the weights are loaded strictly, after the model family's own key mapping (``filter_checkpoint``), and
the source used is printed once per process.
"""

import os
import re
import sys
import urllib.error
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor, nn

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..errors import DLAError
from ._hub import HUB_PREFIX, hub_file, is_hub_name

# torch.hub's convention: ``name-<first hex digits of the file's SHA-256>.ext``.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")
_BATCH_COUNTER = ".num_batches_tracked"


@dataclass(frozen=True)
class PretrainedCfg:
    """What a model's published weights are and how to feed them (timm's ``pretrained_cfg``)."""

    url: str | None = None
    hash_prefix: str | None = None
    hf_hub_id: str | None = None  # a Hub copy of the same weights ("timm/dla34.in1k"), tried before ``url``
    num_classes: int = 1000
    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    first_conv: str = "base_layer.0"
    classifier: str | tuple[str, ...] = "fc"  # module(s) re-initialised when num_classes differs
    license: str = ""
    paper_name: str = ""  # the variant's name in its paper ("DLA-X-46-C"); its figures are in ``_paper``
    origin: str = ""


def torchvision_cfg(file_name: str, paper_name: str, **kwargs) -> PretrainedCfg:
    """The cfg of torchvision's ImageNet weights ``file_name`` (``"resnet50-0676ba61"``: the name ends with the
    file's SHA-256 prefix); ``kwargs`` set the other fields (``first_conv``, ``classifier``)."""
    return PretrainedCfg(
        url=f"https://download.pytorch.org/models/{file_name}.pth",
        hash_prefix=file_name.rsplit("-", 1)[1],
        license="BSD-3-Clause",
        paper_name=paper_name,
        origin="torchvision (ImageNet-1k, IMAGENET1K_V1 weights)",
        **kwargs,
    )


def get_pretrained_cfg(model: nn.Module) -> PretrainedCfg:
    """``model.pretrained_cfg``, which every registered model has (``register_model``)."""
    cfg = model.pretrained_cfg
    if not isinstance(cfg, PretrainedCfg):
        raise DLAError(f"{type(model).__name__}.pretrained_cfg is a {type(cfg).__name__}, not a PretrainedCfg")
    return cfg


def load_pretrained(model: nn.Module, source: Union[bool, str, "os.PathLike[str]"]) -> None:
    """Load weights into ``model`` in place.

    ``source`` is ``True`` (the model's published weights: ``published_file``), an ``hf-hub:<repo>[@<revision>]``
    name (``_hub``: timm's uploads, or a folder of ``dla export --format hub`` uploaded as it is), a local path
    (``.pth``/``.pt`` read with ``weights_only=True``, or ``.safetensors``), a folder written by ``dla export
    --format hub``, or a URL (``file://`` works; a ``-<hex>`` hash in the file name is checked as torch.hub does).
    ``module.`` prefixes (DataParallel) are stripped, a checkpoint of this project (``{"model": state_dict}``) is
    unwrapped, and the family's ``filter_checkpoint`` maps other layouts of the same weights to its keys. When the
    class count differs the classifier is left freshly initialised; when the model has other than 3 input channels
    the first convolution's RGB filters are adapted.
    """
    cfg = get_pretrained_cfg(model)
    path, origin = _weights_file(model, cfg, os.fspath(source) if isinstance(source, os.PathLike) else source)
    _announce(model, origin)
    state_dict = read_state_dict(path)
    filter_checkpoint = getattr(model, "filter_checkpoint", None)
    if filter_checkpoint is not None:  # a family's own mapping of other layouts (torchvision's DenseNet, timm's DLA)
        state_dict = filter_checkpoint(state_dict)
    state_dict = _adapt_input_conv(state_dict, cfg.first_conv, model, path)
    heads = (cfg.classifier,) if isinstance(cfg.classifier, str) else tuple(cfg.classifier)
    state_dict = _drop_mismatched_classifier(state_dict, heads, model)
    load_state_dict_checked(model, state_dict, path, heads)


def _weights_file(model: nn.Module, cfg: PretrainedCfg, source: bool | str) -> tuple[str, str]:
    """The local file of ``source`` and a description of where it came from."""
    if source is True:
        return published_file(cfg, _model_name(model))
    if is_hub_name(source):
        return hub_file(str(source)), str(source)
    if isinstance(source, str) and os.path.isfile(source):
        return source, source
    if isinstance(source, str) and os.path.isdir(source):  # a folder written by dla export --format hub
        path = os.path.join(source, "model.safetensors")
        if not os.path.isfile(path):
            raise DLAError(f"pretrained={source!r} is a folder without model.safetensors (dla export --format hub writes one)")
        return path, source
    if isinstance(source, str) and "://" in source:
        return download(source, _hash_from_name(source)), source
    raise DLAError(f"pretrained={source!r} is neither True, an hf-hub: name, an existing file or folder, nor a URL")


def published_file(cfg: PretrainedCfg, model_name: str) -> tuple[str, str]:
    """The published weights of a model (``pretrained=True``): the Hub copy (``cfg.hf_hub_id``) when there is one,
    else, or when it cannot be had, the original file (``cfg.url``, hash checked). The local path and the source
    used; a DLAError naming every source tried when none can be had."""
    if not cfg.hf_hub_id and not cfg.url:
        raise DLAError(f"no published weights are known for {model_name}")
    failures = []
    if cfg.hf_hub_id:
        try:
            return hub_file(HUB_PREFIX + cfg.hf_hub_id), HUB_PREFIX + cfg.hf_hub_id
        except DLAError as e:
            failures.append(str(e))
    if cfg.url:
        try:
            return download(cfg.url, cfg.hash_prefix), cfg.url
        except DLAError as e:
            failures.append(str(e))
    raise DLAError(
        f"the published weights of {model_name} could not be had from any source: {' | '.join(failures)}. "
        "Pass a local copy instead: pretrained='path/to/file.pth' (or .safetensors)"
    )


_announced: set[tuple[str, str]] = set()


def _announce(model: nn.Module, origin: str) -> None:
    """Say once per process, on stderr, where a model's weights came from."""
    if (key := (_model_name(model), origin)) not in _announced:
        _announced.add(key)
        print(f"dla: {key[0]}: weights from {origin}", file=sys.stderr)


def download(url: str, hash_prefix: str | None = None) -> str:
    """Download ``url`` once into the torch.hub cache, checking the SHA-256 prefix; return the local path."""
    directory = os.path.join(torch.hub.get_dir(), "checkpoints")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, os.path.basename(urllib.parse.urlparse(url).path))
    if os.path.isfile(path):
        return path
    try:
        torch.hub.download_url_to_file(url, path, hash_prefix, progress=False)
    except (urllib.error.URLError, OSError) as e:
        raise DLAError(
            f"could not download {url}: {e}. Download the file by other means (mirrors exist) and pass its path "
            f"as pretrained='path/to/file.pth'"
        ) from e
    except RuntimeError as e:  # torch.hub's hash check
        raise DLAError(f"{url}: the downloaded file failed its integrity check ({e}); it was not kept") from e
    return path


def _hash_from_name(url: str) -> str | None:
    match = _HASH_IN_NAME.search(os.path.basename(urllib.parse.urlparse(url).path))
    return match.group(1) if match else None


def read_state_dict(path: str) -> dict[str, Tensor]:
    """The state dict in a weights file: ``.safetensors``, or a ``.pth``/``.pt`` read with ``weights_only=True``
    (a plain state dict, or a checkpoint's ``model`` / ``state_dict``; ``module.`` prefixes stripped). A DLAError
    naming the file when it cannot be read."""
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong format, or a pickle that is not weights only
        raise DLAError(
            f"{path}: not a readable weights-only PyTorch checkpoint ({type(e).__name__}: {e}). "
            f"The file may be truncated or corrupt: delete it and fetch it again."
        ) from e
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, Tensor) for v in checkpoint.values()):
        raise DLAError(f"{path}: expected a state dict (names to tensors), found {type(checkpoint).__name__}")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in checkpoint.items()}


def _read_safetensors(path: str) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise DLAError(f"{path}: not a readable safetensors file ({e}); it may be truncated: fetch it again") from None


def adapt_input_conv(weight: Tensor, in_chans: int) -> Tensor:
    """RGB filters ``(O, 3, k, k)`` to ``in_chans`` inputs: summed for 1, tiled and rescaled otherwise."""
    if weight.shape[1] == in_chans:
        return weight
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_chans // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


def _adapt_input_conv(state_dict: dict[str, Tensor], first_conv: str, model: nn.Module, path: str) -> dict[str, Tensor]:
    key = f"{first_conv}.weight"
    target = model.state_dict().get(key)
    if key in state_dict and target is not None and state_dict[key].shape[1] != target.shape[1]:
        state_dict = dict(state_dict, **{key: adapt_input_conv(state_dict[key], target.shape[1])})
    return state_dict


def _in_heads(key: str, heads: Sequence[str]) -> bool:
    return any(key == head or key.startswith(f"{head}.") for head in heads)


def _drop_mismatched_classifier(state_dict: dict[str, Tensor], heads: Sequence[str], model: nn.Module) -> dict[str, Tensor]:
    own = model.state_dict()
    head = {k for k in state_dict if _in_heads(k, heads)}
    if all(k in own and own[k].shape == state_dict[k].shape for k in head):
        return state_dict
    return {k: v for k, v in state_dict.items() if k not in head}


def load_state_dict_checked(model: nn.Module, state_dict: dict[str, Tensor], path: str, heads: Sequence[str] = ()) -> None:
    """Load ``state_dict`` into ``model`` strictly, or raise a DLAError naming ``path`` with the counts (and the first
    few) of missing keys, unexpected keys and shape mismatches. Keys of ``heads`` the file lacks stay as
    initialised (a new classifier). A BatchNorm layer's batch counter (``num_batches_tracked``, which PyTorch added
    in 0.4.1: the authors' files predate it) that a file lacks beside that layer's statistics is set to 0, as
    PyTorch itself does for such files."""
    own = model.state_dict()
    state_dict = _with_batch_counters(state_dict, own)
    fresh_head = {k for k in own if _in_heads(k, heads)} - set(state_dict)
    missing = [k for k in own if k not in state_dict and k not in fresh_head]
    unexpected = [k for k in state_dict if k not in own]
    wrong_shape = [
        f"{k} {tuple(v.shape)} (model: {tuple(own[k].shape)})"
        for k, v in state_dict.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or wrong_shape:
        raise DLAError(
            f"{path} does not fit {_model_name(model)}: "
            f"{_listing('missing keys', missing)}{_listing('unexpected keys', unexpected)}"
            f"{_listing('shape mismatches', wrong_shape)}Is it the checkpoint of another model?"
        )
    model.load_state_dict(state_dict, strict=not fresh_head)


def _with_batch_counters(state_dict: dict[str, Tensor], own: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state_dict`` with 0 for each BatchNorm batch counter it lacks where it has that layer's statistics."""
    counters = {
        k: torch.zeros_like(v)
        for k, v in own.items()
        if k.endswith(_BATCH_COUNTER) and k not in state_dict and k.replace(_BATCH_COUNTER, ".running_mean") in state_dict
    }
    return {**state_dict, **counters} if counters else state_dict


def _model_name(model: nn.Module) -> str:
    paper_name = getattr(getattr(model, "pretrained_cfg", None), "paper_name", "")
    return f"{type(model).__name__} ({paper_name})" if paper_name else type(model).__name__


def _listing(what: str, items: list, most: int = 8) -> str:
    if not items:
        return ""
    more = f", ... ({len(items) - most} more)" if len(items) > most else ""
    return f"{len(items)} {what} ({', '.join(items[:most])}{more}); "
