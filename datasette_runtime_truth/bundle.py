"""Generate the no-plugin bundle from queries.py: metadata.yml (Datasette 0.65), datasette.yaml (1.0)
and the query-page templates.

    python -m datasette_runtime_truth.bundle          # rewrite the files in this checkout
    python -m datasette_runtime_truth.bundle --check  # exit 1 when a committed file is stale

The per-query templates are generated into both the package's ``templates/`` (used when the plugin
is installed) and the top-level ``templates/`` (``--template-dir templates`` without the plugin),
together with copies of the two hand-written templates they extend. Pages are named for a database
called ``turns`` (the upstream file name, turns.db), as Datasette looks them up.
"""

import argparse
from pathlib import Path
import re
import sys

import markupsafe
import yaml

from . import queries

DATABASE = "turns"
PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
ROOT = Path(__file__).parent.parent
BASE_TEMPLATES = ("_runtime_truth_query.html", "_runtime_truth_history.html")
HEADER = "Generated from datasette_runtime_truth/queries.py by `python -m datasette_runtime_truth.bundle`: edit that, not this file."


def query_template_name(query, database=DATABASE):
    return f"query-{database}-{query.name}.html"


def query_template(query):
    """The page template of one query: the hand-written base plus the query's own explanation."""
    base = "_runtime_truth_history.html" if query.name == "runtime_history" else "_runtime_truth_query.html"
    return (
        f"{{# {HEADER} #}}\n"
        f'{{% extends "{base}" %}}\n'
        "{% block runtime_truth_about %}\n"
        f'<p class="runtime-truth-meaning">{_html(query.meaning)}</p>\n'
        f'<p class="runtime-truth-good-answer"><strong>A good answer:</strong> {_html(query.good_answer)}</p>\n'
        "{% endblock %}\n"
    )


def config_file(for_datasette):
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


def expected_files(root=ROOT):
    """Every generated file: path -> content."""
    root = Path(root)
    files = {
        root / "metadata.yml": config_file("0.65"),
        root / "datasette.yaml": config_file("1.0"),
    }
    for query in queries.QUERIES:
        content = query_template(query)
        files[PACKAGE_TEMPLATES / query_template_name(query)] = content
        files[root / "templates" / query_template_name(query)] = content
    for name in BASE_TEMPLATES:
        files[root / "templates" / name] = (PACKAGE_TEMPLATES / name).read_text()
    return files


def stale_files(root=ROOT):
    """The generated files that are missing or differ from what queries.py gives."""
    return sorted(
        str(path) for path, content in expected_files(root).items()
        if not path.exists() or path.read_text() != content
    )


def write(root=ROOT):
    written = []
    for path, content in expected_files(root).items():
        if path.exists() and path.read_text() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(str(path))
    return written


def _html(text):
    """Escape text and show `code` spans as <code>."""
    escaped = str(markupsafe.escape(text))
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m datasette_runtime_truth.bundle",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Exit 1 when a generated file is stale.")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        if stale:
            print("run: python -m datasette_runtime_truth.bundle", file=sys.stderr)
        return 1 if stale else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
