"""The house rules of CONTRIBUTING.md that a test can hold (issue 26): no module outside ``dla/tasks`` names a task,
nothing imports the ``dla`` package itself from inside it, and the names that moved in 0.2 still import from their
old paths for one release, with a ``DeprecationWarning`` that names the new path."""

import importlib
import re
import sys
from pathlib import Path

import pytest

import dla
from dla import _moved
from dla.tasks import segment_image

SRC = Path(dla.__file__).parent
# the before-stop hook's pattern: a task module imported by name, or a task's name compared with
TASK_NAMED = re.compile(
    r"from (\.\.?|dla\.)tasks\.(segmentation|classification|boundaries|detection)"
    r"|task\s*[!=]=\s*[\"'](segmentation|classification|boundaries|detection)"
)


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_module_outside_the_tasks_names_a_task():
    named = [
        f"{path.relative_to(SRC)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in modules()
        if path.relative_to(SRC).parts[0] != "tasks"
        for text in [path.read_text()]
        for m in TASK_NAMED.finditer(text)
    ]
    assert named == []


def test_nothing_imports_the_package_itself_for_its_version():
    upward = re.compile(r"^\s*from (\.+) import (__version__|\w+)", re.M)
    found = []
    for path in modules():
        depth = len(path.relative_to(SRC).parts) - 1  # the dots that reach dla/ from here
        for match in upward.finditer(path.read_text()):
            if len(match[1]) > depth and match[2] == "__version__":
                found.append(str(path.relative_to(SRC)))
    assert found == []


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_a_moved_module_imports_from_its_old_path_with_a_warning(old):
    new = importlib.import_module(_moved.MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {_moved.MOVED[old]}"):
        module = importlib.import_module(old)
    assert module is new


@pytest.mark.parametrize(
    ("old", "name", "new"),
    [
        ("dla.engine", "evaluate_checkpoint", "dla.commands.evaluate"),
        ("dla.engine", "predict_files", "dla.commands.predict"),
        ("dla.tasks", "predict", "dla.tasks.segmentation"),
        ("dla.tasks.segmentation", "predict", "dla.tasks.segmentation"),
    ],
)
def test_a_moved_name_imports_from_its_old_place_with_a_warning(old, name, new):
    with pytest.warns(DeprecationWarning):
        found = getattr(importlib.import_module(old), name)
    expected = segment_image if name == "predict" else getattr(importlib.import_module(new), name)
    assert found is expected


def test_the_old_names_of_the_package_are_gone_from_the_new_places():
    with pytest.raises(AttributeError):
        dla.tasks.no_such_name  # noqa: B018
    assert "predict" not in dla.tasks.__all__ and "task_of" not in dir(importlib.import_module("dla.engine.config_loader"))
