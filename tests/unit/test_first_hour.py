"""What a new user meets first, without I/O: the stack's one clock, an application that passes intake, what a
project needs, and what holds a case up."""

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from base.calendar import CHINA
from base.clock import AcceleratedClock, ClockMisconfigured, StackClock, clock_from, forget, record, recorded
from base.settings import Settings
from contracts.bureau import Decision
from services.bureau.catalogue import load_catalogue
from services.bureau.model import Case, DocumentState, Hold, IntakeRefused, check_intake, requirements
from services.bureau.samples import PROJECT_TYPES, template
from tests.unit.test_bureau_model import CALENDAR, CATALOGUE, FACTORY, MONDAY, opened

START = datetime(2026, 3, 2, 9, 0, tzinfo=CHINA)


def stack(tmp_path: Path, **clock: object) -> Settings:
    return Settings(stack_dir=tmp_path, **clock)  # type: ignore[arg-type]


def test_without_a_clock_anywhere_the_stack_runs_on_real_time(tmp_path: Path) -> None:
    clock = clock_from(stack(tmp_path))
    assert isinstance(clock, StackClock)
    assert abs((clock.now() - datetime.now(CHINA)).total_seconds()) < 5


def test_a_recorded_clock_is_the_one_every_process_reads_and_follows_when_it_is_set_anew(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("base.clock.RELOAD_SECONDS", 0.0)  # look at the file on every reading
    settings = stack(tmp_path)
    record(settings, 1000.0, START)
    first, second = clock_from(settings), clock_from(settings)
    assert abs((first.now() - second.now()).total_seconds()) < 1000 * 0.5
    assert START <= first.now() < START + timedelta(hours=1)
    before = first.now()
    later = START + timedelta(days=400)
    setting = record(settings, 1.0, later)
    assert recorded(settings) == setting
    assert later <= first.now() < later + timedelta(minutes=1)  # the running clock follows, at the new speed
    going_on = record(settings, 10.0)  # no start: from where the clock stands, never back
    assert going_on.start >= later > before
    forget(settings)
    assert recorded(settings) is None and abs((first.now() - datetime.now(CHINA)).total_seconds()) < 5


@pytest.mark.parametrize("given", [{"clock_speed": 100.0}, {"clock_start": START},
                                   {"clock_start": START, "clock_speed": 100.0}])
def test_a_clock_given_in_part_in_the_environment_is_an_error_that_says_what_to_set(
        tmp_path: Path, given: dict[str, object]) -> None:
    with pytest.raises(ClockMisconfigured, match="CONCORD_CLOCK_ANCHOR") as told:
        clock_from(stack(tmp_path, **given))
    assert "concord clock set --speed N" in str(told.value)


def test_a_clock_given_whole_in_the_environment_overrides_the_stacks(tmp_path: Path) -> None:
    settings = stack(tmp_path, clock_start=START, clock_speed=2.0, clock_anchor=time.time())
    record(stack(tmp_path), 1000.0, START + timedelta(days=300))
    clock = clock_from(settings)
    assert isinstance(clock, AcceleratedClock) and clock.now() < START + timedelta(days=1)


def test_an_unreadable_clock_file_is_an_error_naming_the_remedy(tmp_path: Path) -> None:
    (tmp_path / "clock.json").write_text("{speed: fast}")
    with pytest.raises(ClockMisconfigured, match="concord clock set"):
        clock_from(stack(tmp_path))


@pytest.mark.parametrize("project_type", PROJECT_TYPES)
def test_a_template_of_every_project_type_passes_intake(project_type: str) -> None:
    application = template(project_type)
    assert application.project.project_type == project_type
    check_intake(application.project, application.documents, application.promised_documents, load_catalogue())
    found = requirements(application.project, application.documents, [], load_catalogue())
    assert found.intake is None and {d.state for d in found.documents} == {DocumentState.HANDED_IN}


def test_requirements_say_what_is_missing_and_why_intake_would_refuse() -> None:
    application = template("industrial", seed=3)
    needed = requirements(application.project, [], [], CATALOGUE)
    assert needed.intake is not None and needed.intake.startswith("key documents missing")
    assert all(d.state is DocumentState.MISSING for d in needed.documents)
    assert {i.stage for i in needed.items} == {1, 2, 3, 4}
    with pytest.raises(IntakeRefused) as refused:
        check_intake(application.project, [], [], CATALOGUE)
    assert needed.intake == str(refused.value)
    first_stage = requirements(application.project, application.documents, [], CATALOGUE, stage=1)
    assert {i.stage for i in first_stage.items} == {1}
    assert all(set(d.items) <= {i.code for i in first_stage.items} for d in first_stage.documents)


def test_a_case_is_stuck_on_a_late_department_a_supplement_or_a_conflict_and_not_when_it_moves() -> None:
    case, _ = opened()
    assert case.stuck(MONDAY) == []
    planning = next(r for r in case.current() if r.department == "planning")
    late = [h for h in case.stuck(planning.due_at) if h.department == "planning"]
    assert {h.hold for h in late} == {Hold.OVERDUE} and any(h.detail.startswith(planning.item_code) for h in late)
    case.record_opinion(planning.request_id, "planning", Decision.SUPPLEMENT_REQUESTED, [], ["坐标"], [], MONDAY,
                        CATALOGUE, CALENDAR)
    assert [(h.hold, h.department) for h in case.stuck(MONDAY)] == [(Hold.SUPPLEMENT, "planning")]

    factory: Case = opened(FACTORY)[0]
    for r in factory.current():
        decision = Decision.REJECTED if r.department == "environment" else Decision.APPROVED
        factory.record_opinion(r.request_id, r.department, decision, [], ["x"], [], MONDAY, CATALOGUE, CALENDAR)
    assert [h.hold for h in factory.stuck(MONDAY)] == [Hold.CONFLICT]
