"""`make test`'s two runs (tests.run): the status it ends with."""

from tests.run import NOTHING_COLLECTED, worse


def test_a_failure_in_either_run_is_the_status() -> None:
    assert worse([0, 1]) == 1
    assert worse([1, 0]) == 1
    assert worse([NOTHING_COLLECTED, 2]) == 2


def test_a_run_that_selected_nothing_beside_one_that_passed_is_success() -> None:
    assert worse([0, 0]) == 0
    assert worse([NOTHING_COLLECTED, 0]) == 0
    assert worse([0, NOTHING_COLLECTED]) == 0


def test_nothing_selected_by_either_run_says_so() -> None:
    assert worse([NOTHING_COLLECTED, NOTHING_COLLECTED]) == NOTHING_COLLECTED
