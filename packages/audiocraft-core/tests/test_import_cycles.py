"""No import cycle between the modules of audiocraft-core, counting imports inside functions too.

The optimizer / schedule / EMA builders used to live in ``solvers.builders``, which ``solvers.base`` and
``adversarial.builders`` imported lazily while ``solvers.builders`` imported them back; they are now owned by
``audiocraft.optim``. This test reads the import statements of every core module (``if TYPE_CHECKING:`` blocks
excepted) and fails on any cycle, then imports the formerly cyclic modules alone in fresh interpreters.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

CORE_SUBPACKAGES = ("adversarial", "losses", "optim", "solvers", "utils")


def _core_modules() -> dict[str, tuple[Path, bool]]:
    modules: dict[str, tuple[Path, bool]] = {}
    for sub in CORE_SUBPACKAGES:
        spec = importlib.util.find_spec(f"audiocraft.{sub}")
        assert spec is not None and spec.submodule_search_locations
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in root.rglob("*.py"):
            parts = ["audiocraft", sub, *path.relative_to(root).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    env_spec = importlib.util.find_spec("audiocraft.environment")
    assert env_spec is not None and env_spec.origin
    modules["audiocraft.environment"] = (Path(env_spec.origin), False)
    return modules


def _imported(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    package = name if is_package else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit_one(stmt)
            else:
                visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        visit(node)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    return cycles


def test_cycle_finder_sees_a_function_level_cycle(tmp_path):
    first, second = tmp_path / "first.py", tmp_path / "second.py"
    first.write_text("def f():\n    from pkg.second import g\n")
    second.write_text("from pkg import first\nif TYPE_CHECKING:\n    from pkg.first import f\n")
    known = {"pkg.first", "pkg.second"}
    graph = {
        "pkg.first": _imported("pkg.first", first, False, known),
        "pkg.second": _imported("pkg.second", second, False, known),
    }
    assert _cycles(graph) == [["pkg.first", "pkg.second", "pkg.first"]]


def test_core_modules_import_without_cycles():
    modules = _core_modules()
    assert {"audiocraft.optim.builders", "audiocraft.solvers.base", "audiocraft.adversarial.builders"} <= set(modules)
    graph = {name: _imported(name, path, is_package, set(modules)) for name, (path, is_package) in modules.items()}
    assert _cycles(graph) == []
    assert "audiocraft.solvers.builders" not in graph["audiocraft.adversarial.builders"]
    assert "audiocraft.solvers.builders" not in graph["audiocraft.solvers.base"]


@pytest.mark.parametrize(
    "module",
    [
        "audiocraft.solvers.builders",
        "audiocraft.solvers.base",
        "audiocraft.adversarial.builders",
        "audiocraft.optim",
        "audiocraft.losses.builders",
        "audiocraft.environment",
    ],
)
def test_module_imports_alone(module):
    code = (
        f"import sys, {module}\n"
        "assert 'audiocraft.solvers.builders' not in sys.modules or "
        f"{module!r} == 'audiocraft.solvers.builders', sorted(m for m in sys.modules if 'solvers' in m)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
