"""`make bench` runs end to end, so it cannot rot: a tiny run of bench/hot_paths.py
against the local PostgreSQL, with its server, pgbench and wrk. Its figures are too
small to mean anything, and whether they meet a target is no concern here: that every
figure of the table is produced, every path answered and the ledger held is the point."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.processes import created_test_database_url

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent
# The figures of a path's row in the table, and of the expiry job's lines.
PATH_FIGURES = ("rps", "p50_us", "p99_us", "gunicorn_cpu_ms_per_request")
EXPIRY_FIGURES = ("lots", "job_seconds", "limit_seconds", "earn_rps_idle", "p99_ratio")


@pytest.mark.skipif(not shutil.which("wrk"), reason="needs wrk: apt-get install wrk")
def test_the_hot_paths_benchmark_prints_its_table_and_keeps_the_ledger(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "bench/hot_paths.py",
            # Enough members that pgbench's and wrk's holds of 100 points (some 2,000
            # in a run) never take a member's 500 points five times over: a refused
            # hold fails the run. At 2,000 members about one run in four had one.
            "--members=10000",
            "--customers=20",
            "--duration=1",
            # Named after the test database, so runs against one server do not share it.
            f"--database={connection.settings_dict['NAME']}_bench",
            f"--database-url={created_test_database_url()}",
            f"--results={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    # The run wrote its figures: a run that failed (a path that did not answer, the
    # ledger broken) stops before writing any.
    written = list(tmp_path.glob("*.json"))
    assert len(written) == 1, run.stderr[-3000:]
    results = json.loads(written[0].read_text())
    # Whether a run this small meets the targets says nothing; only that it says so.
    assert run.returncode == (0 if results["all_targets_met"] else 1), run.stderr[-3000:]

    paths = {row["path"]: row for row in results["paths"]}
    assert set(paths) == {
        "earn",
        "earn (replay)",
        "earn, 20 lines",
        "earn, 10 rules, 20 lines",
        "redeem",
        "balance read",
        "history page",
        "history page, 10× history",
    }
    for name, row in paths.items():
        assert row["requests"] > 0, name
        assert all(row[figure] > 0 for figure in PATH_FIGURES), row
        assert all(ratio > 0 for ratio in row["ratios"].values()), row
        assert isinstance(row["met"], bool), row
        assert f"| {name} | {row['rps']:,.0f} |" in run.stdout
    floors = {floor["path"]: floor for floor in results["floors"]}
    assert set(floors) == {"earn", "balance read", "history page"}
    assert all(floor["rps"] > 0 and floor["p99_us"] > 0 for floor in floors.values()), floors
    expiry = results["expiry"]
    assert all(expiry[figure] > 0 for figure in EXPIRY_FIGURES), expiry
    assert results["history_p99_growth_10x"] > 0
    rules_earn = results["rules_earn"]
    assert rules_earn["of_flat_earn"] > 0 and rules_earn["rules_of_earn_with_lines"] > 0
    assert sum(rules_earn["promotions_applied"].values()) > 0
    assert f"÷ flat earn: {rules_earn['of_flat_earn']:.2f} (target ≥ 0.8)" in run.stdout
    assert results["ledger_breaches_after"] == 0
    assert "all targets met: " in run.stdout


def test_the_earn_profile_shows_where_an_earns_time_goes(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "bench/earn_profile.py",
            "--requests=5",
            "--history=2",
            "--warm-up=1",
            "--members=200",
            f"--database={connection.settings_dict['NAME']}_profile",
            f"--database-url={created_test_database_url()}",
            f"--profile-file={tmp_path / 'earn.prof'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    for mode in ("flat", "lines", "rules"):
        assert f"\n{mode}: " in run.stdout
    # Under the rules the earn is one statement too, after the basket's evaluation.
    rules = run.stdout.split("\nrules: ")[1]
    assert re.match(r"[\d.]+ ms an earn; 1\.\d statements and commits", rules)
    assert "| WITH loyalty_program |" in rules
    assert "| earning |" in run.stdout
    assert "| _earned_row |" in run.stdout
    assert (tmp_path / "earn.prof").stat().st_size > 0
