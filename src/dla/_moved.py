"""Old import paths of the modules that moved in 0.2 (issue 26), kept working for one release with a
``DeprecationWarning`` that names the new path: ``import dla.commands.predictor`` still gives the module that is now
``dla.commands.predictor``. ``dla/__init__.py`` installs the finder; CHANGELOG.md lists the moves."""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

MOVED = {  # old module: new module
    "dla.configs": "dla.commands.demo",
    "dla.engine.baselines": "dla.commands.baselines",
    "dla.engine.browse": "dla.commands.browse",
    "dla.engine.config": "dla.engine.config_loader",
    "dla.engine.demo": "dla.commands.demo",
    "dla.engine.evaluate": "dla.commands.evaluate",
    "dla.engine.export": "dla.commands.export",
    "dla.engine.inference": "dla.commands.loading",
    "dla.engine.predict": "dla.commands.predict",
    "dla.engine.predictor": "dla.commands.predictor",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of ``MOVED`` (after every other finder has not) and loads them as their new modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old name goes in the next release", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new name already."""


def install() -> None:
    """Add the finder to ``sys.meta_path`` once, last."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
