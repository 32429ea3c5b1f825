"""The BLAS thread choice of a compiled step: the faster count, found again when the load
changes. Times are fed in by hand (``record``), so the tests don't depend on the machine."""

from __future__ import annotations

import pytest

from microtensor.blas_threads import RECHECK, TRIALS, ThreadChoice


def a_choice() -> ThreadChoice:
    choice = ThreadChoice()
    choice.counts, choice.times = [1, 2], {1: [], 2: []}  # as on a 2-core machine
    return choice


def run(choice: ThreadChoice, seconds: dict[int, float], calls: int) -> list[int]:
    """``calls`` calls taking ``seconds[count]``: the counts used, in order."""
    used = []
    for _ in range(calls):
        count = choice._next()
        choice.record(count, seconds[count])
        used.append(count)
    return used


def test_both_counts_are_timed_then_the_faster_runs():
    choice = a_choice()
    first = run(choice, {1: 0.040, 2: 0.030}, 2 * TRIALS)
    assert sorted(first) == [1] * TRIALS + [2] * TRIALS and choice.best == 2
    later = run(choice, {1: 0.040, 2: 0.030}, RECHECK)
    assert later.count(1) == 1  # one recheck of the other count in RECHECK calls


def test_a_busy_machine_switches_to_the_count_now_faster_within_a_few_calls():
    choice = a_choice()
    run(choice, {1: 0.040, 2: 0.030}, 2 * TRIALS + 1)
    assert choice.best == 2
    busy = run(choice, {1: 0.045, 2: 0.090}, 12)  # another program takes a core
    assert choice.best == 1 and busy[-3:] == [1, 1, 1]
    run(choice, {1: 0.040, 2: 0.030}, 3 * RECHECK)  # idle again: found at the rechecks
    assert choice.best == 2


@pytest.mark.parametrize("spike", [1.2, 1.4])
def test_ordinary_noise_does_not_make_it_try_the_other_count(spike):
    choice = a_choice()
    run(choice, {1: 0.040, 2: 0.030}, 2 * TRIALS + 1)
    choice.record(2, 0.030 * spike)
    assert choice._next() == 2
