"""The declared dependencies are exactly what the package imports (plus a short, explained list
of what it runs or what its dependencies load by name)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from testkit import REPO

# Declared, never imported by src/, and why
NOT_IMPORTED = {
    "snakemake": "the engine: run as `python -m snakemake` by watch and demo, imported by rules",
    "torchvision": "ultralytics imports it (its NMS); pinned beside torch",
    "yt-dlp-ejs": "yt-dlp loads its YouTube challenge scripts by name",
}
# Imported, optional: an extra provides them and the import is guarded (distribution -> extra);
# such a module may be missing here (make setup installs imageio-ffmpeg only without ffmpeg)
OPTIONAL = {"imageio-ffmpeg": "ffmpeg"}
OPTIONAL_MODULES = {"imageio_ffmpeg": "imageio-ffmpeg"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _imported_distributions() -> dict[str, set[str]]:
    """Distribution name -> modules of src/framesift that import it (at any depth)."""
    modules: dict[str, set[str]] = {}
    for path in (REPO / "src" / "framesift").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                modules.setdefault(name.split(".")[0], set()).add(path.name)
    owners = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for module, files in modules.items():
        if module in sys.stdlib_module_names or module == "framesift":
            continue
        if module in OPTIONAL_MODULES and module not in owners:
            owners[module] = [OPTIONAL_MODULES[module]]
        assert module in owners, f"{module} (imported by {sorted(files)}) is not installed"
        for distribution in owners[module]:
            found.setdefault(distribution.lower().replace("_", "-"), set()).update(files)
    return found


def test_every_import_is_declared_and_every_dependency_imported() -> None:
    project = _project()
    declared = {_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_name(r) for r in requirements}
        for extra, requirements in project["optional-dependencies"].items()
    }
    imported = _imported_distributions()
    undeclared = {
        dist: sorted(files)
        for dist, files in imported.items()
        if dist not in declared and dist not in OPTIONAL
    }
    assert not undeclared, f"imported but not in [project].dependencies: {undeclared}"
    unused = declared - set(imported) - set(NOT_IMPORTED)
    assert not unused, f"declared but never imported by src/ (and not explained): {unused}"
    for dist, extra in OPTIONAL.items():
        assert dist in extras[extra], f"{dist} belongs in the {extra!r} extra"
    assert set(NOT_IMPORTED) <= declared, "the explained list names only declared dependencies"


def test_the_rules_conda_environment_pins_what_pyproject_declares() -> None:
    """workflow/envs/framesift.yaml (for --software-deployment-method conda) asks pip for the
    same requirements, with the same bounds, as pyproject.toml."""
    import yaml

    env = yaml.safe_load((REPO / "workflow" / "envs" / "framesift.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    declared = set(_project()["dependencies"])
    assert set(pip) <= declared, f"not in pyproject.toml as written there: {set(pip) - declared}"
