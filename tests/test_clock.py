"""engine.run.clock: the virtual clock (jumps, timers), background Timers on a real clock,
and the drill clock (scaled waits that count in full, pause and resume)."""

from __future__ import annotations

import threading
import time

import pytest

from engine.run.clock import DrillClock, RealClock, Timers, VirtualClock

# -- VirtualClock ----------------------------------------------------------------------------


def test_virtual_sleep_advances_time_instantly() -> None:
    clock = VirtualClock(start=1000.0)
    t0 = time.monotonic()
    clock.sleep(3600)
    assert time.monotonic() - t0 < 0.5
    assert clock.monotonic() == 3600
    assert clock.now() == 1000.0 + 3600


def test_virtual_clock_starts_at_a_fixed_wall_time_so_journals_repeat() -> None:
    assert VirtualClock().now() == VirtualClock().now() == 1_767_225_600.0
    assert VirtualClock().monotonic() == 0.0


def test_virtual_negative_sleep_does_not_go_back() -> None:
    clock = VirtualClock()
    clock.sleep(10)
    clock.sleep(-5)
    assert clock.monotonic() == 10


def test_virtual_timer_fires_during_a_sleep_that_passes_it_at_its_own_time() -> None:
    clock = VirtualClock()
    seen: list[float] = []
    clock.call_at(90, lambda: seen.append(clock.monotonic()))
    clock.sleep(60)
    assert seen == []
    clock.sleep(60)
    assert seen == [90]
    assert clock.monotonic() == 120


def test_virtual_timers_fire_in_time_order_and_ties_in_the_order_scheduled() -> None:
    clock = VirtualClock()
    order: list[str] = []
    clock.call_at(30, lambda: order.append("b"))
    clock.call_at(10, lambda: order.append("a"))
    clock.call_at(30, lambda: order.append("c"))
    clock.sleep(100)
    assert order == ["a", "b", "c"]


def test_virtual_timer_at_exactly_the_end_of_a_sleep_fires() -> None:
    clock = VirtualClock()
    fired: list[bool] = []
    clock.call_at(5, lambda: fired.append(True))
    clock.sleep(5)
    assert fired == [True]


def test_virtual_timer_scheduled_by_a_timer_fires_in_the_same_sleep_when_due() -> None:
    """Periodic updates reschedule themselves from inside their own action."""
    clock = VirtualClock()
    times: list[float] = []

    def tick() -> None:
        times.append(clock.monotonic())
        clock.call_at(clock.monotonic() + 10, tick)

    clock.call_at(10, tick)
    clock.sleep(35)
    assert times == [10, 20, 30]
    assert clock.next_timer() == 40


def test_virtual_sleep_inside_a_timer_action_moves_time_on() -> None:
    clock = VirtualClock()
    clock.call_at(10, lambda: clock.sleep(5))
    clock.sleep(12)
    assert clock.monotonic() == 15  # the action's own wait counts; time never goes back


def test_virtual_timer_in_the_past_fires_at_the_next_sleep_without_rewinding() -> None:
    clock = VirtualClock()
    clock.sleep(50)
    seen: list[float] = []
    clock.call_at(10, lambda: seen.append(clock.monotonic()))
    clock.sleep(0)
    assert seen == [50]


def test_next_timer_is_none_without_timers() -> None:
    assert VirtualClock().next_timer() is None


# -- RealClock and Timers ----------------------------------------------------------------------


def test_real_clock_sleep_is_cut_short_by_wake() -> None:
    clock = RealClock()
    threading.Timer(0.05, clock.wake).start()
    t0 = time.monotonic()
    clock.sleep(5)
    assert time.monotonic() - t0 < 2


def test_timers_fire_from_a_background_thread_while_the_main_thread_waits() -> None:
    clock = RealClock()
    timers = Timers(clock, tick=0.01)
    fired = threading.Event()
    where: list[str] = []

    def action() -> None:
        where.append(threading.current_thread().name)
        fired.set()

    timers.call_at(clock.monotonic() + 0.05, action)
    try:
        assert fired.wait(3)
    finally:
        timers.stop()
    assert where == ["runbook-timers"]


def test_timers_fire_in_time_order() -> None:
    clock = RealClock()
    timers = Timers(clock, tick=0.01)
    order: list[int] = []
    done = threading.Event()
    now = clock.monotonic()
    timers.call_at(now + 0.10, lambda: (order.append(2), done.set()))
    timers.call_at(now + 0.02, lambda: order.append(1))
    try:
        assert done.wait(3)
    finally:
        timers.stop()
    assert order == [1, 2]


def test_stopped_timers_never_fire() -> None:
    clock = RealClock()
    timers = Timers(clock, tick=0.01)
    fired: list[bool] = []
    timers.call_at(clock.monotonic() + 0.1, lambda: fired.append(True))
    timers.stop()
    time.sleep(0.3)
    assert fired == []


# -- DrillClock --------------------------------------------------------------------------------


def test_drill_clock_scales_waits_but_counts_them_in_full() -> None:
    clock = DrillClock(speed=100)
    before = clock.monotonic()
    t0 = time.monotonic()
    clock.sleep(20)  # 20 simulated seconds take 0.2 real seconds
    real = time.monotonic() - t0
    assert 0.15 < real < 2
    assert clock.monotonic() - before >= 20


def test_drill_clock_waits_at_once_skip_the_time_once() -> None:
    """Two items of a block waiting 20 s at the same time: 20 simulated seconds pass, not 40."""
    import threading

    clock = DrillClock(speed=100)
    before = clock.monotonic()
    waits = [threading.Thread(target=clock.sleep, args=(20,)) for _ in range(2)]
    for wait in waits:
        wait.start()
    for wait in waits:
        wait.join()
    assert 20 <= clock.monotonic() - before < 30


def test_drill_clock_real_time_for_people_passes_at_speed_one() -> None:
    clock = DrillClock(speed=50)
    before = clock.monotonic()
    time.sleep(0.2)  # a person thinking: not scaled
    assert 0.15 < clock.monotonic() - before < 1.5


def test_drill_clock_wall_time_follows_simulated_time() -> None:
    clock = DrillClock(speed=1000)
    now0, mono0 = clock.now(), clock.monotonic()
    clock.sleep(60)
    assert abs((clock.now() - now0) - (clock.monotonic() - mono0)) < 0.01


def test_drill_clock_pause_freezes_time_and_resume_continues_without_a_jump() -> None:
    clock = DrillClock()
    clock.pause()
    assert clock.paused
    frozen = clock.monotonic()
    time.sleep(0.2)
    assert clock.monotonic() == frozen
    clock.resume()
    assert not clock.paused
    assert clock.monotonic() - frozen < 0.1
    time.sleep(0.1)
    assert clock.monotonic() > frozen


def test_drill_clock_sleep_waits_out_a_pause() -> None:
    """A simulated wait does not end while the trainer has paused the drill."""
    clock = DrillClock(speed=10)
    clock.pause()
    threading.Timer(0.4, clock.resume).start()
    t0 = time.monotonic()
    clock.sleep(1)  # 0.1 s of real time, but only once resumed
    assert time.monotonic() - t0 >= 0.45


def test_drill_clock_wake_cuts_a_simulated_wait_short() -> None:
    clock = DrillClock(speed=1)
    threading.Timer(0.05, clock.wake).start()
    t0 = time.monotonic()
    clock.sleep(30)
    assert time.monotonic() - t0 < 2


def test_drill_clock_pause_during_a_simulated_wait_lengthens_it_by_the_pause() -> None:
    """Paused time does not count: the wait still lasts its full simulated length."""
    clock = DrillClock(speed=1)
    before = clock.monotonic()
    threading.Timer(0.2, clock.pause).start()
    threading.Timer(0.7, clock.resume).start()
    t0 = time.monotonic()
    clock.sleep(1.0)
    real = time.monotonic() - t0
    assert real >= 1.4
    assert clock.monotonic() - before == pytest.approx(1.0, abs=0.3)


def test_drill_clock_wake_counts_only_the_simulated_time_that_passed() -> None:
    clock = DrillClock(speed=10)
    before = clock.monotonic()
    threading.Timer(0.2, clock.wake).start()
    clock.sleep(100)  # 10 real seconds, cut short after 0.2: about 2 simulated seconds
    assert 1.5 <= clock.monotonic() - before <= 20  # not the whole 100


def test_drill_clock_timers_fire_during_a_scaled_wait_at_their_simulated_time() -> None:
    """At 10x, an event due 5 simulated seconds into a 10-second wait fires half-way, not after."""
    clock = DrillClock(speed=10)
    timers = Timers(clock, tick=0.01)
    fired_at: list[float] = []
    start = clock.monotonic()
    timers.call_at(start + 5, lambda: fired_at.append(clock.monotonic() - start))
    try:
        clock.sleep(10)
        returned_at = clock.monotonic() - start
    finally:
        timers.stop()
    assert len(fired_at) == 1
    assert 4.5 <= fired_at[0] < returned_at


def test_a_failing_timer_action_does_not_stop_the_later_timers() -> None:
    clock = RealClock()
    timers = Timers(clock, tick=0.01)
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    now = clock.monotonic()
    timers.call_at(now + 0.01, broken)
    timers.call_at(now + 0.05, done.set)
    try:
        assert done.wait(3)
    finally:
        timers.stop()
    assert [str(e) for e in timers.errors] == ["boom"]


def test_the_real_clock_is_read_without_a_python_call() -> None:
    """A live run reads its clock about eight times a step: each read was a method
    around time.time or time.monotonic; it is the C function itself now."""
    import sys
    from types import FrameType

    clock = RealClock()
    entered: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_filename.endswith("clock.py"):
            entered.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        wall, mono = clock.now(), clock.monotonic()
    finally:
        sys.setprofile(None)
    assert entered == []
    assert abs(wall - time.time()) < 60 and abs(mono - time.monotonic()) < 60
