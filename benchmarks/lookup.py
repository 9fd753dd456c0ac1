"""Lookup by any id: ``/-/runtime-truth/turns/search.json?q=ID`` for each kind of id, over a real
Datasette server, against the same lookups run directly and against a full scan of ``turns``.

Each kind is timed with ids of seeded random turns (from distinct conversations): the route; its
own SQL (``id_lookup.lookup_sql`` for that kind, run directly through sqlite3); everything the route
reads (``id_lookup.find``: every kind's lookup for the id, and the found turns' snapshots); and the
full scan the indexes spare (``FROM turns NOT INDEXED WHERE <column> = ?``), a few times only.
Loopback only; the server stops by itself.
"""

import os
import time

import httpx

from datasette_runtime_truth.storage import id_lookup
from datasette_runtime_truth.upstream import schema

import routes
from measure import Row, Section, summary

LOOKUPS = {"turn_id": 50, "inference_id": 50, "conv_id": 200, "session_id": 200}  # requests per kind
SCANS = 3  # full scans per kind: each reads every turn row
COLUMN_INDEX = {"conv_id": 0, "session_id": 1, "turn_id": 2, "inference_id": 3}
TARGET_ROUTE_RATIO = routes.TARGET_ROUTE_RATIO


def lookup_by_any_id(bench, results):
    """The section: each kind's route, own SQL, the route's whole SQL, and the full scan."""
    turns_path, timeline_path, _ = routes.served_copy(bench)
    conn = routes._connect(turns_path)
    shape = schema.TurnsShape.read(conn, prefix="t.")
    picked = routes.pick_turns(conn, max(LOOKUPS.values()), seed=routes.SEED)
    measured = {}
    log = os.path.join(bench.workdir, "lookup-datasette.log")
    with routes.Server([turns_path, timeline_path], log) as server, \
            httpx.Client(base_url=server.url, timeout=routes.REQUEST_TIMEOUT_S) as client:
        fixed_ms, _ = routes._timed_requests(client, "/-/versions.json", routes.ROUTE_REQUESTS)
        for kind, count in LOOKUPS.items():
            ids = [turn[COLUMN_INDEX[kind]] for turn in picked[:count] if turn[COLUMN_INDEX[kind]]]
            measured[kind] = measure_kind(client, conn, shape, kind, ids)
    conn.close()
    bench.discard(turns_path)
    bench.discard(timeline_path)
    return lookup_section(measured, summary(fixed_ms), len(picked))


def measure_kind(client, conn, shape, kind, ids):
    """Milliseconds of the route, its own SQL, id_lookup.find and a full scan for ``ids``, and
    whether every answer found the turn its id came from."""
    own_sql = id_lookup.lookup_sql(shape, kind)
    for token in ids[:routes.WARM_UP]:
        client.get("/-/runtime-truth/turns/search.json", params={"q": token})
    route_ms, own_ms, find_ms, statuses, missed = [], [], [], {}, 0
    for token in ids:
        own_ms.append(_timed(lambda: conn.execute(own_sql, {"id": token, "limit": id_lookup.PER_LOOKUP + 1}).fetchall()))
        find_ms.append(_timed(lambda: id_lookup.find(conn, [(token, None)], with_snapshots=True)))
        started = time.perf_counter()
        response = client.get("/-/runtime-truth/turns/search.json", params={"q": token})
        route_ms.append((time.perf_counter() - started) * 1000)
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        matched = response.status_code == 200 and any(
            {"kind": kind, "id": token} in turn["matched"] for turn in response.json()["turns"])
        missed += not matched
    scan_sql = f"SELECT count(*) FROM turns NOT INDEXED WHERE {kind} = ?"
    scan_ms = [_timed(lambda: conn.execute(scan_sql, (token,)).fetchall()) for token in ids[:SCANS]]
    measured = {"requests": len(ids), "route_ms": summary(route_ms), "own_sql_ms": summary(own_ms),
                "find_ms": summary(find_ms), "scan_ms": summary(scan_ms), "statuses": statuses,
                "missed": missed}
    return measured


def _timed(call):
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def lookup_section(measured, fixed, picked):
    """A row per kind: the route against everything it reads plus the server's fixed cost
    (target: within TARGET_ROUTE_RATIO x), and its own SQL against the full scan (target: faster)."""
    section = Section("Lookup by any id", data={"kinds": measured, "fixed_ms": fixed})
    for kind, m in measured.items():
        ok = m["missed"] == 0 and set(m["statuses"]) == {"200"}
        floor = m["find_ms"]["median"] + fixed["median"]
        ratio = m["route_ms"]["median"] / floor if floor else float("inf")
        own = m["own_sql_ms"]["median"]
        speedup = m["scan_ms"]["median"] / own if own else float("inf")
        m["ratio_to_floor"], m["scan_over_own_sql"] = ratio, speedup
        value = (f"route {routes._pct(m['route_ms'])}; all the route's SQL {routes._pct(m['find_ms'])}; "
                 f"its own SQL {routes._pct(m['own_sql_ms'])} (median / p95, {m['requests']} ids); "
                 f"full scan {m['scan_ms']['median']:.1f} ms (median of {m['scan_ms']['count']}); "
                 f"route / (all its SQL + fixed cost) {ratio:.2f}x; full scan / its own SQL {speedup:,.1f}x")
        if not ok:
            value += f"; statuses {m['statuses']}, {m['missed']} ids not found"
        section.rows.append(Row(kind, value,
                                f"route median ≤ {TARGET_ROUTE_RATIO:g}x (all its SQL + fixed cost); "
                                "its own SQL faster than a full scan",
                                ok and ratio <= TARGET_ROUTE_RATIO and speedup > 1))
    section.notes += [
        f"Ids of {picked} seeded random turns from distinct conversations. The box tries each id as "
        "every kind, so a route runs all four lookups and reads the found turns' phase snapshots "
        "(\"all the route's SQL\": `id_lookup.find`, run directly); \"its own SQL\" is that kind's "
        "lookup alone (`id_lookup.lookup_sql`), run directly through sqlite3.",
        f"Fixed cost: the median of `/-/versions.json` on the same server, {fixed['median']:.1f} ms.",
        "Full scan: `SELECT count(*) FROM turns NOT INDEXED WHERE <column> = ?`, every turn row read, "
        "warm (the file is in the page cache): what a lookup costs without the upstream's indexes.",
        "A `turn_id` or an `inference_id` has no index of its own: its lookup reads the entries of "
        "the primary key or of `turns_by_conv_inference_updated` whole, in order, and only a "
        "match's row, so it grows with the store like a scan but reads no other turn row.",
    ]
    return section
