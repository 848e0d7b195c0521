"""Where a run's wall time went: device-seconds split into worker start-ups, stages and the rest."""

from dsabench.analysis.wall import breakdown
from dsabench.present.wall_text import format_wall


def test_device_seconds_are_wall_time_times_devices_and_the_rest_is_what_no_stage_or_start_up_took():
    records = [{"worker": {"stages_s": {"timing": 30.0, "inputs": 10.0}}},
               {"worker": {"stages_s": {"timing": 20.0, "trace": 5.0}}}]
    attempts = [{"wall_s": 50.0, "devices": ["0", "1"],
                 "worker_starts": [{"why": "first", "seconds": 4.0}, {"why": "first", "seconds": 5.0},
                                   {"why": "new pass", "seconds": 3.0}]},
                {"wall_s": 10.0, "devices": [None], "worker_starts": []}]
    b = breakdown(records, attempts)
    assert (b.wall_s, b.devices, b.device_s) == (60.0, 2, 110.0)
    assert b.starts == {"first": (2, 9.0), "new pass": (1, 3.0)}
    assert list(b.stages_s) == ["inputs", "timing", "trace"]  # the worker's order, not the records'
    assert b.stages_s["timing"] == 50.0 and b.other_s == 110.0 - 12.0 - 65.0
    text = format_wall(b)
    assert "2 invocations" in text and "worker start-ups 3 (2 first, 1 new pass)" in text


def test_a_run_without_attempts_on_file_has_no_breakdown():
    assert breakdown([{"worker": {"stages_s": {"timing": 1.0}}}], []) is None
    assert format_wall(None) == ""
