"""The BSDS benchmark's pixel matching before and after: per-image time and ODS/OIS/AP of two simple edge maps.

The benchmark module of a git revision (``--baseline``; by default the last one with the maximum-cardinality
matching) is loaded next to the working tree's, and both count the same thinned maps in one process, taking
turns at going first, so that the machine's load weighs on both alike. The maps, on the first ``--images``
BSDS500 validation images: dla's gradient baseline (``gradient_magnitude``, sigma 1) and the Sobel gradient
magnitude of the grey image, each scaled to [0, 1] and thinned by ``thin_edges``, as ``dla eval`` does.

With ``--official``, the counts are also compared with the official matching (BSDS500's ``correspondPixels``,
the CSA program, as pyEdgeEval packages it; it must be importable) at a few thresholds, twice, since CSA
breaks ties at random (its outlier connections are drawn from a time-seeded generator).

Run: ``DLA_DATA_ROOT=../shared/data OMP_NUM_THREADS=1 python benchmarks/bsds_matching.py [--images 25]
[--baseline REV] [--official] [--json out.json]``.
"""

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image
from scipy import ndimage

from dla.data import build_dataset
from dla.engine.config_loader import resolve_data_root
from dla.metrics import boundaries as current
from dla.tasks.boundaries import gradient_magnitude

REPO = Path(__file__).resolve().parents[1]
MODULE = "src/dla/metrics/boundaries.py"
BASELINE = "2ee0355"  # the benchmark module before the minimum-cost matching


def load_revision(revision: str) -> ModuleType:
    """``dla.metrics.boundaries`` as it was at git ``revision``, importable beside today's."""
    source = subprocess.run(["git", "show", f"{revision}:{MODULE}"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    name = f"dla.metrics._boundaries_{revision}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    module.__package__ = "dla.metrics"
    sys.modules[name] = module
    exec(compile(source, f"{revision}:{MODULE}", "exec"), module.__dict__)
    return module


def sobel_magnitude(image: Image.Image) -> np.ndarray:
    """The Sobel gradient magnitude of the grey image, scaled to [0, 1]."""
    grey = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    magnitude = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))
    return magnitude / max(float(magnitude.max()), 1e-12)


MAPS = {"gradient": gradient_magnitude, "sobel": sobel_magnitude}


def official_counts(correspond_pixels, edges: np.ndarray, annotations: list[np.ndarray], level: float) -> tuple[int, int]:
    """``(cntR, cntP)`` of the official matching at one threshold (the map thinned as the benchmark does)."""
    prediction = current.thin_binary(edges >= level).astype(np.float64)
    matched_any = np.zeros(prediction.shape, dtype=bool)
    count_r = 0
    for truth in annotations:
        matched_prediction, matched_truth, _, _ = correspond_pixels(prediction, truth.astype(np.float64), 0.0075, 100.0)
        count_r += int(np.count_nonzero(matched_truth))
        matched_any |= matched_prediction > 0
    return count_r, int(np.count_nonzero(matched_any))


def compare_official(kind: str, maps: list, counts: dict[str, np.ndarray], levels: list[int]) -> dict:
    """Largest and mean differences of each implementation's (cntR, cntP) from the official ones, per sumP."""
    from pyEdgeEval import correspond_pixels  # optional: only this comparison needs it

    thresholds = current.boundary_thresholds()
    gaps: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": [], "official again": []}
    for i, (edges, annotations) in enumerate(maps):
        for k in levels:
            first = official_counts(correspond_pixels, edges, annotations, thresholds[k])
            second = official_counts(correspond_pixels, edges, annotations, thresholds[k])
            sum_r, sum_p = counts["current"][i, k, 1], max(counts["current"][i, k, 3], 1)
            rows = {"baseline": counts["baseline"][i, k], "current": counts["current"][i, k]}
            for name, row in rows.items():
                gaps[name].append(((row[0] - first[0]) / sum_r, (row[2] - first[1]) / sum_p))
            gaps["official again"].append(((second[0] - first[0]) / sum_r, (second[1] - first[1]) / sum_p))
        print(f"  {kind} image {i}: official counts at {len(levels)} thresholds", flush=True)
    return {
        name: {
            "recall_max_abs": float(np.abs(np.array(g)[:, 0]).max()),
            "precision_max_abs": float(np.abs(np.array(g)[:, 1]).max()),
            "precision_mean": float(np.array(g)[:, 1].mean()),
        }
        for name, g in gaps.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=25)
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the benchmark module to compare with")
    parser.add_argument("--official", action="store_true", help="also compare counts with pyEdgeEval's correspondPixels")
    parser.add_argument("--official-thresholds", default="0,9,29,49", help="threshold indices (of 99) for --official")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    modules = {"baseline": load_revision(args.baseline), "current": current}
    dataset = build_dataset("bsds500", resolve_data_root("bsds500", None), "val")
    thresholds = current.boundary_thresholds()
    report: dict = {"images": args.images, "baseline": args.baseline, "maps": {}}
    for kind, boundary_map in MAPS.items():
        maps, seconds = [], {name: [] for name in modules}
        counts: dict[str, list[np.ndarray]] = {name: [] for name in modules}
        for i in range(args.images):
            image, annotations = dataset.read_annotated(i)
            edges = current.thin_edges(boundary_map(image))
            maps.append((edges, annotations))
            for name in list(modules)[:: 1 if i % 2 == 0 else -1]:
                start = time.perf_counter()
                counts[name].append(modules[name].image_counts(edges, annotations))
                seconds[name].append(time.perf_counter() - start)
            print(f"{kind} image {i}: " + ", ".join(f"{n} {s[-1]:.2f} s" for n, s in seconds.items()), flush=True)
        stacked = {name: np.stack(c) for name, c in counts.items()}
        entry = {}
        for name, module in modules.items():
            scores = module.boundary_scores(stacked[name], thresholds)
            entry[name] = {
                "seconds_per_image_mean": statistics.mean(seconds[name]),
                "seconds_per_image_median": statistics.median(seconds[name]),
                **{key: scores[key] for key in ("ods", "ois", "ap")},
            }
        if args.official:
            levels = [int(k) for k in args.official_thresholds.split(",")]
            entry["official_gaps"] = compare_official(kind, maps, stacked, levels)
        report["maps"][kind] = entry
    print(f"\n{args.images} BSDS500 val images; baseline {args.baseline}")
    print("| map | matching | s/image (mean) | s/image (median) | ODS | OIS | AP |\n| --- | --- | --- | --- | --- | --- | --- |")
    for kind, entry in report["maps"].items():
        for name in modules:
            e = entry[name]
            print(
                f"| {kind} | {name} | {e['seconds_per_image_mean']:.2f} | {e['seconds_per_image_median']:.2f} "
                f"| {e['ods']:.4f} | {e['ois']:.4f} | {e['ap']:.4f} |"
            )
    for kind, entry in report["maps"].items():
        for name, gap in entry.get("official_gaps", {}).items():
            print(
                f"{kind}, {name} vs official: recall max |diff| {gap['recall_max_abs']:.4f}, precision max |diff| "
                f"{gap['precision_max_abs']:.4f}, mean diff {gap['precision_mean']:+.4f}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
