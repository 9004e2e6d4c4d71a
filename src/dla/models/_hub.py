"""Files on the Hugging Face Hub, named ``hf-hub:<owner>/<repo>[@<revision>]`` (timm's convention).

Fetching is ``huggingface_hub``'s, so everything that library does applies unchanged: its cache (``HF_HUB_CACHE``,
``HF_HOME``), offline mode (``HF_HUB_OFFLINE=1``: files already in the cache only), revisions (a branch, tag or
commit after ``@``), mirrors (``HF_ENDPOINT``) and tokens (``HF_TOKEN``, for private repositories).

A repository holds its weights as ``model.safetensors`` (timm's uploads and ``dla export --format hub``'s folders)
or, in older uploads, ``pytorch_model.bin`` (read with ``weights_only=True``, as every ``.pth``).
"""

from collections.abc import Sequence
from pathlib import Path

from .._version import __version__
from ..errors import DLAError

HUB_PREFIX = "hf-hub:"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_hub_name(source: object) -> bool:
    """Whether ``source`` is an ``hf-hub:`` name."""
    return isinstance(source, str) and source.startswith(HUB_PREFIX)


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """``"hf-hub:timm/dla34.in1k@main"`` -> ``("timm/dla34.in1k", "main")``; the revision is None when not given."""
    repo, _, revision = name[len(HUB_PREFIX) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise DLAError(f"{name!r}: a Hub name is hf-hub:<owner>/<repository>[@<revision>], e.g. hf-hub:timm/dla34.in1k")
    return repo, revision or None


def hub_file(name: str, filenames: Sequence[str] = WEIGHT_FILES) -> str:
    """The local path of the first of ``filenames`` that the repository ``name`` holds, fetched into the Hub cache
    (or found there). A DLAError naming the repository, the files tried and why when none can be had."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    repo, revision = parse_hub_name(name)
    reasons = []
    for filename in filenames:
        try:
            return hf_hub_download(repo, filename, revision=revision, library_name="dla", library_version=__version__)
        except EntryNotFoundError as e:  # not in the repository, or (offline, unreachable) not in the cache
            reasons.append(f"{filename}: {_first_line(e)}")
        except Exception as e:  # no such repository or revision, no access, no connection: the client says which
            raise DLAError(f"{name}: {type(e).__name__}: {_first_line(e)}") from None
    offline = " (HF_HUB_OFFLINE is set: only the cache was searched)" if constants.HF_HUB_OFFLINE else ""
    raise DLAError(
        f"{name}: none of {', '.join(filenames)} could be had from the Hub or its cache {constants.HF_HUB_CACHE}"
        f"{offline}: {'; '.join(reasons)}"
    )


def hub_folder(name: str, filenames: Sequence[str]) -> Path:
    """The cache folder holding each of ``filenames`` of the repository ``name``, every one fetched (``hub_file``):
    a folder of ``dla export --format hub``, uploaded as it is, read back as the folder it was."""
    folders = {Path(hub_file(name, (filename,))).parent for filename in filenames}
    if len(folders) != 1:  # the client keeps a revision's files in one snapshot folder
        raise DLAError(f"{name}: the files {', '.join(filenames)} are not in one snapshot folder: {sorted(map(str, folders))}")
    return folders.pop()


def _first_line(error: BaseException) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0]
