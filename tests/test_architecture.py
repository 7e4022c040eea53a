"""The layering of ``sisrlib`` (docs/architecture.md), checked on the source with ``ast`` (nothing is
imported).

* no import cycle between sisrlib modules (imports under ``if TYPE_CHECKING:`` do not run and are left out);
* no ``sisrlib`` import inside a function body, except in ``sisrlib/commands/`` (lazy sub-command loading);
* ``sisrlib/metrics/`` imports from sisrlib only the core (errors, bands, degradation, params, atomic,
  safe_load, flow, linear_fit) and itself: tensors in, numbers out;
* no module over 500 lines;
* one atomic writer: ``os.replace`` / ``os.rename`` / ``Path.replace`` / ``Path.rename`` only in
  ``sisrlib/atomic.py``;
* the deployment path (predictors, inference, export, interop) and the Lightning-free run params and
  checkpoint reader import neither training nor experiments; training imports neither experiments nor
  commands;
* in general, a module imports only from its own layer or below (:data:`LAYERS`, as docs/architecture.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sisrlib"
MAX_LINES = 500
CORE = ("sisrlib.errors", "sisrlib.bands", "sisrlib.degradation", "sisrlib.params", "sisrlib.atomic")
CORE += ("sisrlib.safe_load", "sisrlib.flow", "sisrlib.linear_fit")

#: The layers of docs/architecture.md, bottom to top: a module may import only from its own layer or below.
#: Every module must belong to one (a new top-level module or package is placed here and in the docs).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("sisrlib", *CORE)),
    ("models, registration", ("sisrlib.models", "sisrlib.registration")),
    ("data", ("sisrlib.data",)),
    ("metrics", ("sisrlib.metrics",)),
    (
        "run params, checkpoint reader",
        ("sisrlib.run_params", "sisrlib.simulation_params", "sisrlib.checkpoint"),
    ),
    ("training", ("sisrlib.training",)),
    ("deployment", ("sisrlib.predictors", "sisrlib.export", "sisrlib.inference", "sisrlib.interop")),
    ("experiments, figures", ("sisrlib.experiments", "sisrlib.figures")),
    ("commands", ("sisrlib.commands", "sisrlib.pipeline", "sisrlib.cli")),
)


@dataclass(frozen=True)
class Import:
    """One ``sisrlib`` import of a module: the imported module, its line, whether it sits in a function body
    and whether it only runs for type checkers (``if TYPE_CHECKING:``)."""

    target: str
    line: int
    in_function: bool
    typing_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _rel(module: str) -> str:
    return str(_modules()[module].relative_to(ROOT))


def _resolve(name: str) -> str:
    """The sisrlib module ``name`` refers to: itself if it is a module, else the nearest enclosing one (for
    ``from sisrlib.x import attribute``)."""
    modules = _modules()
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [_resolve(a.name) for a in node.names if a.name.split(".")[0] == "sisrlib"]
    if node.level:  # relative: from its package
        package = module if is_package else module.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            package = package.rsplit(".", 1)[0]
        base = f"{package}.{node.module}" if node.module else package
    elif node.module and node.module.split(".")[0] == "sisrlib":
        base = node.module
    else:
        return []
    # ``from sisrlib.x import y``: y may be a module (sisrlib.x.y) or a name defined in sisrlib.x
    return [_resolve(f"{base}.{a.name}") for a in node.names]


@cache
def _imports(module: str) -> tuple[Import, ...]:
    path = _modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, typing_only: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in dict.fromkeys(_targets(node, module, path.name == "__init__.py")):
                found.append(Import(target, node.lineno, in_function, typing_only))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, typing_only)
            return
        inside = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inside, typing_only)

    visit(tree, False, False)
    return tuple(found)


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(sources: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{_rel(m)}:{imp.line} imports {imp.target}"
        for m in _modules()
        if _under(m, *sources)
        for imp in _imports(m)
        if _under(imp.target, *forbidden)
    ]


def _cycles() -> list[list[str]]:
    """Every strongly connected component of more than one module (or a module importing itself) of the
    runtime import graph, each as a list of modules (Tarjan)."""
    graph = {
        m: sorted({i.target for i in _imports(m) if not i.typing_only and i.target != m}) for m in _modules()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # recursive: the package has a few hundred modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in graph:
        if v not in index:
            strongconnect(v)
    return components


def _cycle_path(component: list[str]) -> str:
    """One concrete cycle inside a strongly connected component, ``a -> b -> ... -> a``, with the lines."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}
    current = start
    while True:
        nxt = sorted({i.target for i in _imports(current) if not i.typing_only and i.target in members})
        back = [n for n in nxt if n == start]
        if back and len(path) > 1:
            path.append(start)
            break
        unvisited = [n for n in nxt if n not in seen]
        if not unvisited:  # fall back to the closing module that comes back earliest
            target = next(n for n in nxt if n in seen)
            path.append(target)
            break
        current = unvisited[0]
        seen.add(current)
        path.append(current)
    return " -> ".join(path)


def _call_name(node: ast.Call) -> tuple[str | None, str | None]:
    """``(object name, attribute)`` of a call ``obj.attr(...)`` (object name None when not a plain name)."""
    if not isinstance(node.func, ast.Attribute):
        return None, None
    owner = node.func.value
    return (owner.id if isinstance(owner, ast.Name) else None), node.func.attr


def _renames(path: Path) -> Iterator[str]:
    """``os.replace``/``os.rename`` calls and one-argument ``.replace(x)``/``.rename(x)`` calls (Path's; a
    str.replace takes two arguments, pandas' rename keywords)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        owner, attr = _call_name(node)
        if attr not in ("replace", "rename"):
            continue
        if owner in ("os", "Path") or (len(node.args) == 1 and not node.keywords):
            yield f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}(...)"


# ------------------------------------------------------------------------------------------------------------


def test_the_walk_sees_the_package() -> None:
    modules = _modules()
    assert "sisrlib.params" in modules and "sisrlib.metrics" in modules
    assert any(i.target == "sisrlib.params" for m in modules for i in _imports(m))


def test_no_import_cycle() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles between sisrlib modules:\n" + "\n".join(
        f"  {_cycle_path(c)}   (modules involved: {', '.join(c)})" for c in cycles
    )


def _dynamic_imports(path: Path) -> Iterator[int]:
    """Lines of ``importlib.import_module("sisrlib…")`` / ``__import__("sisrlib…")`` calls (f-strings too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        first = node.args[0]
        if isinstance(first, ast.JoinedStr) and first.values:
            first = first.values[0]
        if (
            name in ("import_module", "__import__")
            and isinstance(first, ast.Constant)
            and str(first.value).startswith("sisrlib")
        ):
            yield node.lineno


def test_no_sisrlib_import_inside_a_function_outside_commands() -> None:
    hidden = [
        f"{_rel(m)}:{imp.line} imports {imp.target}"
        for m in _modules()
        if not _under(m, "sisrlib.commands")
        for imp in _imports(m)
        if imp.in_function and not imp.typing_only
    ]
    # the command line loads its sub-commands by name (sisrlib/cli.py); nothing else imports by name
    hidden += [
        f"{_rel(m)}:{line} imports a sisrlib module by name (importlib)"
        for m, path in _modules().items()
        if not _under(m, "sisrlib.commands", "sisrlib.cli")
        for line in _dynamic_imports(path)
    ]
    assert not hidden, (
        "sisrlib imports inside function bodies (move them to the top of the module; only "
        "sisrlib/commands/ loads lazily):\n  " + "\n  ".join(hidden)
    )


def test_metrics_import_only_the_core() -> None:
    allowed = (*CORE, "sisrlib.metrics")
    bad = [
        f"{_rel(m)}:{imp.line} imports {imp.target}"
        for m in _modules()
        if _under(m, "sisrlib.metrics")
        for imp in _imports(m)
        if not _under(imp.target, *allowed)
    ]
    assert not bad, f"sisrlib/metrics/ may import only {', '.join(allowed)}:\n  " + "\n  ".join(bad)


def test_no_module_over_500_lines() -> None:
    long = {
        _rel(m): n
        for m, p in _modules().items()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def test_one_atomic_writer() -> None:
    calls = [c for p in sorted(PACKAGE.rglob("*.py")) if p != PACKAGE / "atomic.py" for c in _renames(p)]
    assert not calls, "renames outside sisrlib/atomic.py (use sisrlib.atomic):\n  " + "\n  ".join(calls)


def test_deployment_and_run_params_do_not_import_training_or_experiments() -> None:
    deployment = (
        "sisrlib.predictors",
        "sisrlib.inference",
        "sisrlib.export",
        "sisrlib.interop",
        "sisrlib.checkpoint",
        "sisrlib.run_params",
    )
    deployment += tuple(m for m in _modules() if m.startswith("sisrlib.export_"))
    bad = _violations(deployment, ("sisrlib.training", "sisrlib.experiments"))
    assert not bad, "the deployment path imports training or experiments:\n  " + "\n  ".join(bad)


def test_training_imports_neither_experiments_nor_commands() -> None:
    bad = _violations(("sisrlib.training",), ("sisrlib.experiments", "sisrlib.commands", "sisrlib.pipeline"))
    assert not bad, "sisrlib/training/ imports experiments or commands:\n  " + "\n  ".join(bad)


def _layer(module: str) -> int | None:
    """Index in :data:`LAYERS` of a module (the longest matching prefix; ``sisrlib`` itself: core)."""
    best: tuple[int, int] | None = None
    for n, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "sisrlib" and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (n, len(prefix))
    return None if best is None else best[0]


def test_every_module_has_a_layer() -> None:
    missing = [_rel(m) for m in _modules() if _layer(m) is None]
    assert not missing, f"modules in no layer (add them to LAYERS and docs/architecture.md): {missing}"


def test_imports_go_down_the_layers() -> None:
    upward = []
    for m in _modules():
        here = _layer(m)
        for imp in _imports(m):
            there = _layer(imp.target)
            if here is not None and there is not None and there > here:
                upward.append(
                    f"{_rel(m)}:{imp.line} ({LAYERS[here][0]}) imports {imp.target} ({LAYERS[there][0]})"
                )
    assert not upward, "imports from a higher layer:\n  " + "\n  ".join(upward)


def test_interop_imports_only_up_to_the_checkpoint_reader() -> None:
    """The torchsisr importer builds on models, registration, data and the checkpoint reader (layers 0-4),
    so that predictors, export and inference can use it without a cycle."""
    bad = _violations(("sisrlib.interop",), ("sisrlib.predictors", "sisrlib.export", "sisrlib.inference"))
    assert not bad, "sisrlib/interop/ imports the deployment layer:\n  " + "\n  ".join(bad)


def test_the_training_package_imports_nothing() -> None:
    """``import sisrlib.training.x`` must not load Lightning through the package's ``__init__``."""
    assert not _imports("sisrlib.training"), (
        f"{_rel('sisrlib.training')} imports {_imports('sisrlib.training')}"
    )
