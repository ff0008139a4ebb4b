"""The shape of the code: imports point one way (packages, and recon's rooms), there is
no import circle, every module stays within 400 lines, and listing methods imports no
torch. Imports are read from the source (every ``import`` statement, also those inside
functions), so a lazy import cannot hide an arrow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("physics", "masks", "recon", "pipelines")
MAX_LINES = 400

# recon's layers: a module may import modules of a lower layer, and of its own room.
RECON_LAYERS = {
    "recon.files": 0, "recon.metrics": 0,
    "recon.weights": 1,
    "recon.registry": 2,
    "recon.classical": 3, "recon.trust": 3, "recon.device": 3,
    "recon.models": 4,
    "recon.training": 5,
    "recon.api": 6,
    "recon.testing": 7, "recon": 7,
}
# pipelines' layers, the same way: its rooms and the modules on top of them.
PIPELINES_LAYERS = {
    "pipelines.common": 0,
    "pipelines.formats": 1,
    "pipelines.data": 2, "pipelines.config": 2,
    "pipelines.reports": 3,
    "pipelines.run": 4, "pipelines.batch": 4,
    "pipelines.cli": 5, "pipelines": 6,
}
ROOMS = {"recon": ("classical", "models", "training", "trust"),
         "pipelines": ("common", "formats", "data", "reports", "run", "batch", "cli")}
# The one arrow up across packages: the pytest plugin's fixtures read the built-in sample
# slices through pipelines.data.sample, imported inside the fixture.
ALLOWED_UPWARD = {("recon.testing", "pipelines.data.sample")}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (a ``from package import module`` counts as
    the module)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                targets.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
    return {target for target in targets if target in MODULES and target != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(name: str, layers: dict[str, int]) -> str:
    parts = name.split(".")
    for length in range(len(parts), 0, -1):
        if ".".join(parts[:length]) in layers:
            return ".".join(parts[:length])
    raise AssertionError(f"{name} is in no layer of its package's layers: add its room")


def test_packages_import_downwards_only():
    order = {"physics": 0, "masks": 0, "recon": 1, "pipelines": 2}
    wrong = []
    for source, targets in GRAPH.items():
        home = source.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if order[other] > order[home] or (order[home] == 0 and other != home):  # physics and masks: neither
                wrong.append((source, target))
    assert set(wrong) <= ALLOWED_UPWARD, sorted(set(wrong) - ALLOWED_UPWARD)


@pytest.mark.parametrize("package, layers", [("recon", RECON_LAYERS), ("pipelines", PIPELINES_LAYERS)])
def test_rooms_import_one_way(package, layers):
    wrong = []
    for source, targets in GRAPH.items():
        if source.split(".")[0] != package:
            continue
        room = _room(source, layers)
        for target in (t for t in targets if t.split(".")[0] == package):
            other = _room(target, layers)
            if other != room and layers[other] >= layers[room]:
                wrong.append(f"{source} -> {target}")
    assert not wrong, wrong


def test_no_import_circle():
    # Tarjan's strongly connected components: any component of two or more is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not circles, circles


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_stays_short(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines; split it by idea"


def test_every_room_says_its_job_in_one_line():
    for package, rooms in ROOMS.items():
        for room in rooms:
            doc = ast.get_docstring(ast.parse((ROOT / package / room / "__init__.py").read_text()))
            assert doc and "\n" not in doc.strip(), f"{package}.{room}"


def test_pipelines_keeps_only_configs_on_top():
    # every other module of pipelines/ lives in a room, so its path says what it is for
    loose = sorted(p.name for p in (ROOT / "pipelines").glob("*.py"))
    assert loose == ["__init__.py", "config.py"], loose


def test_listing_methods_imports_no_torch_and_no_model():
    code = ("import sys; from recon import registry; "
            "[(registry.info(n).description, registry.unavailable_reason(n)) for n in registry.registered()]; "
            "loaded = [m for m in sys.modules if m == 'torch' or m.startswith('recon.models')]; print(loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]", out
