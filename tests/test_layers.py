"""The package's folders are its layers: upstream/ is pure (what the Go code does), storage/ and
migration/ build on it, report/ and web/ on all of them. Held by reading each module's imports."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "datasette_runtime_truth"
# What each layer may import of the package, besides itself; the top level (config, times) is
# shared by every layer but upstream/.
MAY_IMPORT = {
    "upstream": set(),
    "storage": {"upstream", "top"},
    "migration": {"upstream", "storage", "top"},
    "report": {"upstream", "storage", "canned", "top"},
}


def imports(path):
    """(layer of the package, or the top-level module name outside it) for each import of ``path``."""
    own = path.relative_to(PACKAGE).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(own[:len(own) - (node.level - 1)])
            parts = base + (node.module.split(".") if node.module else [])
            yield parts[0] if parts and (PACKAGE / parts[0]).is_dir() else "top"
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]
        elif isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_a_layer_imports_only_the_layers_below_it(layer):
    layers = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()} | {"top"}
    for path in sorted((PACKAGE / layer).glob("*.py")):
        used = set(imports(path))
        assert used & layers - {layer} <= MAY_IMPORT[layer], path.name
        if layer == "upstream":
            assert not {"datasette", "datasette_runtime_truth"} & used, path.name


def test_importing_the_package_first_registers_every_hook():
    """The package imported before Datasette has loaded its plugins (as a test or a script does)
    must not make Datasette register it half-imported: nothing it imports at module level may
    import datasette.plugins, which loads every plugin."""
    program = ("import datasette_runtime_truth\n"
               "from datasette.plugins import pm\n"
               "print(sorted(impl.plugin_name for impl in pm.hook.register_routes.get_hookimpls()))")
    printed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    assert "runtime_truth" in printed
