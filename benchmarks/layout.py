"""Measure the package's layout: modules per package, imports against the layer order, the longest functions and
the training loop's length (issue 26's before/after figures in CHANGELOG.md).

    python benchmarks/layout.py [SRC]        # SRC defaults to src/dla of this checkout

The layer order is CONTRIBUTING.md's (imports point down the list). A module's layer is its first path part below
``dla`` (a package or a top-level module); an import counts as "upward" when it names a module of a higher layer,
or the ``dla`` package itself (``from .. import __version__``). Lines are counted as ``ruff format`` leaves them.
"""

import ast
import re
import sys
from collections import Counter
from pathlib import Path

# Top to bottom; modules of one entry may import each other. Unknown top-level modules are reported, not guessed.
LAYERS = (
    ("cli", "__main__"),
    ("app",),
    ("commands",),
    ("bench", "model_facts"),
    ("engine",),
    ("tasks",),
    ("inference",),
    ("losses", "metrics"),
    ("distributed",),
    ("data",),
    ("models", "complexity"),
    ("aggregation",),
    ("layers",),
    ("config", "configs", "constants", "errors", "_version", "__init__"),
)
TASK_NAMED = re.compile(
    r"from (\.\.?|dla\.)tasks\.(segmentation|classification|boundaries|detection)"
    r"|task\s*[!=]=\s*[\"'](segmentation|classification|boundaries|detection)"
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path, root: Path) -> list[str]:
    """``engine/trainer.py`` -> ``["engine", "trainer"]``; a package's ``__init__`` is the package itself."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts


def imported(node: ast.ImportFrom | ast.Import, here: list[str], is_package: bool) -> list[list[str]]:
    """The ``dla`` modules an import statement names, as path parts below ``dla`` (``[]`` is ``dla`` itself)."""
    if isinstance(node, ast.Import):
        return [name.name.split(".")[1:] for name in node.names if name.name.split(".")[0] == "dla"]
    if node.level == 0:
        if node.module is None or node.module.split(".")[0] != "dla":
            return []
        return [node.module.split(".")[1:]]
    package = here if is_package else here[:-1]
    base = package[: len(package) - (node.level - 1)]
    if node.module:
        return [base + node.module.split(".")]
    return [base + [name.name] for name in node.names]  # ``from .. import x``: a module x, or a name of the package


def functions(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """``(lines, qualified name)`` of every function and method."""
    found = []
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                owner = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
                found.append((child.end_lineno - child.lineno + 1, f"{module}:{owner}{child.name}"))
    return found


def is_module(root: Path, parts: list[str]) -> bool:
    return (root.joinpath(*parts).with_suffix(".py")).is_file() or (root.joinpath(*parts) / "__init__.py").is_file()


def measure(root: Path) -> None:
    modules, upward, private, named, sizes, unknown = Counter(), [], [], [], [], set()
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root)
        in_package = len(path.relative_to(root).parts) > 1
        modules[path.relative_to(root).parts[0] if in_package else "(top level)"] += 1
        text = path.read_text()
        if here[0] != "tasks":
            lines = [text[: m.start()].count("\n") + 1 for m in TASK_NAMED.finditer(text)]
            named += [f"{'/'.join(path.relative_to(root).parts)}:{line}" for line in lines]
        tree = ast.parse(text)
        sizes += functions(tree, "/".join(path.relative_to(root).parts))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in imported(node, here, path.name == "__init__.py"):
                while target and not is_module(root, target):  # a name inside a module: the module
                    target = target[:-1]
                where = f"{'/'.join(path.relative_to(root).parts)}:{node.lineno} -> dla.{'.'.join(target)}"
                if len(target) > 1 and target[-1].startswith("_") and target[0] != here[0]:
                    private.append(where)
                source, goal = here[0], (target[0] if target else "__init__")
                if source == goal and target:
                    continue
                if source not in RANK or goal not in RANK:
                    unknown.update(name for name in (source, goal) if name not in RANK)
                    continue
                if RANK[goal] < RANK[source] or (not target and source != "__init__"):
                    upward.append(where)
    print("modules per package:", ", ".join(f"{name} {count}" for name, count in sorted(modules.items())))
    print(f"imports against the layer order: {len(upward)}")
    for line in upward:
        print(f"  {line}")
    print(f"imports of another package's private module: {len(private)}")
    for line in private:
        print(f"  {line}")
    print(f"tasks named outside dla/tasks: {len(named)}" + (f" ({', '.join(named)})" if named else ""))
    print("longest functions:", ", ".join(f"{name} ({lines})" for lines, name in sorted(sizes, reverse=True)[:5]))
    trainer = root / "engine" / "trainer.py"
    print(f"engine/trainer.py: {len(trainer.read_text().splitlines())} lines")
    if unknown:
        print(f"modules in no layer: {', '.join(sorted(unknown))}")


if __name__ == "__main__":
    measure(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src" / "dla")
