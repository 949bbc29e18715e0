"""The benchmarks stay runnable as the course changes (they are run by hand, never timed here)."""

import subprocess
import sys

import pytest

from notebooks import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import check_latency  # noqa: E402

SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("label", sorted(check_latency.CASES))
def test_check_latency_times_the_visible_check_of_the_solution(label):
    """A test cell may open with a hidden part: the benchmark must still find the visible check after it."""
    assignment, answer_id, test_id, _ = check_latency.CASES[label]
    test = check_latency.cell_source(assignment, test_id)
    answer = check_latency.cell_source(assignment, answer_id)
    assert test.startswith(f"check.{label}(") and "HIDDEN" not in test, test
    assert "SOLUTION" not in answer and "NotImplementedError" not in answer and answer.strip(), answer


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_starts(script):
    done = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "usage" in done.stdout, done.stderr[-2000:]
