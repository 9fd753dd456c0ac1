"""Memory: the migration's peak RSS at N turns (backfill_vs_floor's run, when it ran) and at N/10."""

from harness import run_child
from measure import Row, Section

TARGET_RSS_MB = 150


def memory(bench, results):
    large = results.get("quiet_migration") or _migration(bench, bench.turns)
    small_turns = max(1, bench.turns // 10)
    small = _migration(bench, small_turns)
    growth = large.peak_rss_mb - small.peak_rss_mb
    flat = growth <= max(5.0, 0.1 * small.peak_rss_mb)
    section = Section("Memory")
    section.rows = [
        Row(f"peak RSS at {small_turns:,} turns", f"{small.peak_rss_mb:.1f} MB"),
        Row(f"peak RSS at {bench.turns:,} turns", f"{large.peak_rss_mb:.1f} MB",
            f"< {TARGET_RSS_MB} MB", large.peak_rss_mb < TARGET_RSS_MB),
        Row("growth for 10x the turns", f"{growth:+.1f} MB", "flat (≤ 5 MB or 10%)", flat),
    ]
    section.notes = [
        "Peak resident set of the `datasette runtime-truth migrate` process (interpreter and Datasette "
        "included): `ru_maxrss` from `wait4`, taken by a small intermediary that forks it, because a "
        "child of the benchmark itself would start from the benchmark's own peak.",
    ]
    section.data = {"small_turns": small_turns, "small_mb": small.peak_rss_mb, "large_mb": large.peak_rss_mb}
    return section


def _migration(bench, turns):
    """A migrate run, measured, on a fresh copy of the sample of ``turns`` turns."""
    path = bench.copy(f"memory-{turns}", turns=turns)
    try:
        return run_child(bench.migrate_command(path))
    finally:
        bench.discard(path)
