"""The time left in a run's progress lines: the run's own cost model (schedule.item_cost) at the
rate the items timed so far took, over the devices driving; nothing before an item was timed."""

from __future__ import annotations

import pytest

from dsabench.bench.schedule import WorkQueue, item_cost

from conftest import make_case

ITEMS = [(make_case(batch=b, num_blocks=n),) for b, n in ((1, 16), (4, 64), (8, 256))]


def test_no_time_left_is_said_before_an_item_has_been_timed():
    q = WorkQueue([(0, item) for item in ITEMS])
    assert q.eta_s() is None
    q.settled(ITEMS[0])  # written, but crashed: says nothing of how long work takes
    assert q.eta_s() is None


def test_the_time_left_is_the_cost_left_at_the_rate_the_timed_items_took():
    q = WorkQueue([(0, item) for item in ITEMS])
    q.join("cpu:0")
    q.finished(ITEMS[0], 2.0)
    q.settled(ITEMS[0])
    left = item_cost(ITEMS[1]) + item_cost(ITEMS[2])
    assert q.eta_s() == pytest.approx(left * 2.0 / item_cost(ITEMS[0]))


def test_two_devices_driving_halve_the_time_left():
    one, two = (WorkQueue([(0, item) for item in ITEMS]) for _ in range(2))
    for q, devices in ((one, ["cpu:0"]), (two, ["cpu:0", "cpu:1"])):
        for d in devices:
            q.join(d)
        q.finished(ITEMS[0], 2.0)
        q.settled(ITEMS[0])
    assert two.eta_s() == pytest.approx(one.eta_s() / 2)


def test_nothing_is_left_once_every_item_is_settled():
    q = WorkQueue([(0, item) for item in ITEMS])
    for item in ITEMS:
        q.finished(item, 1.0)
        q.settled(item)
    assert q.eta_s() == 0.0


def test_a_progress_line_shows_the_median_of_an_even_count_as_the_mean_of_the_middle_two():
    import io

    from dsabench.bench.runner import progress_printer

    out = io.StringIO()
    record = {"case_id": "decode.x", "status": "ok", "timing": {"samples_ms": [4.0, 1.0, 2.0, 3.0]}}
    progress_printer(out)(record, 1, 1)
    assert " 2.5000 ms  decode.x" in out.getvalue()


def test_a_progress_line_fits_a_ci_log_and_keeps_a_long_case_id_whole_on_a_line_of_its_own():
    import io

    from dsabench.bench.runner import PROGRESS_WIDTH, progress_printer

    case = "decode.b64.c4096.p0.n65536.bs64.ch1.h128.k2048.s0.hot.tensor-contiguous.eager"
    record = {"case_id": case, "impl": "fastdeploy:0123456789ab", "status": "ok",
              "timing": {"samples_ms": [1.0, 2.0]}}
    out = io.StringIO()
    progress_printer(out)(record, 7, 1200, 3600.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(len(line) <= PROGRESS_WIDTH for line in lines)
    assert lines[0].endswith("eta 3600s)") and "7/1200 ok" in lines[0]
    assert lines[1].strip() == f"{case}  [fastdeploy:0123456789ab]"
