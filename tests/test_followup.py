"""The follow-up list (who to call, in what order, the calls), WHO outcomes and their timing
rules, a patient's course from the supervisor's page, and each role's start page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from test_review import PASSWORD
from test_review_ui import csrf, login

from review_ui import create_app
from tests.test_ledger import add_video
from vot import accounts, schema
from vot.adherence import ledger, outcomes
from vot.review import followup
from vot.review.scope import NotFound, Reviewer, ReviewError
from vot.treatment import doses
from vot.treatment.course import patient_today

NOW = datetime(2024, 6, 10, 21, 0, tzinfo=UTC)  # 21:00 in UTC: past the 20:00 deadline
TODAY = NOW.date()


@pytest.fixture
def clinic(engine) -> tuple[int, Reviewer, Reviewer]:
    with engine.begin() as conn:
        clinic_id = accounts.ensure_clinic(conn, "Follow Clinic", "D")
        other = accounts.ensure_clinic(conn, "Other Clinic", "D")
        uid, _ = accounts.ensure_user(conn, "sup-f", PASSWORD, "supervisor", clinic_id)
        oid, _ = accounts.ensure_user(conn, "sup-o", PASSWORD, "supervisor", other)
    return (
        clinic_id,
        Reviewer(uid, "sup-f", "supervisor", clinic_id),
        Reviewer(oid, "sup-o", "supervisor", other),
    )


def patient(conn, clinic_id: int, code: str, taken: list[int], today: date = TODAY):  # type: ignore[no-untyped-def]
    """A 6HRZE patient who started 20 days ago, with videos on the days ``taken`` ago."""
    pid = accounts.add_patient(conn, code, clinic_id, today - timedelta(days=20))[0].id
    for ago in taken:
        add_video(conn, pid, today - timedelta(days=ago), schema.ACCEPTED)
    return pid


def test_the_list_ranks_by_need_and_leaves_out_who_is_fine(engine, clinic) -> None:
    clinic_id, sup, _other = clinic
    all_days = list(range(1, 21))
    with engine.begin() as conn:
        patient(conn, clinic_id, "P-FINE", all_days + [0])
        patient(conn, clinic_id, "P-GONE", [d for d in all_days if d > 5])  # 5 in a row missed
        patient(conn, clinic_id, "P-YESTERDAY", [d for d in all_days if d != 1] + [0])
        late = patient(conn, clinic_id, "P-LATE", all_days)  # nothing today, 21:00
        rejected = patient(conn, clinic_id, "P-REJECTED", [d for d in all_days if d != 3] + [0])
        add_video(conn, rejected, TODAY - timedelta(days=3), schema.REJECTED)
        patient(conn, clinic_id, "P-LOW", [d for d in all_days if d % 3] + [0])  # about 65 %
        items = followup.follow_ups(conn, sup, NOW, "20:00", 3)
    codes = [f.code for f in items]
    assert "P-FINE" not in codes
    assert codes[0] == "P-GONE" and items[0].escalated and items[0].missed_run == 5
    by_code = {f.code: f for f in items}
    assert "missed_yesterday" in by_code["P-YESTERDAY"].reasons
    assert by_code["P-LATE"].reasons == ("late_today",) and by_code["P-LATE"].patient_id == late
    assert by_code["P-REJECTED"].unresolved == (TODAY - timedelta(days=3),)
    assert "below_80" in by_code["P-LOW"].reasons
    assert codes.index("P-YESTERDAY") < codes.index("P-REJECTED") < codes.index("P-LOW")
    with engine.begin() as conn:  # before the deadline, today's dose is not late yet
        early = followup.follow_ups(conn, sup, NOW.replace(hour=12), "20:00", 3)
    assert "P-LATE" not in [f.code for f in early]


def test_a_recorded_call_shows_and_a_reached_patient_goes_after_the_rest(engine, clinic) -> None:
    clinic_id, sup, other = clinic
    with engine.begin() as conn:
        today = patient_today("UTC")
        gone = patient(conn, clinic_id, "P-GONE", list(range(6, 21)), today)
        patient(conn, clinic_id, "P-YESTERDAY", [d for d in range(0, 21) if d != 1], today)
        followup.record_call(conn, sup, gone, "no_answer")
        followup.record_call(conn, sup, gone, "reached", "will come to the clinic")
        items = followup.follow_ups(conn, sup, datetime.now(UTC), "20:00", 3)
    assert items[-1].code == "P-GONE" and items[-1].reached_today
    assert [c.outcome for c in items[-1].calls] == ["reached", "no_answer"]
    assert items[-1].calls[0].note == "will come to the clinic" and items[-1].calls[0].by == "sup-f"
    with engine.begin() as conn:
        with pytest.raises(ReviewError, match="one of"):
            followup.record_call(conn, sup, gone, "shouted")
        with pytest.raises(ReviewError, match="write the note"):
            followup.record_call(conn, sup, gone, "note", "  ")
        with pytest.raises(NotFound):
            followup.record_call(conn, other, gone, "reached")  # another clinic's patient
    with engine.connect() as conn:
        assert len(conn.execute(select(schema.followup_calls)).all()) == 2


def test_an_ended_course_is_not_followed_up(engine, clinic) -> None:
    clinic_id, sup, _ = clinic
    with engine.begin() as conn:
        pid = patient(conn, clinic_id, "P-DIED", [5, 6, 7])
        outcomes.record(conn, pid, "died", "sup-f", TODAY - timedelta(days=2), now=NOW)
        items = followup.follow_ups(conn, sup, NOW, "20:00", 3)
    assert items == []


# ---- WHO outcomes -----------------------------------------------------------------------------


def test_outcome_timing_rules(engine, clinic) -> None:
    clinic_id, _sup, _ = clinic
    start = date(2024, 1, 1)
    now = datetime(2024, 5, 20, 12, tzinfo=UTC)  # month 4 and a half
    with engine.begin() as conn:
        pid = accounts.add_patient(conn, "P-OUT", clinic_id, start)[0].id
        for i in range(60):
            add_video(conn, pid, start + timedelta(days=i), schema.ACCEPTED)
    with engine.begin() as conn, pytest.raises(outcomes.OutcomeError, match="month 5"):
        outcomes.record(conn, pid, "treatment_failed", "sup", now=now)
    with engine.begin() as conn, pytest.raises(outcomes.OutcomeError, match="planned to end"):
        outcomes.record(conn, pid, "cured", "sup", now=now)
    with engine.begin() as conn, pytest.raises(outcomes.OutcomeError, match="has not come yet"):
        outcomes.record(conn, pid, "died", "sup", date(2024, 6, 1), now=now)
    with engine.begin() as conn:  # 60 days taken, then nothing since 1 March: over two months
        course = ledger.for_patient(conn, pid, now)
        assert course.longest_gap_days >= 60
        got = outcomes.record(conn, pid, "lost_to_follow_up", "sup", now=now)
    assert got.on == now.date()
    with engine.begin() as conn, pytest.raises(outcomes.OutcomeError, match="recorded already"):
        outcomes.record(conn, pid, "died", "sup", now=now)
    with engine.begin() as conn:
        outcomes.record(conn, pid, "died", "sup", now=now, replace=True)
        row = conn.execute(select(schema.regimens.c.outcome, schema.regimens.c.end_date)).one()
    assert tuple(row) == ("died", now.date())
    later = datetime(2024, 6, 3, 12, tzinfo=UTC)  # from month 5, failure may be recorded
    with engine.begin() as conn:
        pid2 = accounts.add_patient(conn, "P-FAIL", clinic_id, start)[0].id
        outcomes.record(conn, pid2, "treatment_failed", "sup", now=later)


def test_lost_to_follow_up_needs_two_months_and_cured_needs_treatment(engine, clinic) -> None:
    clinic_id, _sup, _ = clinic
    with engine.begin() as conn:
        pid = patient(conn, clinic_id, "P-SHORT", list(range(0, 21)))
        tpt = accounts.add_patient(conn, "P-TPT", clinic_id, TODAY, regimen_id="3HP")[0].id
    with engine.begin() as conn, pytest.raises(outcomes.OutcomeError, match="60 days"):
        outcomes.record(conn, pid, "lost_to_follow_up", "sup", now=NOW)
    with engine.begin() as conn, pytest.raises(outcomes.OutcomeError, match="preventive"):
        outcomes.record(conn, tpt, "cured", "sup", now=NOW)


# ---- The supervisor's pages -------------------------------------------------------------------


@pytest.fixture
def client(settings, engine, clinic) -> FlaskClient:  # type: ignore[no-untyped-def]
    return create_app(settings).test_client()


def test_follow_up_page_lists_and_records_a_call_by_key_or_button(engine, clinic, client) -> None:
    clinic_id, _sup, _ = clinic
    with engine.begin() as conn:
        gone = patient(conn, clinic_id, "P-GONE", list(range(6, 21)), patient_today("UTC"))
    login(client, "sup-f")
    page = client.get("/followup").get_data(as_text=True)
    assert "P-GONE" in page and "escalated" in page and f'data-patient-id="{gone}"' in page
    queue = client.get("/review").get_data(as_text=True)
    assert 'id="count-escalated">1<' in queue
    token = csrf(client)
    reply = client.post(
        f"/followup/{gone}/call",
        data={"outcome": "reached", "csrf_token": token},
        headers={"X-Requested-With": "fetch"},
    )
    assert reply.status_code == 200 and reply.get_json()["outcome"] == "reached"
    bad = client.post(
        f"/followup/{gone}/call",
        data={"outcome": "maybe", "csrf_token": token},
        headers={"X-Requested-With": "fetch"},
    )
    assert bad.status_code == 400 and "error" in bad.get_json()
    login(client, "sup-o")  # another clinic's supervisor
    assert (
        client.post(
            f"/followup/{gone}/call", data={"outcome": "reached", "csrf_token": csrf(client)}
        ).status_code
        == 404
    )


def test_doses_excusals_regimen_and_outcome_from_the_calendar(engine, clinic, client) -> None:
    clinic_id, _sup, _ = clinic
    today = patient_today("UTC")  # the pages count to the real today
    with engine.begin() as conn:
        pid = patient(conn, clinic_id, "P-CAL", [], today)
    login(client, "sup-f")
    token = csrf(client)
    day = (today - timedelta(days=2)).isoformat()
    panel = client.get(f"/patients/{pid}?day={day}").get_data(as_text=True)
    assert 'id="day-panel"' in panel and "Watched in person" in panel
    reply = client.post(
        f"/patients/{pid}/dose", data={"day": day, "kind": "in_person", "csrf_token": token}
    )
    assert reply.status_code == 302
    cal = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert f'data-date="{day}" data-state="taken" data-kind="in_person"' in cal
    future = (today + timedelta(days=3)).isoformat()
    client.post(f"/patients/{pid}/dose", data={"day": future, "kind": "phone", "csrf_token": token})
    assert "has not come yet" in client.get(f"/patients/{pid}").get_data(as_text=True)
    other = (today - timedelta(days=4)).isoformat()
    client.post(
        f"/patients/{pid}/excuse", data={"day": other, "reason": "in_hospital", "csrf_token": token}
    )
    cal = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert f'data-date="{other}" data-state="excused"' in cal
    client.post(
        f"/patients/{pid}/regimen",
        data={"regimen": "4R", "from": today.isoformat(), "csrf_token": token},
    )
    assert "<strong>4R</strong> from" in client.get(f"/patients/{pid}").get_data(as_text=True)
    client.post(
        f"/patients/{pid}/outcome",
        data={"outcome": "died", "date": today.isoformat(), "csrf_token": token},
    )
    cal = client.get(f"/patients/{pid}").get_data(as_text=True)
    assert 'id="outcome"' in cal and "Died" in cal and 'id="outcome-form"' not in cal
    with engine.connect() as conn:
        actions = [a for (a,) in conn.execute(select(schema.audit_log.c.action))]
    assert {"dose.in_person", "dose.excuse", "course.change_regimen", "course.outcome"} <= set(
        actions
    )
    assert doses.recorded  # the module's reader stays importable


def test_each_role_lands_on_its_own_start_page(engine, clinic, client) -> None:
    with engine.begin() as conn:
        accounts.ensure_user(conn, "ana", PASSWORD, "analyst", None)
    reply = login(client, "ana")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/analyst")
    page = client.get("/analyst").get_data(as_text=True)
    nav = page.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert "Dashboard" in nav and "Queue" not in nav and "Follow-up" not in nav
    forbidden = client.get("/review")
    assert forbidden.status_code == 403
    assert '<a href="/analyst" id="home-link">' in forbidden.get_data(as_text=True)
    assert client.get("/").headers["Location"].endswith("/analyst")
    reply = login(client, "sup-f")
    assert reply.headers["Location"].endswith("/review")
    nav = client.get("/review").get_data(as_text=True).split("<nav", 1)[1].split("</nav>", 1)[0]
    assert "Follow-up" in nav and "Dashboard" not in nav
