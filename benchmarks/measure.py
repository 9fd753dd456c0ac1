"""The vocabulary every benchmark section shares: a Section of Rows, and the statistics they quote."""

from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of a section's table: a measurement, its target (if any) and whether it is met."""

    measure: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass
class Section:
    title: str
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    data: dict = field(default_factory=dict)

    @property
    def met(self):
        verdicts = [row.met for row in self.rows if row.met is not None]
        return all(verdicts) if verdicts else None


def percentile(values, p):
    """The nearest-rank ``p``th percentile of ``values`` (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values):
    return {"count": len(values), "max": max(values, default=0.0), "median": percentile(values, 50),
            "p95": percentile(values, 95)}
