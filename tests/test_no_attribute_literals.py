"""No attribute or event name is spelled as a string literal outside generated code (DESIGN §4).

Code imports the names from `spanhouse.semconv`; foreign names live in the mapping data under
semconv/mappings/. The scan covers src/spanhouse and processors/, minus the generated module.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from spanhouse.semconv import attributes

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "src" / "spanhouse" / "semconv" / "attributes.py"
SUSPECT = re.compile(r"(gen_ai|spanhouse)\.[a-z]")
# spanhouse.* strings that are not attributes: the entry-point group components register in (DESIGN §3).
NOT_ATTRIBUTES = {"spanhouse.components"}

REGISTRY_NAMES = set(attributes.ATTRIBUTE_TYPES) | {
    value for name, value in vars(attributes).items() if name.startswith("EVENT_")
}


def subpackages(root: Path = ROOT) -> set[str]:
    """Names that make `spanhouse.<name>` a module path: directories and modules under src/spanhouse,
    `processors`, and the packages pyproject.toml maps in (such as spanhouse.ddl)."""
    package = root / "src" / "spanhouse"
    names = {p.name for p in package.iterdir() if p.is_dir() and not p.name.startswith("_")}
    names |= {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")} | {"processors"}
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject.get("tool", {}).get("setuptools", {}).get("packages", [])
    return names | {p.split(".")[1] for p in packages if p.startswith("spanhouse.")}


def is_module_path(literal: str, modules: set[str]) -> bool:
    parts = literal.split(".")
    return parts[0] == "spanhouse" and len(parts) > 1 and parts[1] in modules


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are module, class or function docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def find_attribute_literals(roots: list[Path], names: set[str], modules: set[str]) -> list[str]:
    """`path:line: 'literal'` for every string literal that spells an attribute or event name."""
    offenders = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if path.resolve() == GENERATED:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            skip = docstrings(tree)
            found = []
            for node in ast.walk(tree):
                if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in skip:
                    continue
                value = node.value
                looks_like_one = SUSPECT.match(value) and not is_module_path(value, modules)
                if value in names or (looks_like_one and value not in NOT_ATTRIBUTES):
                    found.append((node.lineno, node.col_offset, f"{path}:{node.lineno}: {value!r}"))
            offenders += [line for *_, line in sorted(found)]
    return offenders


def test_tree_has_no_attribute_literals():
    offenders = find_attribute_literals([ROOT / "src" / "spanhouse", ROOT / "processors"], REGISTRY_NAMES,
                                        subpackages())
    for line in offenders:
        print(line)
    assert not offenders, "use the constants from spanhouse.semconv instead of:\n" + "\n".join(offenders)


def test_scanner_flags_literals(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(
        '"""Reads gen_ai.request.model from spans."""\n'
        'MODEL = "gen_ai.request.model"\n'
        'def cost(span):\n'
        '    """spanhouse.cost.usd is set here."""\n'
        '    return span.get("spanhouse.cost.not_in_registry")\n'
        'LOGGER = "spanhouse.receivers.otlp"\n'
        'GROUP = "spanhouse.components"\n'
        'RENDERED = f"gen_ai.prompt.{0}.content"\n'
        'EVENT = "gen_ai.evaluation.result"\n'
        'OTHER = "gen_ai"\n'
    )
    offenders = find_attribute_literals([tmp_path], REGISTRY_NAMES, {"receivers"})
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in offenders] == ["2", "5", "8", "9"]
    assert offenders[0] == f"{tmp_path / 'pkg' / 'bad.py'}:2: 'gen_ai.request.model'"


def test_attribute_namespaces_do_not_look_like_module_paths():
    # A spanhouse.<x>.* attribute whose <x> is a subpackage would escape the prefix rule above.
    modules = subpackages()
    assert {"cli", "semconv", "receivers", "processors", "ddl"} <= modules
    assert not [k for k in REGISTRY_NAMES if is_module_path(k, modules)]
