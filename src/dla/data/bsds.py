"""BSDS500 (Berkeley Segmentation Data Set 500) for boundary detection, in its release layout.

``root/images/<split>/<id>.jpg`` with ``root/groundTruth/<split>/<id>.mat``; splits ``train`` (200
images), ``val`` (100) and ``test`` (200), 481x321 or 321x481. Each ``.mat`` holds ``groundTruth``, a
1xN cell (N = 4..9 human annotators) of structs with ``Segmentation`` (uint16 region ids) and
``Boundaries`` (uint8 0/1) maps of the image's size. Every annotator's ``Boundaries`` is kept
(:meth:`~dla.data.boundaries.BoundaryDataset.annotations`, for the benchmark); training labels are their
consensus, boundaries that at least three annotators mark by default (DLA paper, Sec. 5.4). Nothing is
cached: a ``.mat`` is some 50 KB and reads in a few milliseconds.
"""

from pathlib import Path

import numpy as np
import scipy  # scipy.io loads on first use, not at every ``dla`` start

from ..errors import DLAError
from .base import list_images, pair_files, require_dir
from .boundaries import BoundaryDataset, boundary_meta
from .meta import DatasetMeta

BSDS_META = boundary_meta("bsds500")


class BSDS500(BoundaryDataset):
    """BSDS500: ``root/images/{split}/*.jpg`` with ``root/groundTruth/{split}/<id>.mat``, all annotators kept."""

    splits = ("train", "val", "test")

    def load_meta(self) -> DatasetMeta:
        return BSDS_META

    def find_files(self) -> list[tuple[Path, Path]]:
        images = require_dir(self.root_dir / "images" / self.split, f"BSDS500 {self.split!r} image folder")
        truth = require_dir(self.root_dir / "groundTruth" / self.split, f"BSDS500 {self.split!r} ground-truth folder")
        return pair_files(list_images(images), lambda p: truth / f"{p.stem}.mat", str(truth))

    def load_annotations(self, path: Path) -> list[np.ndarray]:
        return read_bsds_boundaries(path)

    def verify_label(self, label_path: Path, image_path: Path, image_size: tuple[int, int]) -> None:
        """The MAT-file header only (its maps' sizes need the whole, compressed file: ``read`` checks them)."""
        require_mat_header(label_path)


def require_mat_header(path: Path) -> None:
    """:class:`DLAError` unless ``path`` starts with the header of a MATLAB 5 / 7 MAT-file, the format of the
    release that ``scipy.io.loadmat`` reads (v4 files hold no cells, v7.3 ones are HDF5)."""
    try:
        major, _ = scipy.io.matlab.matfile_version(str(path))
    except FileNotFoundError:
        raise DLAError(f"{path}: ground-truth file not found") from None
    except Exception as e:  # MatReadError (empty, truncated), ValueError (unknown version), OSError
        raise DLAError(f"{path}: not a MATLAB ground-truth file ({e}); truncated or corrupt?") from e
    if major != 1:
        found = (
            "a version 7.3 (HDF5) MAT-file" if major == 2 else "no MATLAB 5 or 7 header (a version 4 MAT-file, or no MAT-file)"
        )
        raise DLAError(f"{path}: {found}; BSDS ground truth is read from version 5 or 7 MAT-files (MATLAB: save -v7)")


def read_bsds_boundaries(path: Path) -> list[np.ndarray]:
    """Every annotator's ``Boundaries`` map in BSDS ground-truth file ``path``, in file order.

    Read with ``squeeze_me`` and ``struct_as_record=False``: a cell of structs (the release) or a struct
    array becomes an array of ``mat_struct`` objects, a single struct one object (made a list of one).
    """
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except FileNotFoundError:
        raise DLAError(f"{path}: ground-truth file not found") from None
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, MatReadError, zlib errors... on bad files
        raise DLAError(f"{path}: cannot read the MATLAB ground-truth file ({e}); truncated or corrupt?") from e
    if "groundTruth" not in mat:
        keys = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise DLAError(f"{path}: no 'groundTruth' variable (variables: {keys}); not a BSDS ground-truth file")
    maps = []
    for k, entry in enumerate(np.atleast_1d(mat["groundTruth"]), 1):
        boundaries = getattr(entry, "Boundaries", None)
        if not isinstance(boundaries, np.ndarray):
            raise DLAError(f"{path}: groundTruth entry {k} has no 'Boundaries' map")
        maps.append(boundaries)
    return maps
