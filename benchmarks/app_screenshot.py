"""A screenshot of the ``dla app`` page with a prediction, for ``docs/app.png``.

    python benchmarks/app_screenshot.py --checkpoint runs/demo/checkpoints/best.pt --out docs/app.png

Starts ``dla app --checkpoint CHECKPOINT`` on a free port of 127.0.0.1, opens it in headless Chromium (Debian's
``chromium`` and ``chromium-driver``, as ``tests/test_app.py`` does, through ``tests/app_browser.py``), uploads an
image (``--image``; by default validation image ``--index`` of the checkpoint's own run, its dataset's raw image)
and saves the whole page once the result is shown.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from app_browser import chromium, missing, served, upload, wait_for, wait_for_text  # noqa: E402
from dla.data import build_dataset  # noqa: E402
from dla.engine.checkpoint import load_checkpoint, run_config  # noqa: E402
from dla.engine.config_loader import resolve_data_root  # noqa: E402

WIDTH = 1280


def run_image(checkpoint: Path, index: int, out: Path) -> Path:
    """Image ``index`` of the validation split of ``checkpoint``'s run, as its dataset reads it, saved to ``out``."""
    cfg = run_config(load_checkpoint(checkpoint), str(checkpoint))
    data = build_dataset(
        cfg.data.dataset, resolve_data_root(cfg.data.dataset, cfg.data.root), cfg.data.val_split, **cfg.data.options
    )
    data.read(index)[0].save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="what dla app serves")
    parser.add_argument("--image", type=Path, help="the image to upload (default: one of the run's validation images)")
    parser.add_argument("--index", type=int, default=0, help="which validation image, without --image")
    parser.add_argument("--out", type=Path, default=Path("docs/app.png"))
    args = parser.parse_args()
    reason = missing()
    if reason:
        sys.exit(f"app_screenshot: {reason}")
    with tempfile.TemporaryDirectory() as scratch:
        image = args.image or run_image(args.checkpoint, args.index, Path(scratch) / f"val_{args.index:03d}.png")
        with served(["--checkpoint", str(args.checkpoint)]) as url, chromium(WIDTH) as driver:
            driver.get(url)
            upload(driver, image)
            wait_for_text(driver, "#status", "predicted in")
            wait_for(driver, "#overlay img, #boundaries img, #top-k")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd(  # the viewport as tall as the page: the screenshot shows all of it
                "Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
            )
            driver.save_screenshot(str(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
