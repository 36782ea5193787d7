"""The package's imports run one way: no circle between stedi_assets' modules, and the lower
layers never reach up. io/ (storage) and transforms/ (pure frame functions) import neither
the engines, the assets, the AWS folder nor the definitions; engines/ never imports assets/.
Read with ast from the source (every import statement, also those inside functions), so a
lazy import cannot hide a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import stedi_assets

PACKAGE = Path(stedi_assets.__file__).parent
#: folder -> what it must never import
FORBIDDEN = {
    "io": ("engines", "assets", "aws", "definitions"),
    "transforms": ("engines", "assets", "aws", "definitions"),
    "engines": ("assets",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The stedi_assets modules `path` imports (`from pkg import mod` counts as pkg.mod)."""
    found = set()
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        else:
            continue
        found |= {n for n in names if n in modules and n != own}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) for name, path in paths.items()}


def test_no_import_circle():
    graph = import_graph()
    # a package's __init__ is imported with any of its modules: it is not an edge to follow
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_lower_layers_never_import_upwards():
    problems = []
    for name, imported in import_graph().items():
        parts = name.split(".")
        layer = parts[1] if len(parts) > 1 else ""
        for target in imported:
            target_layer = target.split(".")[1] if "." in target else ""
            if target_layer in FORBIDDEN.get(layer, ()):
                problems.append(f"{name} imports {target}")
    assert not problems, problems


def test_the_walk_sees_the_imports():
    graph = import_graph()
    assert "stedi_assets.engines.base" in graph["stedi_assets.engines.polars_engine"]
    assert "stedi_assets.transforms.polars" in graph["stedi_assets.engines.polars_engine"]
    assert "stedi_assets.engines.spark_engine" in graph["stedi_assets.deployments"]  # lazy one


def test_the_landing_cache_hashes_all_the_parsers_code():
    """The landing cache keys on the files of PARSER_CODE: the parser's files import no other
    stedi_assets module (io/s3.py only opens the files), so no parsing code escapes the hash."""
    from stedi_assets.engines.landing_cache import PARSER_CODE

    graph = import_graph()
    parser = {module_name(PACKAGE / name) for name in PARSER_CODE}
    assert parser <= set(graph), parser - set(graph)
    assert "stedi_assets.io.landing_reader" in parser
    assert "stedi_assets.io.landing_files" not in parser  # listing and stamps: the key's other half
    reached = {target for name in parser for target in graph[name]}
    assert reached - parser <= {"stedi_assets.io.s3"}, reached - parser
