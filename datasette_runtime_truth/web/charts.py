"""Server-rendered SVG charts: backfill coverage per UTC day, and one conversation's runtime timeline.

Plain strings of SVG with presentation attributes only, so they need no stylesheet, no script and
no network; ``viewBox`` plus ``width="100%"`` lets them shrink to a phone's width. Every mark
carries ``data-*`` attributes and a ``<title>`` tooltip, so what a person sees can also be read
back by a test.
"""

import colorsys
import datetime
import hashlib
import sqlite3
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from markupsafe import Markup, escape

from .. import times
from ..canned import queries
from ..report import checks

RUNTIME_COLOUR = "#0072B2"
INFERENCE_COLOUR = "#D55E00"
UNKNOWN_COLOUR = "#b0b0b0"
# Okabe-Ito (safe for the common colour-vision deficiencies) and darker companions; a runtime_key's
# colour is picked by a hash of the key, so it is the same in every chart on every page.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D31", "#000000",
           "#6A3D9A", "#1B7837", "#B2182B", "#2166AC")
FONT = 'font-family="system-ui, sans-serif" font-size="11" fill="#333"'
LABEL_FONT = 'font-family="system-ui, sans-serif" font-size="12" fill="#222"'
LABEL_CHAR_W = 7.5  # generous average glyph width of LABEL_FONT, so labels never touch

Day = dict[str, Any]  # a coverage row: day, turns, with_runtime_key, with_inference_id, ...
Turn = Union[sqlite3.Row, Mapping[str, Any]]  # a runtime_history row


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _date(day: str) -> datetime.date:
    return datetime.date.fromisoformat(day)


def cutover_day(days: Sequence[Day]) -> Optional[str]:
    """The first day of the final run of days on which every turn has a runtime_key, when days
    without one come before it (the day the server started writing the column); else None."""
    start = None
    for row in days:
        if row["turns"] and row["with_runtime_key"] == row["turns"]:
            start = start or row["day"]
        else:
            start = None
    if start is None or start == days[0]["day"]:
        return None
    return start


def coverage_svg(days: Sequence[Day], width: int = 600, height: int = 236) -> Markup:
    """Per UTC day, the share of turns with runtime_key (solid) and inference_id (dashed)."""
    if not days:
        return Markup('<p class="rt-empty">No turns with a timestamp yet.</p>')
    left, right, top, bottom = 44, 12, 16, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    first, last = _date(days[0]["day"]), _date(days[-1]["day"])
    span = max((last - first).days, 1)

    def x(day: str) -> float:
        return left + plot_w * ((_date(day) - first).days / span if len(days) > 1 else 0.5)

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    parts = [
        f'<svg class="rt-coverage" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg" '
        f'data-days="{len(days)}" style="max-width:{width}px;min-width:{width}px;height:auto">',
        f"<title>Backfill coverage per UTC day, {escape(days[0]['day'])} to {escape(days[-1]['day'])}</title>",
    ]
    for share in (0, 0.5, 1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(share):.1f}" y2="{y(share):.1f}" '
                     f'stroke="#ddd" stroke-width="1"/>')
        parts.append(f'<text x="{left - 6}" y="{y(share) + 4:.1f}" text-anchor="end" {FONT}>'
                     f'{100 * share:.0f}%</text>')
    for row, anchor in _axis_days(days, x):
        parts.append(f'<text class="rt-axis-day" x="{x(row["day"]):.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="{anchor}" {FONT}>{escape(row["day"][5:])}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" {FONT}>{escape(days[0]["day"][:4])} (UTC days)</text>')
    cutover = cutover_day(days)
    if cutover:
        cx = x(cutover)
        parts.append(f'<line class="rt-cutover" data-day="{cutover}" x1="{cx:.1f}" x2="{cx:.1f}" '
                     f'y1="{top}" y2="{top + plot_h}" stroke="#555" stroke-dasharray="2 3"/>')
        parts.append(f'<text x="{cx + 4:.1f}" y="{top + 10}" {FONT}>cutover {escape(cutover)}</text>')
    for key, colour, dash in (("runtime_key", RUNTIME_COLOUR, ""), ("inference_id", INFERENCE_COLOUR, "5 3")):
        points = " ".join(f'{x(r["day"]):.1f},{y(_share(r["with_" + key], r["turns"])):.1f}' for r in days)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<polyline class="rt-line-{key}" points="{points}" fill="none" stroke="{colour}" '
                     f'stroke-width="2"{dashed}/>')
    for row in days:
        with_runtime, with_inference = row["with_runtime_key"], row["with_inference_id"]
        runtime, inference = _share(with_runtime, row["turns"]), _share(with_inference, row["turns"])
        turns = row["turns"]
        tip = (f'{row["day"]}: {turns:,} turns; runtime_key {checks.percent(with_runtime, turns)} '
               f'({with_runtime:,}), inference_id {checks.percent(with_inference, turns)} ({with_inference:,})')
        parts.append(
            f'<g class="rt-day" data-day="{escape(row["day"])}" data-turns="{row["turns"]}" '
            f'data-runtime-key="{with_runtime}" data-inference-id="{with_inference}">'
            f'<title>{escape(tip)}</title>'
            f'<circle cx="{x(row["day"]):.1f}" cy="{y(runtime):.1f}" r="3" fill="{RUNTIME_COLOUR}"/>'
            f'<circle cx="{x(row["day"]):.1f}" cy="{y(inference):.1f}" r="2.5" fill="#fff" '
            f'stroke="{INFERENCE_COLOUR}" stroke-width="1.5"/></g>'
        )
    parts.append("</svg>")
    legend = Markup(
        '<ul class="rt-legend-list" style="list-style:none;padding:0;margin:0.2em 0;font-size:0.9em">'
        '<li style="display:inline-block;margin-right:1em"><span style="display:inline-block;width:1.4em;'
        'border-top:2px solid {}"></span> runtime_key</li>'
        '<li style="display:inline-block"><span style="display:inline-block;width:1.4em;'
        'border-top:2px dashed {}"></span> inference_id</li></ul>'
    ).format(RUNTIME_COLOUR, INFERENCE_COLOUR)
    return Markup("".join(parts)) + _scroll_hint(width) + legend


AXIS_LABEL_W = 36  # generous width of one "MM-DD" label of FONT, in the chart's units
AXIS_GAP = 8
PAGE_PADDING = 40  # the page's side padding around a chart box, both sides together
CHART_BOX_MAX = 720  # the chart boxes' max-width (_runtime_truth_style.html, the timeline partial)


def _axis_days(days: Sequence[Day], x: Callable[[str], float]) -> list[tuple[Day, str]]:
    """(day, text-anchor) of the days the axis names: the first (starting at its day), the last
    (ending at its day), and between them every day whose label clears the one named before it
    and the last one, so no two run together."""
    if len(days) == 1:
        return [(days[0], "middle")]
    half = AXIS_LABEL_W / 2
    last_left = x(days[-1]["day"]) - AXIS_LABEL_W
    named, right = [(days[0], "start")], x(days[0]["day"]) + AXIS_LABEL_W
    for row in days[1:-1]:
        here = x(row["day"])
        if here - half >= right + AXIS_GAP and here + half <= last_left - AXIS_GAP:
            named.append((row, "middle"))
            right = here + half
    return named + [(days[-1], "end")]  # the first and last days sit at the plot's two ends


def _scroll_hint(width: int) -> Markup:
    """Said under a chart that is wider than its box, which then scrolls sideways: always when
    the chart is wider than the box ever gets, else only on screens narrower than the chart
    (a media query for this width hides it elsewhere)."""
    hint = ('<p class="rt-scroll-hint rt-scroll-hint-{w}" style="font-size:0.85em;margin:0.1em 0;'
            'color:#555">Scroll sideways for the whole chart →</p>').format(w=width)
    if width > CHART_BOX_MAX:
        return Markup(hint)
    fits = width + PAGE_PADDING
    return Markup(f"<style>@media (min-width: {fits}px) {{ .rt-scroll-hint-{width} {{ display: none; }} }}"
                  f"</style>{hint}")


def _get(row: Turn, key: str, default: Any = "") -> Any:
    """A column of a sqlite3.Row or a dict, or ``default`` when the row lacks it."""
    try:
        value = row[key]
    except (KeyError, IndexError):
        return default
    return default if value is None else value


def runtime_colour(key: Any) -> str:
    """The colour a runtime_key starts from: a hash of the key into PALETTE; '' is grey."""
    if not key:
        return UNKNOWN_COLOUR
    return PALETTE[_slot(key)]


def _slot(key: Any) -> int:
    digest = hashlib.sha256(str(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % len(PALETTE)


# Where a page draws more keys than PALETTE holds: Paul Tol's muted colours least like PALETTE's,
# then hues a golden angle apart.
EXTRA = ("#332288", "#999933", "#882255", "#44AA99", "#DDCC77", "#88CCEE", "#AA4499", "#CC6677")


def _extra_colour(index: int) -> str:
    """The ``index``th colour beyond PALETTE: EXTRA, then as many golden-angle hues as needed."""
    if index < len(EXTRA):
        return EXTRA[index]
    hue = (60 + (index - len(EXTRA)) * 137.508) % 360
    red, green, blue = colorsys.hls_to_rgb(hue / 360, 0.42, 0.65)
    return "#{:02X}{:02X}{:02X}".format(round(red * 255), round(green * 255), round(blue * 255))


def assign_colours(keys: Iterable[Any]) -> dict[str, str]:
    """{runtime_key: colour} for every key a page draws: each key takes its hashed colour, or,
    where a key before it (in sorted order) has that one, the next free one; so no two keys of a
    page share a colour, and the same keys always get the same colours. '' is grey; a key that
    is not text (a hostile store's number or BLOB) is taken as the text the charts show."""
    colours: dict[str, str] = {"": UNKNOWN_COLOUR}
    taken: set[str] = set()
    extra = 0
    for key in sorted({str(key) for key in keys if key is not None} - {""}):
        free = [PALETTE[(_slot(key) + step) % len(PALETTE)] for step in range(len(PALETTE))]
        colour = next((c for c in free if c not in taken), None)
        while colour is None or colour in taken:
            colour, extra = _extra_colour(extra), extra + 1
        colours[key] = colour
        taken.add(colour)
    return colours


def _switch_indexes(rows: list[Turn], keys: list[str]) -> set[int]:
    """Where the rows switch runtime: their ``switched_from`` (the runtime_history query's
    column) when they have one, else the same rule over their keys."""
    if rows and all(isinstance(row, dict) and "switched_from" in row for row in rows):
        return {i for i, row in enumerate(rows) if row["switched_from"]}
    return set(queries.switch_positions(keys))


def legend_html(keys: list[str], colours: dict[str, str]) -> Markup:
    """The timeline's legend in HTML, at the page's text size: each runtime_key's colour and
    how many turns carry it, in order of first appearance."""
    items = []
    for key in dict.fromkeys(["", *keys] if "" in keys else keys):
        count = keys.count(key)
        label = f"{key or '(no runtime_key)'} × {count}"
        colour = colours[key]
        items.append(Markup(
            '<li class="rt-legend" data-runtime-key="{}" data-count="{}" data-colour="{}" '
            'style="display:inline-flex;align-items:center;gap:0.3em;margin:0 1em 0.2em 0">'
            '<span style="display:inline-block;width:0.9em;height:0.9em;background:{};'
            'border-radius:2px"></span>{}</li>'
        ).format(key, count, colour, colour, label))
    return Markup('<ul class="rt-legend-list" style="list-style:none;padding:0;margin:0.2em 0;'
                  'font-size:0.9em">{}</ul>').format(Markup("").join(items))


LABEL_ROWS = (8, 22)  # label baselines, this far above the marks; switch lines stop below them


def timeline_svg(rows: Iterable[Turn], colours: Optional[dict[str, str]] = None, height: int = 64) -> Markup:
    """One conversation's turns in history order, each a mark coloured by its runtime_key, with
    runtime switches marked. ``rows`` are mappings with turn_id, runtime_key, inference_id,
    updated_at_ms and maybe session_id (the runtime_history query's rows); ``colours`` the page's
    {runtime_key: colour} (assign_colours), when it draws several charts."""
    rows = list(rows)
    if not rows:
        return Markup('<p class="rt-empty">No turns in this conversation.</p>')
    keys = [str(_get(row, "runtime_key")) for row in rows]
    colours = colours or assign_colours(keys)
    switches = _switch_indexes(rows, keys)
    left, right, top = 8, 8, 36
    label_ends = [float("-inf")] * len(LABEL_ROWS)  # where the text on each label row ends
    gap = max(4, min(28, 640 // len(rows)))
    mark = max(3, gap - 2)
    width = left + right + gap * len(rows)
    parts = []
    for index, (row, key) in enumerate(zip(rows, keys)):
        x = left + gap * index
        if index in switches:
            line_x = x - (gap - mark) / 2
            parts.append(
                f'<g class="rt-switch" data-index="{index}" data-to="{escape(key)}">'
                f'<line x1="{line_x:.1f}" x2="{line_x:.1f}" y1="{top - 4}" y2="{top + 24}" '
                f'stroke="#333" stroke-width="1.5" stroke-dasharray="3 2"/>'
                f'{_switch_label(key, line_x, top, label_ends)}</g>'
            )
        turn_id, inference_id = _get(row, "turn_id"), _get(row, "inference_id")
        updated = _get(row, "updated_at_ms", None)
        when = _format_ms(updated)
        session = _get(row, "session_id")
        tip = (f"turn {turn_id}: runtime_key {key or '(none)'}, inference_id {inference_id or '(none)'}"
               f"{', ' + when if when else ''}{', session ' + str(session) if session else ''}")
        fill = colours[key]
        stroke = ' stroke="#777" stroke-dasharray="2 1"' if not key else ""
        parts.append(
            f'<rect class="rt-turn" data-turn-id="{escape(turn_id)}" data-runtime-key="{escape(key)}" '
            f'x="{x:.1f}" y="{top}" width="{mark}" height="20" rx="2" fill="{fill}"{stroke}>'
            f'<title>{escape(tip)}</title></rect>'
        )
    full = int(max(width, 240, max(label_ends) + 4))  # a label past the last turn stays in view
    head = (
        f'<svg class="rt-timeline" role="img" viewBox="0 0 {full} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg" data-turns="{len(rows)}" data-switches="{len(switches)}" '
        f'style="max-width:{full}px;min-width:{full}px;height:auto">'
        f"<title>Runtime timeline: {len(rows)} turns, {len(switches)} runtime "
        f"switch{'es' if len(switches) != 1 else ''}</title>"
    )
    return Markup(head + "".join(parts) + "</svg>") + _scroll_hint(full) + legend_html(keys, colours)


def _switch_label(key: str, line_x: float, top: int, label_ends: list[float]) -> str:
    """The new runtime's name above its switch line, starting where the line is, on the first
    label row where it clears the label before it; none when it clears neither (the legend and
    the mark's tooltip still name it). Switch lines stop below the label rows, so no line crosses
    a label."""
    width = LABEL_CHAR_W * len(key)
    for row, rise in enumerate(LABEL_ROWS):
        if line_x > label_ends[row] + 6:
            label_ends[row] = line_x + width
            y = top - rise
            return f'<text class="rt-switch-label" x="{line_x:.1f}" y="{y}" {LABEL_FONT}>{escape(key)}</text>'
    return ""


def _format_ms(value: Any) -> str:
    """A turn's time for a tooltip: its UTC date and time when a calendar holds it, else the raw
    value as stored; '' when there is none (NULL, '', 0)."""
    if value is None or value == "" or times.as_integer(value) == 0:
        return ""
    return times.utc(value) or f"updated_at_ms {value}"
