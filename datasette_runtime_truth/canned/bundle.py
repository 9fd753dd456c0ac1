"""Generate the no-plugin bundle from canned/queries.py: metadata.yml (Datasette 0.65), datasette.yaml (1.0)
and the query-page templates, into the directory it is given.

    datasette runtime-truth bundle DIR          # write DIR/metadata.yml, DIR/datasette.yaml, DIR/templates/
    datasette runtime-truth bundle DIR --check  # exit 1 when a file there is missing or stale

The plugin's own copies of the per-query templates, in the package's ``templates/``, come from the
same source; a developer who changes queries.py regenerates them with
``python -m datasette_runtime_truth.canned.bundle`` (``--check`` to verify), which writes only there.
Pages are named for a database called ``turns`` (the upstream file name, turns.db), as Datasette
looks them up.
"""

import argparse
from pathlib import Path
import re
import sys
from typing import Optional, Union

import markupsafe
import yaml

from . import queries

DATABASE = "turns"
PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"
BASE_TEMPLATES = ("_runtime_truth_query.html", "_runtime_truth_history.html")
# Every file the bundle writes says so in its first line, which tells its own files (replaced
# freely) from an operator's (replaced only with --force).
MARK = "(see bundle.py)"
HEADER = f"Generated from datasette_runtime_truth/canned/queries.py {MARK}: edit that and regenerate, not this file."


Files = dict[Path, str]


def query_template_name(query: queries.Query, database: str = DATABASE) -> str:
    return f"query-{database}-{query.name}.html"


def query_template(query: queries.Query) -> str:
    """The page template of one query: the hand-written base plus the query's own explanation."""
    base = "_runtime_truth_history.html" if query.name == "runtime_history" else "_runtime_truth_query.html"
    return (
        f"{{# {HEADER} #}}\n"
        f'{{% extends "{base}" %}}\n'
        "{% block runtime_truth_about %}\n"
        f'<p class="runtime-truth-meaning">{_html(query.meaning)}</p>\n'
        f'<p class="runtime-truth-good-answer"><strong>A good answer:</strong> {_html(query.good_answer)}</p>\n'
        "{% endblock %}\n"
        + _keyset_block(query)
    )


def _keyset_block(query: queries.Query) -> str:
    """The next page's parameters and the columns of the last row they take, for the base
    template's next link: ``after_conv=conv_id ...``."""
    if not query.keyset:
        return ""
    pairs = " ".join(f"{parameter}={column}" for parameter, column in query.keyset)
    return f"{{% block runtime_truth_keyset %}}{pairs}{{% endblock %}}\n"


def config_file(for_datasette: str) -> str:
    """metadata.yml (``"0.65"``) or datasette.yaml (``"1.0"``): the same queries, one database."""
    command = {
        "0.65": "datasette turns.db -m metadata.yml --template-dir templates",
        "1.0": "datasette turns.db -c datasette.yaml --template-dir templates",
    }[for_datasette]
    body = {"databases": {DATABASE: {"queries": queries.as_config()}}}
    return (
        f"# {HEADER}\n"
        f"# The runtime-truth canned queries without the plugin, on Datasette {for_datasette}:\n"
        f"#   {command}\n"
        + yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    )


def bundle_files(directory: Union[str, Path]) -> Files:
    """The no-plugin bundle in ``directory``: path -> content."""
    directory = Path(directory)
    files = {
        directory / "metadata.yml": config_file("0.65"),
        directory / "datasette.yaml": config_file("1.0"),
    }
    for query in queries.QUERIES:
        files[directory / "templates" / query_template_name(query)] = query_template(query)
    for name in BASE_TEMPLATES:
        files[directory / "templates" / name] = (
            f"{{# Copied from datasette_runtime_truth/templates/{name} {MARK}: edit that and "
            f"regenerate, not this file. #}}\n" + (PACKAGE_TEMPLATES / name).read_text())
    return files


def package_files() -> Files:
    """The plugin's own per-query templates, in the package: path -> content."""
    return {PACKAGE_TEMPLATES / query_template_name(query): query_template(query) for query in queries.QUERIES}


def stale_files(files: Files) -> list[str]:
    """The paths of ``files`` that are missing or differ from their content."""
    return sorted(str(path) for path, content in files.items() if not _holds(path, content))


def _holds(path: Path, content: str) -> bool:
    try:
        return path.is_file() and path.read_text() == content
    except (OSError, UnicodeDecodeError):
        return False


def conflict(files: Files, force: bool = False) -> Optional[str]:
    """Why ``files`` cannot be written, checked before any is: a path below a file, a path that
    is a directory, or (without ``force``) a file there the bundle did not write, such as an
    operator's own metadata.yml with its ``allow`` blocks, or a symbolic link, which would be
    written through (a dangling one creates its target, outside DIRECTORY). None when they can."""
    for path in files:
        blocker = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is not a directory; nothing was written"
        if path.is_dir():
            return f"{path} is a directory; nothing was written"
        if not force and path.is_symlink() and not _holds(path, files[path]):
            return (f"{path} is a symbolic link (use --force to replace the link itself); nothing "
                    "was written")
        if not force and path.exists() and not _written_by_bundle(path):
            return (f"{path} already exists and was not written by this command (use --force to "
                    "replace it); nothing was written")
    return None


def _written_by_bundle(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return MARK in file.readline()
    except OSError:
        return False


def write(files: Files) -> list[str]:
    """Write each of ``files`` that is missing or differs; return their paths."""
    written = []
    for path, content in files.items():
        if _holds(path, content):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()  # --force replaces the link, never the file it points to
        path.write_text(content)
        written.append(str(path))
    return written


def _html(text: str) -> str:
    """Escape text and show `code` spans as <code>."""
    escaped = str(markupsafe.escape(text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def main(argv: Optional[list[str]] = None) -> int:
    """Regenerate (or ``--check``) the plugin's own templates in the package source."""
    parser = argparse.ArgumentParser(prog="python -m datasette_runtime_truth.canned.bundle",
                                     description="Regenerate the plugin's own query templates from queries.py.")
    parser.add_argument("--check", action="store_true", help="Exit 1 when a generated file is stale.")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(package_files())
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in write(package_files()):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
