"""The use cases of the commands, over the training machinery (``dla.engine``) and the tasks (``dla.tasks``).

- ``evaluate``: ``evaluate_checkpoint`` (``dla eval``); ``predict``: ``predict_files`` (``dla predict``);
  ``predictor``: ``Predictor`` and ``Prediction`` (``dla.Predictor``, the Python side of ``dla predict``).
- ``export``: ``export_model`` (``dla export``: ONNX, or a folder to share); ``loading``: every saved model (a
  checkpoint, a shared folder, an ONNX export) read back in one place, for inference and export alike.
- ``demo`` (``dla demo``, with its packaged ``demo.yaml``), ``browse`` (``dla browse``), ``baselines``
  (``dla baseline``, ``dla pr-curve``).

Like the engine, nothing here names a task: what differs between tasks comes from ``dla.tasks``.
"""

from .evaluate import evaluate_checkpoint
from .export import export_model, save_pretrained
from .predict import predict_files
from .predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor", "evaluate_checkpoint", "export_model", "predict_files", "save_pretrained"]
