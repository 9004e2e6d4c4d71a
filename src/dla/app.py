"""``dla app``: a local web page to try a trained model (Gradio), for people who do not use a terminal.

The page holds one checkpoint (a ``.pt`` file, a folder written by ``dla export --format hub`` or its ``hf-hub:``
name, or an ``.onnx`` export). A user uploads an image (or picks one of the ``--examples``), chooses the test-time settings of the
model's task (segmentation: the scales and the mirrored image; classification: ten crops) and sees what the
model predicts. Every prediction is made by :class:`dla.Predictor`, the code path of ``dla predict``, and shown
as its task's ``Task.view`` shows it: segmentation, the overlay, the class-index mask (the palette PNG ``dla predict``
writes) and each class's area; boundaries, the boundary map and its thinned edges; classification, the five
most probable classes.

A file that is not an image is refused with a message on the page (the ``DLAError`` that ``dla predict`` would
print, naming the uploaded file), never a traceback.

Local and offline. The server binds to 127.0.0.1 unless ``host`` says otherwise and never opens a share tunnel;
Gradio's analytics, its version check and Hugging Face telemetry are off (``GRADIO_ANALYTICS_ENABLED=False`` is
set before Gradio is imported); the page is drawn in the browser (no server-side rendering, so no Node) from
Gradio's packaged scripts and the default theme's packaged fonts, so that nothing comes from another host
(``tests/test_app.py`` records every request the browser makes).

Gradio is an optional extra (``pip install 'dla[app]'``), imported when a page is built, never by ``import dla``.
"""

import json
import os
import socket
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from .commands.predict import find_images
from .commands.predictor import Prediction, Predictor
from .data.base import image_header
from .errors import DLAError
from .tasks import get_task
from .tasks.visualize import PICTURE_CLASS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
CACHED = 2  # predictors kept for settings other than the run's own (each one holds a copy of the model)
MAX_UPLOAD = "50mb"  # Gradio refuses larger uploads
# Pictures fill their box (a small image scaled up), pixels kept sharp: a mask's class edges stay exact.
CSS = f".{PICTURE_CLASS} img {{width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated}}"
KEEP_UPLOADS = 3600  # seconds: Gradio deletes uploaded files and results older than this, every as many seconds


def require_gradio() -> ModuleType:
    """The ``gradio`` module, imported with its analytics off; a ``DLAError`` saying how to install it otherwise."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio starts: no analytics, no version check
    try:
        import gradio
    except ImportError as error:
        raise DLAError(f"dla app needs Gradio ({error}); install it with: pip install 'dla[app]'") from None
    return gradio


# --- the predictors behind the page ------------------------------------------------------------------------


def run_settings(predictor: Predictor) -> dict[str, Any]:
    """The ``eval`` keys of its task ``predictor`` runs with (the run's, with the settings it was given)."""
    return predictor.settings["eval"]


class Predictors:
    """A checkpoint's predictors: one with the run's settings (and those given to ``dla app``), made at start, and
    the last ``CACHED`` made for other settings chosen on the page, so that a setting tried again is not loaded
    again."""

    def __init__(self, checkpoint: str, device: str = "auto", backend: str | None = None, **settings: Any) -> None:
        self.checkpoint, self.device, self.backend, self.settings = checkpoint, device, backend, settings
        self.default = Predictor(checkpoint, device=device, backend=backend, **settings)
        self.view = get_task(self.default.task).view()  # the task's part of the page
        self._other = lru_cache(maxsize=CACHED)(self._load)

    def _load(self, changes: str) -> Predictor:
        return Predictor(self.checkpoint, device=self.device, backend=self.backend, **{**self.settings, **json.loads(changes)})

    def predictor(self, changes: dict[str, Any]) -> Predictor:
        """The predictor with ``changes`` (eval keys whose values differ from the default predictor's), cached by
        their JSON text."""
        return self._other(json.dumps(changes, sort_keys=True)) if changes else self.default

    def predict(self, path: str | os.PathLike[str], settings: dict[str, Any]) -> Prediction:
        """``path``'s prediction with ``settings`` (eval keys); ``DLAError`` for a file that is not an image."""
        current = run_settings(self.default)
        chosen = {key: sorted(value) if isinstance(value, list) else value for key, value in settings.items()}
        return self.predictor({key: value for key, value in chosen.items() if value != current[key]})(path)


# --- the page ----------------------------------------------------------------------------------------------


def described(error: DLAError, path: Path) -> str:
    """The message of ``error`` about the uploaded file ``path``, naming the file as the user named it (Gradio keeps
    the name in a temporary folder)."""
    return str(error).replace(str(path), path.name)


def summary_line(prediction: Prediction, name: str) -> str:
    width, height = prediction.size
    return f"**{name}**: {width}x{height} pixels, predicted in {prediction.seconds:.2f} s"


def build_page(predictors: Predictors, examples: Sequence[Path] = ()) -> Any:
    """The page of ``predictors`` (a ``gradio.Blocks``): an upload, the task's settings, a button, the results and a
    status line; a prediction runs on upload, on an example picked and on the button."""
    gr = require_gradio()
    predictor = predictors.default
    with gr.Blocks(
        title=f"dla: {Path(predictors.checkpoint).name}", analytics_enabled=False, delete_cache=(KEEP_UPLOADS, KEEP_UPLOADS)
    ) as page:
        gr.Markdown(
            f"# dla: try a model\n`{predictors.checkpoint}`: {predictor.task}, {len(predictor.classes)} classes "
            f"({', '.join(predictor.classes[:12])}{', ...' if len(predictor.classes) > 12 else ''})"
        )
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image", type="filepath", elem_id="upload")
                controls = predictors.view.controls(gr, run_settings(predictor))
                button = gr.Button("Predict", variant="primary")
                if examples:
                    gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Examples")
            with gr.Column(scale=2):
                status = gr.Markdown("Upload an image.", elem_id="status")
                outputs = predictors.view.outputs(gr)
        keys = list(controls)

        def run(path: str | None, *values: Any) -> list[Any]:
            if path is None:
                return [*[None] * len(outputs), "Upload an image."]
            upload_path = Path(path)
            try:
                prediction = predictors.predict(upload_path, dict(zip(keys, values, strict=True)))
            except DLAError as error:
                return [*[None] * len(outputs), f"**Refused**: {described(error, upload_path)}"]
            return [*predictors.view.show(prediction, predictor.meta), summary_line(prediction, upload_path.name)]

        # One prediction at a time (Gradio's queue): the model, and its memory, are shared by every visitor.
        gr.on(
            [upload.change, button.click],
            run,
            inputs=[upload, *controls.values()],
            outputs=[*outputs, status],
            concurrency_limit=1,
        )
    return page


def serve_app(
    checkpoint: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    examples: Sequence[str] = (),
    device: str = "auto",
    backend: str | None = None,
    **settings: Any,
) -> None:
    """Serve the page of ``checkpoint`` on ``host:port`` until interrupted (``dla app``). ``settings`` replace the
    run's ``eval`` keys, as in ``dla predict``; ``examples`` are image files, folders or glob patterns offered on
    the page. Everything is checked (Gradio installed, images readable, the checkpoint loaded) before the server
    starts."""
    require_free_port(host, port)
    require_gradio()
    example_files = [path for path, _ in find_images(examples, recursive=False)] if examples else []
    for path in example_files:
        image_header(path)  # names a file that is not an image
    page = build_page(Predictors(checkpoint, device, backend, **settings), example_files)
    if host not in (DEFAULT_HOST, "localhost", "::1"):
        print(f"dla app: serving on {host}: the page and the model are open to every machine that reaches it")
    try:
        page.launch(
            server_name=host,
            server_port=port,
            share=False,
            inbrowser=False,
            ssr_mode=False,
            mcp_server=False,
            enable_monitoring=False,
            run_history=False,
            pwa=False,
            footer_links=[],
            css=CSS,
            max_file_size=MAX_UPLOAD,
        )
    except OSError as error:  # taken between the check and now
        raise DLAError(f"cannot serve on {host}:{port} ({error}); choose another --port or --host") from None


def require_free_port(host: str, port: int) -> None:
    """``DLAError`` when ``host:port`` cannot be listened on (in use, or not this machine's address), said before the
    checkpoint is loaded."""
    try:
        with socket.create_server((host, port), family=socket.getaddrinfo(host, port)[0][0]):
            pass
    except OSError as error:
        raise DLAError(f"cannot serve on {host}:{port} ({error.strerror or error}); choose another --port or --host") from None
