"""Hand-worked adherence scenarios with dates and time zones, asserting exact figures, on SQLite
and PostgreSQL: the real ingest date rule, real supervisor verdicts, real excusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from test_ledger import add_patient, add_user, add_video, excuse

from vot import accounts, schema
from vot.adherence import ledger
from vot.adherence import rules as adherence
from vot.adherence.rules import Counting, Day, Definitions, Regimen
from vot.intake.ingest import dose_date_for
from vot.review import scope as review_scope
from vot.review import verdicts as review_verdicts
from vot.treatment import doses

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = timedelta(days=1)


def days(first: date, last: date) -> list[date]:
    return [first + i * D for i in range((last - first).days + 1)]


@pytest.fixture
def clinic(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return accounts.ensure_clinic(conn, "North", "Lakeside")


def figures(engine, pid: int, now: datetime, as_of: date | None = None):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return ledger.for_patient(conn, pid, now, as_of)


def test_dose_recorded_at_2350_local_and_uploaded_next_morning_counts_for_its_day(
    engine, clinic: int
) -> None:
    recorded = datetime(2024, 3, 10, 23, 50, tzinfo=SHANGHAI)
    assert dose_date_for(recorded, "Asia/Shanghai") == date(2024, 3, 10)
    morning = datetime(2024, 3, 11, 9, 0, tzinfo=SHANGHAI)  # 01:00 UTC
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 3, 8), "Asia/Shanghai")
        add_video(conn, pid, date(2024, 3, 8), schema.AUTO_ACCEPTED)
        add_video(conn, pid, date(2024, 3, 9), schema.ACCEPTED)
    before = figures(engine, pid, morning)
    assert (before.as_of, before.expected, before.taken, before.missed) == (
        date(2024, 3, 11),
        3,
        2,
        1,
    )
    with engine.begin() as conn:  # the offline upload arrives at 08:10 the next morning
        add_video(
            conn,
            pid,
            dose_date_for(recorded, "Asia/Shanghai"),
            schema.AUTO_ACCEPTED,
            recorded_at=recorded,
            received_at=datetime(2024, 3, 11, 8, 10, tzinfo=SHANGHAI).astimezone(UTC),
        )
    after = figures(engine, pid, morning + timedelta(minutes=30))
    assert (after.expected, after.taken, after.missed, after.rate) == (3, 3, 0, 1.0)
    assert (after.last_taken, after.days_since_taken) == (date(2024, 3, 10), 1)


def test_patient_in_utc_plus_8_while_the_server_is_still_on_the_previous_day(
    engine, clinic: int
) -> None:
    now = datetime(2024, 3, 10, 17, 30, tzinfo=UTC)  # 01:30 on 11 March in Shanghai
    with engine.begin() as conn:
        east = add_patient(conn, clinic, date(2024, 3, 8), "Asia/Shanghai")
        west = add_patient(conn, clinic, date(2024, 3, 8), "UTC")
        for pid in (east, west):
            add_video(conn, pid, date(2024, 3, 8), schema.AUTO_ACCEPTED)
    e, w = figures(engine, east, now), figures(engine, west, now)
    # 10 March has ended in Shanghai (missed) but is still today in UTC (not yet due).
    assert (e.as_of, e.expected, e.taken, e.missed) == (date(2024, 3, 11), 3, 1, 2)
    assert (w.as_of, w.expected, w.taken, w.missed) == (date(2024, 3, 10), 2, 1, 1)
    with engine.begin() as conn:  # a dose taken today counts today
        add_video(conn, west, date(2024, 3, 10), schema.AUTO_ACCEPTED)
    w = figures(engine, west, now)
    assert (w.expected, w.taken, w.missed, w.days_since_taken) == (3, 2, 1, 0)


def test_overturned_auto_accept_and_its_undo_change_the_day_and_keep_the_history(
    engine, clinic: int
) -> None:
    now = datetime(2024, 3, 6, 12, tzinfo=UTC)
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 3, 1))
        subs = [
            add_video(conn, pid, day, schema.AUTO_ACCEPTED)
            for day in days(date(2024, 3, 1), date(2024, 3, 5))
        ]
        sup = review_scope.Reviewer(add_user(conn, clinic), "sup", "supervisor", clinic)
    assert (figures(engine, pid, now).taken, figures(engine, pid, now).expected) == (5, 5)
    with engine.begin() as conn:
        review_verdicts.overturn(conn, sup, subs[2], "reject", "pill not seen")
    a = figures(engine, pid, now)
    assert (a.expected, a.taken, a.rejected, a.missed, a.rate) == (5, 4, 1, 0, 0.8)
    assert (a.longest_missed_run, a.flag_below) == (1, False)  # 80% is not below 80%
    with engine.begin() as conn:
        assert review_verdicts.undo_last(conn, sup) == [subs[2]]
    assert figures(engine, pid, now).taken == 5
    rv = schema.reviews
    with engine.connect() as conn:
        history = conn.execute(
            select(rv.c.verdict, rv.c.previous_status, rv.c.undone_at).where(
                rv.c.submission_id == subs[2]
            )
        ).all()
    assert [(h.verdict, h.previous_status, h.undone_at is not None) for h in history] == [
        ("reject", schema.AUTO_ACCEPTED, True)
    ]


def test_excused_days_leave_the_denominator_and_withdrawing_one_restores_it(
    engine, clinic: int
) -> None:
    now = datetime(2024, 3, 6, 12, tzinfo=UTC)
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 3, 1))
        for day in (date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 5)):
            add_video(conn, pid, day, schema.ACCEPTED)
        user = add_user(conn, clinic)
    a = figures(engine, pid, now)
    assert (a.expected, a.taken, a.missed, a.rate, a.flag_below, a.longest_missed_run) == (
        5,
        3,
        2,
        0.6,
        True,
        2,
    )
    with engine.begin() as conn:
        excuse(conn, pid, date(2024, 3, 3), user, "in_hospital")
        excuse(conn, pid, date(2024, 3, 4), user, "drug_stock_out")
    a = figures(engine, pid, now)
    assert (a.expected, a.taken, a.excused, a.missed, a.rate) == (3, 3, 2, 0, 1.0)
    assert (a.flag_below, a.longest_missed_run, a.longest_gap_days) == (False, 0, 0)
    with engine.begin() as conn:
        doses.withdraw_excusal(conn, pid, date(2024, 3, 4), "sup")
    a = figures(engine, pid, now)
    assert (a.expected, a.taken, a.excused, a.missed) == (4, 3, 1, 1)


@pytest.mark.parametrize(
    ("resumed", "gap", "ltfu"),
    [(date(2024, 3, 10), 59, False), (date(2024, 3, 11), 60, True), (date(2024, 3, 15), 64, True)],
)
def test_two_months_without_a_dose_is_lost_to_follow_up(
    engine, clinic: int, resumed: date, gap: int, ltfu: bool
) -> None:
    now = datetime(2024, 3, 20, 12, tzinfo=UTC)
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 1, 1))
        taken = [*days(date(2024, 1, 1), date(2024, 1, 10)), *days(resumed, date(2024, 3, 19))]
        for day in taken:
            add_video(conn, pid, day, schema.AUTO_ACCEPTED)
    a = figures(engine, pid, now)
    assert (a.expected, a.taken, a.missed) == (79, len(taken), 79 - len(taken))
    assert (a.longest_gap_days, a.longest_missed_run, a.flag_ltfu) == (gap, gap, ltfu)
    assert (a.last_taken, a.days_since_taken) == (date(2024, 3, 19), 1)
    # The intensive phase is 1 January to 25 February: 56 days, 10 taken.
    assert (a.intensive_expected, a.intensive_taken) == (56, 10)
    assert a.intensive_share == pytest.approx(10 / 56)


def test_a_video_waiting_for_review_breaks_the_gap(engine, clinic: int) -> None:
    now = datetime(2024, 3, 20, 12, tzinfo=UTC)
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 1, 1))
        for day in [*days(date(2024, 1, 1), date(2024, 1, 10)), date(2024, 3, 15)]:
            add_video(conn, pid, day, schema.AUTO_ACCEPTED)
        add_video(conn, pid, date(2024, 2, 10), schema.REVIEW)
    a = figures(engine, pid, now)
    assert (a.pending, a.longest_gap_days, a.flag_ltfu) == (1, 33, False)  # 11 Feb - 14 Mar


@pytest.mark.parametrize(
    ("make_up", "completed"),
    [
        ((), True),
        ((date(2024, 1, 31), date(2024, 2, 1)), True),
        ((date(2024, 2, 20), date(2024, 2, 21)), False),
    ],
)
def test_completed_regimen_all_doses_within_the_window(
    engine, clinic: int, make_up: tuple[date, ...], completed: bool
) -> None:
    now = datetime(2024, 3, 1, 12, tzinfo=UTC)
    missed = (date(2024, 1, 5), date(2024, 1, 6)) if make_up else ()
    with engine.begin() as conn:  # 30 days; the window is 45 days: 1 January to 14 February
        pid = add_patient(conn, clinic, date(2024, 1, 1), length=30)
        for day in [d for d in days(date(2024, 1, 1), date(2024, 1, 30)) if d not in missed]:
            add_video(conn, pid, day, schema.ACCEPTED)
        for day in make_up:
            add_video(conn, pid, day, schema.ACCEPTED)
    a = figures(engine, pid, now)
    assert (a.regimen_end, a.expected, a.taken, a.completed) == (
        date(2024, 1, 30),
        30,
        30 - len(missed),
        completed,
    )
    assert a.days_since_taken == 0  # counted to the regimen's last day, not to today


def test_five_of_seven_regimen_expects_no_weekend_doses(engine, clinic: int) -> None:
    now = datetime(2024, 3, 11, 12, tzinfo=UTC)  # a Monday
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 3, 4), days_per_week=5)
        for day in days(date(2024, 3, 4), date(2024, 3, 8)):
            add_video(conn, pid, day, schema.AUTO_ACCEPTED)
    a = figures(engine, pid, now)
    assert (a.expected, a.taken, a.missed, a.longest_missed_run) == (5, 5, 0, 0)
    assert a.longest_gap_days == 2  # the weekend: calendar days, but no dose was due


def test_as_of_a_past_date_counts_up_to_that_day(engine, clinic: int) -> None:
    with engine.begin() as conn:
        pid = add_patient(conn, clinic, date(2024, 3, 1))
        for day in days(date(2024, 3, 1), date(2024, 3, 9)):
            add_video(conn, pid, day, schema.ACCEPTED)
    a = figures(engine, pid, datetime(2024, 4, 1, tzinfo=UTC), as_of=date(2024, 3, 5))
    assert (a.as_of, a.expected, a.taken, a.days_since_taken) == (date(2024, 3, 5), 5, 5, 0)


def test_unknown_patient_is_a_lookup_error(engine) -> None:
    with engine.connect() as conn, pytest.raises(LookupError):
        ledger.for_patient(conn, 999, datetime(2024, 1, 1, tzinfo=UTC))


def test_pure_day_state_precedence() -> None:
    state = adherence.day_state
    assert state(Day(taken=1, rejected=True, excused=True), 1, True) == "taken"
    assert state(Day(taken=1), 2, True) == "missed"  # two doses a day, one seen
    assert state(Day(excused=True, pending=True), 1, True) == "excused"
    assert state(Day(pending=True, unclear=True), 1, True) == "pending"
    assert state(Day(unclear=True, rejected=True), 1, True) == "unclear"
    assert state(Day(), 1, False) == "not_due"


def test_pure_compute_of_a_regimen_that_has_not_started() -> None:
    got = adherence.compute(
        1,
        Regimen(date(2024, 5, 1)),
        {},
        Counting(date(2024, 4, 29), date(2024, 4, 30)),
        Definitions(),
    )
    assert (got.expected, got.taken, got.rate, got.longest_gap_days, got.flag_below) == (
        0,
        0,
        None,
        0,
        False,
    )
