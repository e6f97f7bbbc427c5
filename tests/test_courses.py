"""Regimens as data and treatment courses: schedules, changes, doses recorded by hand, and the
day ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from tests.test_ledger import add_user, add_video
from vot import accounts, schema
from vot.adherence import ledger
from vot.adherence import rules as adherence
from vot.adherence.rules import Day, Definitions
from vot.treatment import catalog, courses, days, doses
from vot.treatment.regimens import RegimenError, builtins, parse

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
_codes = itertools.count(1)


@pytest.fixture
def clinic(engine) -> int:
    with engine.begin() as conn:
        return accounts.ensure_clinic(conn, "Course Clinic", "D")


def enrol(conn: Connection, clinic: int, start: date, regimen: str, tz: str = "UTC") -> int:
    patient, _ = accounts.add_patient(
        conn, f"C-{next(_codes)}", clinic, start, tz, regimen_id=regimen
    )
    return patient.id


def test_builtin_regimens_cover_the_programmes_regimens() -> None:
    found = builtins()
    assert {"6HRZE", "3HP", "4R", "1HP", "6HRZE-TIW", "BPaLM", "DR-9M"} <= set(found)
    assert found["6HRZE"].length_days == 180 and found["4R"].length_days == 120
    assert [p.days for p in found["6HRZE"].phases] == [56, 124]
    assert found["6HRZE-TIW"].phases[1].schedule.describe() == "Mon, Wed, Fri"


def test_a_3hp_patient_has_exactly_12_expected_doses(engine, clinic: int) -> None:
    start = date(2024, 1, 3)  # a Wednesday: every dose falls on a Wednesday
    with engine.begin() as conn:
        pid = enrol(conn, clinic, start, "3HP")
        for week in range(12):
            add_video(conn, pid, start + timedelta(weeks=week), schema.ACCEPTED)
        add_video(conn, pid, start + timedelta(days=1), schema.ACCEPTED)  # not a dose day
        a = ledger.for_patient(conn, pid, NOW)
    assert (a.expected, a.taken, a.missed, a.completed) == (12, 12, 0, True)
    assert a.regimen_end == start + timedelta(days=83)
    with engine.connect() as conn:
        states = ledger.day_states(conn, pid, NOW)
    assert len(states) == 12 and all(d.weekday() == 2 for d, _ in states)


def test_thrice_weekly_continuation_counts_only_its_weekdays(engine, clinic: int) -> None:
    start = date(2024, 1, 1)  # a Monday
    with engine.begin() as conn:
        pid = enrol(conn, clinic, start, "6HRZE-TIW")
        a = ledger.for_patient(conn, pid, datetime(2024, 3, 11, 12, tzinfo=UTC))
    # 56 daily days, then 14 March ... : 26 Feb (day 57) to 10 March: Mon/Wed/Fri only.
    continuation = [
        d
        for d in (date(2024, 2, 26) + timedelta(days=i) for i in range(14))
        if d.weekday() in (0, 2, 4)
    ]
    assert a.expected == 56 + len(continuation) and a.missed == a.expected


def test_a_regimen_change_keeps_the_days_before_it(engine, clinic: int) -> None:
    start = date(2024, 1, 1)
    with engine.begin() as conn:
        pid = enrol(conn, clinic, start, "4R")
        for i in range(10):
            add_video(conn, pid, start + timedelta(days=i), schema.ACCEPTED)
        course = courses.change_regimen(conn, pid, "3HP", date(2024, 1, 11), "sup", "rash on 4R")
        assert [s.regimen.id for s in course.segments] == ["4R", "3HP"]
        assert course.nominal_last == date(2024, 1, 11) + timedelta(days=83)
        a = ledger.for_patient(conn, pid, datetime(2024, 2, 1, 12, tzinfo=UTC))
    # 10 daily doses taken, then weekly from 11 January: 11, 18, 25 January (all missed).
    assert (a.expected, a.taken, a.missed) == (13, 10, 3)
    with engine.begin() as conn:  # a change to an earlier day supersedes the later one
        courses.change_regimen(conn, pid, "1HP", date(2024, 1, 5), "sup")
        history = courses.history(conn, courses.latest(conn, pid).id)
    assert [h["regimen_id"] for h in history] == ["3HP", "1HP"]
    assert history[0]["superseded_at"] is not None and history[1]["superseded_at"] is None
    with engine.begin() as conn, pytest.raises(courses.CourseError, match="within the course"):
        courses.change_regimen(conn, pid, "4R", date(2023, 12, 1), "sup")
    with engine.begin() as conn, pytest.raises(RegimenError, match="no regimen 'NOPE'"):
        courses.change_regimen(conn, pid, "NOPE", date(2024, 1, 20), "sup")


def test_a_dose_watched_in_person_counts_as_taken(engine, clinic: int) -> None:
    start = date(2024, 5, 20)
    with engine.begin() as conn:
        pid = enrol(conn, clinic, start, "6HRZE")
        add_video(conn, pid, start, schema.REJECTED)
        doses.record_dose(conn, pid, start, "phone", "sup", now=NOW)
        doses.record_dose(conn, pid, start + timedelta(days=1), "in_person", "sup", now=NOW)
        add_video(conn, pid, start + timedelta(days=2), schema.ACCEPTED)
        a = ledger.for_patient(conn, pid, NOW)
    assert (a.taken, a.in_person, a.phone) == (3, 1, 1)
    log = schema.audit_log
    with engine.connect() as conn:
        actions = conn.execute(select(log.c.action, log.c.actor)).all()
    assert ("dose.phone", "sup") in actions and ("dose.in_person", "sup") in actions


@pytest.mark.parametrize(
    ("day", "kind", "message"),
    [
        (date(2024, 6, 5), "phone", "has not come yet"),
        (date(2024, 5, 1), "phone", "outside the course"),
        (date(2024, 5, 21), "phone", "no dose is due"),
        (date(2024, 5, 20), "video", "kind of dose"),
    ],
)
def test_a_dose_that_cannot_be_recorded_is_refused(engine, clinic, day, kind, message) -> None:
    with engine.begin() as conn:
        pid = enrol(conn, clinic, date(2024, 5, 20), "3HP")  # Mondays only
    with engine.begin() as conn, pytest.raises(doses.DoseError, match=message):
        doses.record_dose(conn, pid, day, kind, "sup", now=NOW)
    with engine.connect() as conn:
        assert conn.execute(select(schema.observed_doses)).all() == []


def test_a_programme_adds_its_own_regimen_without_code(engine) -> None:
    own = {
        "id": "6HR-5D",
        "name": "Daily on weekdays",
        "kind": "treatment",
        "phases": [
            {
                "name": "all",
                "days": 182,
                "schedule": {"weekdays": ["mon", "tue", "wed", "thu", "fri"]},
            }
        ],
    }
    with engine.begin() as conn:
        catalog.add(conn, own, "admin")
        assert catalog.get(conn, "6HR-5D").phases[0].schedule.weekdays == frozenset(range(5))
    with engine.begin() as conn, pytest.raises(RegimenError, match="exists already"):
        catalog.add(conn, own, "admin")
    with engine.begin() as conn, pytest.raises(RegimenError, match="exists already"):
        catalog.add(conn, {**own, "id": "3HP"}, "admin")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "unknown key"),
        ({"kind": "other"}, "regimen.kind"),
        ({"phases": []}, "1 to 6 phases"),
        ({"phases": [{"name": "a", "days": 0, "schedule": "daily"}]}, "days must be"),
        ({"phases": [{"name": "a", "days": 7, "schedule": "monthly"}]}, "schedule must be"),
        ({"phases": [{"name": "a", "days": 7, "schedule": {"weekdays": ["funday"]}}]}, "weekdays"),
        ({"id": "no spaces"}, "regimen.id"),
    ],
)
def test_malformed_definitions_say_which_field(change: dict, message: str) -> None:
    base = {
        "id": "X1",
        "name": "x",
        "kind": "treatment",
        "phases": [{"name": "a", "days": 7, "schedule": "daily"}],
    }
    with pytest.raises(RegimenError, match=message):
        parse({**base, **change})


# ---- Random courses: the ledger's figures equal the pure definition --------------------------

SCHEDULES = st.one_of(
    st.just("daily"),
    st.just("weekly"),
    st.lists(
        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        min_size=1,
        max_size=7,
        unique=True,
    ).map(lambda d: {"weekdays": d}),
)


@st.composite
def regimen_defs(draw: st.DrawFn, n: int) -> dict:
    phases = [
        {"name": f"p{i}", "days": draw(st.integers(1, 20)), "schedule": draw(SCHEDULES)}
        for i in range(draw(st.integers(1, 3)))
    ]
    data: dict = {"id": f"R{n}", "name": f"random {n}", "kind": "treatment", "phases": phases}
    if draw(st.booleans()):
        data["completion"] = {
            "doses": draw(st.integers(1, 10)),
            "within_days": draw(st.integers(1, 40)),
        }
    return data


@st.composite
def random_courses(draw: st.DrawFn) -> dict:
    start = date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 13)))
    return dict(
        start=start,
        regimens=[draw(regimen_defs(i)) for i in range(2)],
        change=draw(st.one_of(st.none(), st.integers(1, 25))),
        videos=draw(
            st.lists(st.tuples(st.integers(-2, 50), st.sampled_from(schema.STATUSES)), max_size=25)
        ),
        observed=draw(
            st.lists(st.tuples(st.integers(0, 45), st.sampled_from(schema.DOSE_KINDS)), max_size=6)
        ),
        excused=draw(st.lists(st.integers(0, 45), max_size=4)),
        now=datetime.combine(start, time(12), UTC) + timedelta(days=draw(st.integers(-2, 60))),
        as_of=draw(st.one_of(st.none(), st.integers(-2, 55))),
        defs=Definitions(
            ltfu_days=draw(st.integers(2, 10)),
            intensive_days=draw(st.integers(1, 14)),
            completion_window_pct=draw(st.sampled_from([100, 150])),
        ),
    )


_ids = itertools.count(1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=random_courses())
def test_ledger_of_random_courses_equals_the_pure_definition(engine, clinic, case) -> None:
    run = next(_ids)
    start = case["start"]
    with engine.begin() as conn:
        user = add_user(conn, clinic)
        ids = []
        for data in case["regimens"]:
            data = {**data, "id": f"{data['id']}-{run}"}
            catalog.add(conn, data, "test")
            ids.append(data["id"])
        pid = enrol(conn, clinic, start, ids[0])
        if case["change"] is not None:
            courses.change_regimen(
                conn,
                pid,
                ids[1],
                start + timedelta(days=case["change"]),
                "t",
                today=date(2030, 1, 1),
            )
        course = courses.latest(conn, pid)
        held: dict[date, dict] = {}
        for offset, status in case["videos"]:
            day = start + timedelta(days=offset)
            add_video(conn, pid, day, status)
            h = held.setdefault(day, dict(taken=0))
            h["taken"] += status in schema.TAKEN_STATUSES
            h["pending"] = h.get("pending", False) or status in days.PENDING_STATUSES
            h["unclear"] = h.get("unclear", False) or status == schema.UNCLEAR
            h["rejected"] = h.get("rejected", False) or status == schema.REJECTED
        for offset, kind in case["observed"]:
            day = start + timedelta(days=offset)
            if course.start <= day <= course.last and course.scheduled(day):
                doses.record_dose(conn, pid, day, kind, "t", now=datetime(2030, 1, 1, tzinfo=UTC))
                h = held.setdefault(day, dict(taken=0))
                h["observed"] = h.get("observed") if h.get("observed") == "in_person" else kind
        for offset in case["excused"]:
            day = start + timedelta(days=offset)
            if course.start <= day <= course.last and course.scheduled(day):
                doses.excuse(
                    conn, pid, day, "in_hospital", user, "t", now=datetime(2030, 1, 1, tzinfo=UTC)
                )
                held.setdefault(day, dict(taken=0))["excused"] = True
        as_of = None if case["as_of"] is None else start + timedelta(days=case["as_of"])
        fast = ledger.for_patient(conn, pid, case["now"], as_of, case["defs"])
        text = conn.execute(
            select(schema.regimens.c.days).where(schema.regimens.c.id == course.id)
        ).scalar()
        days.rebuild(conn, [pid])  # the day string written as it went equals one written anew
        again = conn.execute(
            select(schema.regimens.c.days).where(schema.regimens.c.id == course.id)
        ).scalar()
    assert (text or "") == (again or "")
    when = adherence.counting("UTC", case["now"], as_of)
    pure = adherence.compute(
        pid, course, {d: Day(**v) for d, v in held.items()}, when, case["defs"]
    )
    assert fast == pure


def test_cli_regimens_and_doses_with_one_line_errors(tmp_path) -> None:
    from tests.conftest import run_cli

    env = {"VOT_DATA_DIR": str(tmp_path / "data"), "VOT_SECRET_KEY": "k"}
    listed = run_cli("regimen", "list", "--json", env=env)
    assert listed.returncode == 0 and {r["id"] for r in json.loads(listed.stdout)} >= {"3HP", "4R"}
    added = run_cli(
        "patient",
        "add",
        "P-3HP",
        "--clinic",
        "C",
        "--regimen",
        "3HP",
        "--start",
        "2024-01-03",
        env=env,
    )
    assert added.returncode == 0 and "on 3HP from 2024-01-03 to 2024-03-26" in added.stdout
    dose = run_cli(
        "patient",
        "dose",
        "P-3HP",
        "--date",
        "2024-01-10",
        "--kind",
        "in_person",
        "--by",
        "nurse",
        env=env,
    )
    assert dose.returncode == 0 and "watched in person" in dose.stdout
    for args, message in (
        (("patient", "add", "P-X", "--clinic", "C", "--regimen", "NOPE"), "no regimen 'NOPE'"),
        (
            ("patient", "dose", "P-3HP", "--date", "2024-01-11", "--kind", "phone"),
            "no dose is due on 2024-01-11",
        ),
        (
            ("patient", "dose", "P-3HP", "--date", "2023-01-10", "--kind", "phone"),
            "outside the course",
        ),
        (("patient", "regimen", "P-3HP", "4R", "--from", "2020-01-01"), "within the course"),
        (("patient", "outcome", "P-3HP", "cured"), "preventive"),
    ):
        bad = run_cli(*args, env=env)
        assert bad.returncode == 1, (args, bad.stdout, bad.stderr)
        assert bad.stderr.startswith("vot: error: ") and message in bad.stderr
        assert bad.stderr.count("\n") == 1


def test_the_readme_example_regimen_is_valid(engine) -> None:
    from vot.config import REPO_ROOT

    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Treatment courses", 1)[1]
    example = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    with engine.begin() as conn:
        regimen = catalog.add(conn, example, "readme")
    planned = len(regimen.phases[0].schedule.weekdays) * 8 + 3 * 18  # 8 and 18 whole weeks
    assert regimen.completion.doses is not None and regimen.completion.doses <= planned
