"""``dla app``: the page in a real browser (headless Chromium through Selenium, ``app_browser``), what each task
shows, the page's settings, and the command without Gradio.

The browser tests start the real command (``dla app --checkpoint ...``) in a child process on a free port of
127.0.0.1, upload an image and a file that is not one, and check what the page shows; the browser resolves no
other host, and every request it made must have gone to the app. They are skipped, with the reason, where
Gradio, Selenium, ``/usr/bin/chromium`` or ``/usr/bin/chromedriver`` is missing.
"""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app_browser import chromium, missing, requested_urls, served, upload, wait_for, wait_for_text
from dla.app import Predictors
from dla.cli import main
from dla.tasks import get_task
from dla.tasks.segmentation import class_areas
from engine_runs import write_image

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    return Path(write_image(tmp_path_factory.mktemp("images") / "street.png", size=(64, 48)))


# --- in a browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(segmentation_checkpoint):
    """The page's URL and a browser, for the module: one ``dla app`` child process, one Chromium."""
    reason = missing()
    if reason:
        pytest.skip(f"no browser test: {reason}")
    with served(["--checkpoint", segmentation_checkpoint], preload=["engine_runs"], python_path=[TESTS]) as url:
        with chromium() as driver:
            yield url, driver


def test_the_page_shows_the_overlay_and_the_class_areas_of_an_upload_offline(page, image):
    url, driver = page
    requested_urls(driver)  # start the record here
    driver.get(url)
    upload(driver, image)
    assert "street.png: 64x48 pixels" in wait_for_text(driver, "#status", "predicted in").text
    overlay = wait_for(driver, "#overlay img")
    assert overlay.get_attribute("src").startswith(url)
    table = wait_for_text(driver, "#areas", "background").text
    assert all(name in table for name in ["background", "bright", "dark"])
    outside = [u for u in requested_urls(driver) if not u.startswith((url, "data:", "blob:"))]
    assert not outside, f"the page requested other hosts: {outside}"


def test_the_page_refuses_a_file_that_is_not_an_image(page, tmp_path):
    url, driver = page
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    driver.get(url)
    upload(driver, notes)
    message = wait_for_text(driver, "#status", "Refused").text
    assert "notes.txt" in message and "not an image" in message and "Traceback" not in message
    assert not driver.find_elements("css selector", "#overlay img")


# --- what each task shows, and the settings (no browser) ----------------------------------------------------


def test_segmentation_shows_the_overlay_the_mask_and_every_class_area(segmentation_checkpoint, image):
    predictors = Predictors(segmentation_checkpoint, device="cpu")
    prediction = predictors.predict(image, {"scales": [1.0], "flip": False})
    overlay, mask, areas = get_task("segmentation").view().show(prediction, predictors.default.meta)
    assert overlay.size == mask.size == (64, 48) and mask.mode == "P"
    assert sorted(row[0] for row in class_areas(prediction)) == sorted(predictors.default.classes)
    for (cell, *numbers), (name, *same) in zip(areas, class_areas(prediction), strict=True):  # a colour square, the name
        assert cell.startswith("<span style=") and cell.endswith(f"</span>{name}") and numbers == same
    pixels = [row[1] for row in areas]
    assert sum(pixels) == 64 * 48 and pixels == sorted(pixels, reverse=True)
    assert sum(row[2] for row in areas) == pytest.approx(100, abs=0.1)


def test_settings_chosen_on_the_page_make_one_more_predictor_each_kept_for_next_time(segmentation_checkpoint, image):
    predictors = Predictors(segmentation_checkpoint, device="cpu")
    assert predictors.predictor({}) is predictors.default
    flipped = predictors.predictor({"flip": True, "scales": [0.5, 1.0]})
    assert flipped is predictors.predictor({"scales": [0.5, 1.0], "flip": True}) and flipped is not predictors.default
    assert predictors.predict(image, {"scales": [1.0, 0.5], "flip": True}).size == (64, 48)


def test_classification_shows_the_most_probable_classes(classification_checkpoint, image):
    predictors = Predictors(classification_checkpoint, device="cpu")
    (top,) = get_task("classification").view().show(predictors.predict(image, {"ten_crop": True}), predictors.default.meta)
    assert set(top) == {"dark", "bright"} and sum(top.values()) == pytest.approx(1, abs=1e-4)


def test_boundaries_show_the_boundary_map_and_its_thinned_edges(boundary_checkpoint, image):
    predictors = Predictors(boundary_checkpoint, device="cpu")
    boundaries, thin = get_task("boundaries").view().show(predictors.predict(image, {}), predictors.default.meta)
    assert boundaries.size == thin.size == (64, 48)


def test_a_file_that_is_not_an_image_is_refused_before_the_model_runs(segmentation_checkpoint, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with pytest.raises(Exception, match="notes.txt: cannot read the image"):
        Predictors(segmentation_checkpoint, device="cpu").predict(notes, {})


# --- the command without Gradio ----------------------------------------------------------------------------


def test_without_gradio_the_command_says_how_to_install_it(monkeypatch, capsys, segmentation_checkpoint):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio fails, as where it is not installed
    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    assert main(["app", "--checkpoint", segmentation_checkpoint]) == 2
    assert "pip install 'dla[app]'" in capsys.readouterr().err


def test_importing_dla_and_its_command_line_does_not_import_gradio():
    code = "import sys, dla, dla.cli, dla.app; print('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_port_in_use_is_refused_before_the_checkpoint_is_loaded(capsys, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["app", "--checkpoint", str(tmp_path / "never_read.pt"), "--port", str(port)]) == 2
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
