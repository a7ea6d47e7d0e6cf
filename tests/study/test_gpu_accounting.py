"""The GPU columns of an attempt from its seeds, and how compute is written for people: a GPU
study's time in GPU-hours once there is an hour of it."""

import pytest

from runner.attempt import SeedOutcome
from study.gpu_accounting import compute_unit, format_compute, gpu_columns


def seed(gpu_s: float, peak: float | None = None) -> SeedOutcome:
    return SeedOutcome(seed=1, status="ok", wall_s=gpu_s, cpu_s=1.0, peak_mb=100.0,
                       sandboxed=True, gpu_s=gpu_s, peak_gpu_mb=peak)


def test_an_attempts_gpu_time_is_its_seeds_summed_and_its_peak_their_largest():
    assert gpu_columns([seed(10.0, 900.0), seed(12.5, 1500.0), seed(3.0)]) == {
        "gpu_seconds": 25.5, "peak_gpu_mb": 1500.0}
    # A run without GPUs has no GPU columns: it is charged its slot-seconds.
    assert gpu_columns([seed(0.0), seed(0.0)]) == {"gpu_seconds": None, "peak_gpu_mb": None}
    assert (compute_unit(True), compute_unit(False)) == ("GPU-seconds", "slot-seconds")


@pytest.mark.parametrize(("seconds", "unit", "shown"), [
    (340.0, "GPU-seconds", "340 GPU-s"),
    (4500.0, "GPU-seconds", "1.25 GPU-h"),
    (7200.0, "slot-seconds", "7200 slot-s"),  # CPU time is never called GPU-hours
    (None, "GPU-seconds", "—"),
])
def test_gpu_time_is_shown_in_gpu_hours_once_there_is_an_hour(seconds, unit, shown):
    assert format_compute(seconds, unit) == shown
