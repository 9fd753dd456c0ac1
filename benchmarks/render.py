"""BENCHMARKS.md and the printed table, from run_all's result (sections as their JSON form)."""

from dataclasses import asdict

from measure import Section


def markdown(result):
    m, s = result["machine"], result["sample"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python benchmarks/run.py --turns {s['turns']}` on {result['generated']}; every "
        "figure below comes from that one run, but in a section that says it was measured on its own "
        "(`benchmarks/scrape.py` and `benchmarks/bigturn.py` write theirs into this file). Rerun it to "
        "refresh this file.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gb']} GB; {m['os']}",
        f"- Python {m['python']}, SQLite {m['sqlite']}, Datasette {m['datasette']}, "
        f"datasette-runtime-truth {m['plugin']}" + (f" (commit {m['commit']})" if m["commit"] else ""),
        f"- load average when the run started: {', '.join(map(str, m['load_average_at_start']))}",
        "",
        "## Sample",
        "",
        f"A pre-cutover `turns.db` from `sample.build(turns={s['turns']}, seed={s['seed']})`: "
        f"{s['turns']:,} turns in {s['conversations']:,} conversations, {s['snapshots']:,} phase "
        f"snapshots, {s['blocks']:,} blocks, {s['turns_db_mb']:,} MB ("
        + (f"built in {s['build_s']} s" if s["build_s"] is not None else "kept in --workdir from an earlier run")
        + "). "
        "Each measurement runs on a fresh copy of that file."
        + (f" Migration batch size: {result['batch_size']}." if result["batch_size"] else ""),
        "",
        "## Targets",
        "",
        "| section | met |",
        "| --- | --- |",
    ]
    for section in result["sections"]:
        lines.append(f"| {section['title']} | {verdict(section['met']) or 'no target (information)'} |")
    lines.append("")
    for section in result["sections"]:
        lines += _section_lines(section)
    return "\n".join(lines)


def section_markdown(section):
    """One section as BENCHMARKS.md shows it, from a Section or its JSON form."""
    return "\n".join(_section_lines(section)) + "\n"


def _section_lines(section):
    if isinstance(section, Section):
        section = {"title": section.title, "rows": [asdict(row) for row in section.rows], "notes": section.notes}
    lines = [f"## {section['title']}", "", "| measure | value | target | met |", "| --- | --- | --- | --- |"]
    for row in section["rows"]:
        lines.append(f"| {row['measure']} | {row['value']} | {row['target']} | {verdict(row['met'])} |")
    lines.append("")
    lines += [f"- {note}" for note in section["notes"]]
    lines.append("")
    return lines


def verdict(met):
    return {True: "yes", False: "**no**", None: ""}[met]


def text_table(result):
    lines = []
    for section in result["sections"]:
        lines.append(f"{section['title']}: {verdict(section['met']) or '-'}".replace("**", ""))
        width = max(len(row["measure"]) for row in section["rows"])
        for row in section["rows"]:
            target = f"  (target {row['target']}: {verdict(row['met'])})".replace("**", "") if row["target"] else ""
            lines.append(f"  {row['measure']:<{width}}  {row['value']}{target}")
    return "\n".join(lines)
