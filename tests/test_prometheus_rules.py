"""The shipped alerting rules, checked and unit-tested by Debian's promtool (installed by
scripts/ensure-prometheus), and printed by ``datasette runtime-truth alert-rules``."""

import pathlib
import subprocess

from click.testing import CliRunner
from datasette.cli import cli

from datasette_runtime_truth.report.metrics import ALERT_RULES

PROMTOOL = "/usr/bin/promtool"
UNIT_TESTS = pathlib.Path(__file__).parent / "prometheus" / "runtime-truth.rules.test.yml"


def promtool(*args):
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_promtool_check_rules():
    result = promtool("check", "rules", ALERT_RULES)
    assert (result.returncode, result.stdout.split("\n")) == (
        0, [f"Checking {ALERT_RULES}", "  SUCCESS: 4 rules found", "", ""])


def test_promtool_test_rules():
    result = promtool("test", "rules", UNIT_TESTS)
    assert (result.returncode, result.stdout.split()) == (0, ["Unit", "Testing:", str(UNIT_TESTS), "SUCCESS"])


def test_the_unit_tests_read_the_shipped_file():
    assert (UNIT_TESTS.parent / "../../datasette_runtime_truth/prometheus/runtime-truth.rules.yml").resolve() == \
        pathlib.Path(str(ALERT_RULES)).resolve()


def test_alert_rules_command_prints_the_file():
    result = CliRunner().invoke(cli, ["runtime-truth", "alert-rules"])
    assert (result.exit_code, result.output) == (0, ALERT_RULES.read_text())
