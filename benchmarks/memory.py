"""Memory: the migration's peak RSS at N turns (from backfill_vs_floor's run) and at N/10."""

from harness import run_child
from measure import Row, Section

TARGET_RSS_MB = 150


def memory(bench, results):
    large = results["quiet_migration"]
    small_turns = max(1, bench.turns // 10)
    path = bench.copy("small", turns=small_turns)
    small = run_child(bench.migrate_command(path))
    bench.discard(path)
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
