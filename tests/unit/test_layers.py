"""The house rule, held by a test: imports run one way.

    pipeline.core  <-  generators/, validators/  <-  pipeline steps  <-  flows/
    pipeline.core  <-  read API (pipeline.consume, pipeline.torch_dataset)

Every import of every module is read from its source (module level and inside
functions alike); an arrow against the direction fails with the file and line.
Prefect stays in flows/, SDV in the SDV-backed generator modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "generators", "validators", "flows")
READ_API = {"pipeline.consume", "pipeline.torch_dataset"}
SDV_MODULES = {"generators.sdv_base", "generators.tabular.sdv", "generators.timeseries.par"}
SDV_PACKAGES = {"sdv", "ctgan", "rdt", "copulas", "deepecho"}

# layer -> the layers it may import from
ALLOWED = {
    "core": {"core"},
    "generators": {"core", "generators"},
    "validators": {"core", "validators"},
    "read": {"core", "read"},
    "steps": {"core", "generators", "validators", "steps"},
    "flows": {"core", "generators", "validators", "steps", "read", "flows"},
}


def layer(module: str) -> str:
    if module == "pipeline.core" or module.startswith("pipeline.core."):
        return "core"
    if module in READ_API:
        return "read"
    top = module.split(".")[0]
    return "steps" if top == "pipeline" else top


def imports(source: str) -> list[tuple[str, int]]:
    """(imported module, line) for every absolute import in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, node.lineno)]
            # `from pipeline import jobs` imports the module pipeline.jobs
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
    return found


def resolves(name: str) -> bool:
    """Whether `name` is one of our modules or packages (not a name inside one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(module: str, source: str) -> list[str]:
    """Every import of `module` (whose code is `source`) that breaks the rules."""
    out = []
    mine = layer(module)
    for name, line in imports(source):
        top = name.split(".")[0]
        if top == "prefect" and mine != "flows":
            out.append(f"{module}:{line} imports Prefect outside flows/")
        if top in SDV_PACKAGES and module not in SDV_MODULES:
            out.append(f"{module}:{line} imports {top} outside the SDV-backed generator modules")
        if top in PACKAGES and resolves(name) and name != top and layer(name) not in ALLOWED[mine]:
            out.append(f"{module}:{line} ({mine}) imports {name} ({layer(name)})")
        if name == top and top in PACKAGES and layer(f"{top}.x") not in ALLOWED[mine] and top != "pipeline":
            out.append(f"{module}:{line} ({mine}) imports the {top} package")
    return out


def our_modules() -> list[tuple[str, Path]]:
    modules = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules.append((name, path))
    return modules


def test_every_module_imports_in_the_one_direction():
    found = [v for name, path in our_modules() for v in violations(name, path.read_text())]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("module", "code", "expected"),
    [
        ("pipeline.core.spec", "from generators import registry", "imports the generators package"),
        ("pipeline.core.data", "from pipeline.sink import write_part", "(core) imports pipeline.sink (steps)"),
        ("generators.base", "from validators.gate import validate_run", "(generators) imports validators.gate"),
        ("validators.gate", "def f():\n    from pipeline.split import split_source", "(validators) imports pipeline.split"),
        ("pipeline.consume", "from pipeline import publish", "(read) imports pipeline.publish (steps)"),
        ("pipeline.split", "import prefect", "imports Prefect outside flows/"),
        ("validators.report", "from sdv.metadata import Metadata", "imports sdv outside"),
    ],
)
def test_an_arrow_against_the_direction_is_caught(module, code, expected):
    assert any(expected in v for v in violations(module, code)), violations(module, code)


def test_allowed_arrows_pass():
    assert violations("flows.synthesize", "from pipeline import jobs\nfrom validators.gate import validate_run") == []
    assert violations("pipeline.fitting", "from generators import get") == []
    assert violations("generators.base", "from pipeline.core.plan import Chunk") == []
    assert violations("pipeline.consume", "from pipeline.torch_dataset import Encoding") == []
