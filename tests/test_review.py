"""The review domain (vot.review_*) on a real database: queue, verdicts, undo, bulk, spot checks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, inspect, select, text

from vot import accounts, schema
from vot.adherence.rules import patient_today
from vot.db import utcnow
from vot.migrations import upgrade
from vot.review import bulk as review_bulk
from vot.review import item as review_item
from vot.review import patients as review_patients
from vot.review import queue as review_queue
from vot.review import scope as review_scope
from vot.review import spotchecks as review_spotchecks
from vot.review import verdicts as review_verdicts
from vot.review.queue import QueueFilters
from vot.review.scope import Reviewer
from vot.treatment import days

PASSWORD = "correct-horse-battery"


def add_sub(
    conn: Connection,
    patient_id: int,
    day: date,
    confidence: float | None = 0.5,
    status: str = schema.REVIEW,
    reasons: tuple[str, ...] = ("uncertain",),
    events: tuple[dict[str, object], ...] = (),
    key_moment: float | None = None,
    duration: float = 4.0,
) -> int:
    """A scored submission straight into the database (the pipeline is tested elsewhere)."""
    now = utcnow()
    sub_id = int(
        conn.execute(
            schema.submissions.insert().values(
                patient_id=patient_id,
                dose_date=day,
                received_at=now,
                content_sha256=secrets.token_hex(32),
                size_bytes=1000,
                raw_key="raw/x.mp4",
                status=status,
                attempts=1,
                updated_at=now,
            )
        ).inserted_primary_key[0]
    )
    conn.execute(
        schema.submissions.update()
        .where(schema.submissions.c.id == sub_id)
        .values(
            review_key=f"review/{sub_id}.mp4",
            poster_key=f"poster/{sub_id}.jpg",
            duration_s=duration,
        )
    )
    days.touch(conn, [(patient_id, day)])
    if confidence is not None:
        decision = "auto_accept" if status == schema.AUTO_ACCEPTED else "review"
        conn.execute(
            schema.scores.insert().values(
                submission_id=sub_id,
                model_version="test-1",
                threshold_version="v1",
                confidence=confidence,
                decision=decision,
                face_visible=True,
                max_faces=1,
                key_moment_s=key_moment,
                events=list(events),
                quality={},
                reasons=list(reasons),
                created_at=now,
            )
        )
    return sub_id


@dataclass
class World:
    sup_a: Reviewer
    sup_b: Reviewer
    admin: Reviewer
    analyst: Reviewer
    patient_a: int
    patient_b: int
    today: date


def make_world(engine) -> World:  # type: ignore[no-untyped-def]
    """Two clinics with a supervisor and a patient each, an admin and an analyst."""
    today = patient_today("UTC")
    with engine.begin() as conn:
        a = accounts.ensure_clinic(conn, "Clinic A")
        b = accounts.ensure_clinic(conn, "Clinic B")
        people = {}
        for name, role, clinic in (
            ("sup-a", "supervisor", a),
            ("sup-b", "supervisor", b),
            ("admin", "admin", None),
            ("analyst", "analyst", None),
        ):
            uid, _ = accounts.ensure_user(conn, name, PASSWORD, role, clinic)
            people[name] = Reviewer(uid, name, role, clinic)
        pa = accounts.add_patient(conn, "A-001", a, today - timedelta(days=20))[0].id
        pb = accounts.add_patient(conn, "B-001", b, today - timedelta(days=20))[0].id
    return World(
        people["sup-a"], people["sup-b"], people["admin"], people["analyst"], pa, pb, today
    )


@pytest.fixture
def world(engine) -> World:  # type: ignore[no-untyped-def]
    return make_world(engine)


def ids(items: list[review_queue.QueueItem]) -> list[int]:
    return [i.submission_id for i in items]


def test_queue_ranks_by_confidence_within_the_clinic(engine, world: World) -> None:
    with engine.begin() as conn:
        low = add_sub(conn, world.patient_a, world.today, 0.2)
        high = add_sub(conn, world.patient_a, world.today, 0.9)
        mid = add_sub(conn, world.patient_a, world.today, 0.6)
        add_sub(conn, world.patient_a, world.today, 0.99, status=schema.AUTO_ACCEPTED)
        other = add_sub(conn, world.patient_b, world.today, 0.7)
    with engine.connect() as conn:
        assert ids(review_queue.queue(conn, world.sup_a)) == [high, mid, low]
        doubtful = QueueFilters(order="doubtful")
        assert ids(review_queue.queue(conn, world.sup_a, doubtful)) == [low, mid, high]
        assert ids(review_queue.queue(conn, world.sup_a, limit=1, offset=1)) == [mid]
        assert ids(review_queue.queue(conn, world.sup_b)) == [other]
        assert ids(review_queue.queue(conn, world.admin)) == [high, other, mid, low]
        assert review_queue.queue_size(conn, world.sup_a) == 3
        with pytest.raises(PermissionError):
            review_queue.queue(conn, world.analyst)


def test_queue_filters_by_patient_date_and_reason(engine, world: World) -> None:
    with engine.begin() as conn:
        pa2 = accounts.add_patient(conn, "A-002", world.sup_a.clinic_id, world.today)[0].id
        old = add_sub(conn, world.patient_a, world.today - timedelta(days=3), 0.5)
        dark = add_sub(conn, world.patient_a, world.today, 0.4, reasons=("too_dark", "blurry"))
        other = add_sub(conn, pa2, world.today, 0.3, reasons=("no_face",))
    with engine.connect() as conn:

        def find(**kw: object) -> list[int]:
            return ids(review_queue.queue(conn, world.sup_a, QueueFilters(**kw)))  # type: ignore[arg-type]

        assert find(patient_code="A-002") == [other]
        assert find(date_to=world.today - timedelta(days=1)) == [old]
        assert find(date_from=world.today) == [dark, other]
        assert find(reason="blurry") == [dark]
        assert find(reason="no_face", patient_code="A-001") == []
        assert review_queue.queue_size(conn, world.sup_a, QueueFilters(reason="too_dark")) == 1
    with pytest.raises(review_scope.ReviewError):
        QueueFilters(reason='x" OR 1=1')
    with pytest.raises(review_scope.ReviewError):
        QueueFilters(order="random")


def test_queue_ranks_by_the_newest_score(engine, world: World) -> None:
    with engine.begin() as conn:
        first = add_sub(conn, world.patient_a, world.today, 0.9)
        second = add_sub(conn, world.patient_a, world.today, 0.5)
        conn.execute(
            schema.scores.insert().values(
                submission_id=first,
                model_version="test-2",
                threshold_version="v1",
                confidence=0.1,
                decision="reject",
                face_visible=True,
                max_faces=1,
                events=[],
                quality={},
                reasons=["low_confidence"],
                created_at=utcnow(),
            )
        )
    with engine.connect() as conn:
        queued = review_queue.queue(conn, world.sup_a)
    assert ids(queued) == [second, first]
    assert queued[1].confidence == pytest.approx(0.1)
    assert queued[1].reasons == ("low_confidence",)


def test_neighbours_follow_queue_order_and_next_wraps(engine, world: World) -> None:
    with engine.begin() as conn:
        a = add_sub(conn, world.patient_a, world.today, 0.8)
        b = add_sub(conn, world.patient_a, world.today, 0.5)
        c = add_sub(conn, world.patient_a, world.today, 0.5)  # tie with b: id breaks it
        d = add_sub(conn, world.patient_a, world.today, 0.1)
    likely, doubtful = QueueFilters(), QueueFilters(order="doubtful")
    with engine.connect() as conn:
        walk = [a]
        while (step := review_queue.neighbour(conn, world.sup_a, likely, walk[-1], 1)) is not None:
            walk.append(step)
        assert walk == [a, b, c, d]
        assert review_queue.neighbour(conn, world.sup_a, likely, c, -1) == b
        assert review_queue.neighbour(conn, world.sup_a, doubtful, d, 1) == b
        assert review_queue.neighbour(conn, world.sup_a, doubtful, b, -1) == d
        assert review_queue.next_after(conn, world.sup_a, likely, d) == a  # wraps to the top
        assert review_queue.neighbour(conn, world.sup_b, likely, a, 1) is None


def test_verdict_changes_status_and_writes_review_and_audit(engine, world: World) -> None:
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.4)
    with engine.begin() as conn:
        with pytest.raises(review_scope.ReviewError, match="reason"):
            review_verdicts.record_verdict(conn, world.sup_a, sub, "reject")
        with pytest.raises(review_scope.NotFound):
            review_verdicts.record_verdict(conn, world.sup_b, sub, "accept")
        decision = review_verdicts.record_verdict(
            conn, world.sup_a, sub, "reject", "not the patient", note="  someone else in frame "
        )
    assert (decision.previous_status, decision.status) == (schema.REVIEW, schema.REJECTED)
    with engine.begin() as conn:
        with pytest.raises(review_scope.Conflict):
            review_verdicts.record_verdict(conn, world.sup_a, sub, "accept")
        row = conn.execute(
            select(schema.submissions.c.status, schema.submissions.c.reason).where(
                schema.submissions.c.id == sub
            )
        ).one()
        rv = conn.execute(select(schema.reviews)).one()
        entry = conn.execute(
            select(schema.audit_log).where(schema.audit_log.c.action == "review.reject")
        ).one()
    assert tuple(row) == (schema.REJECTED, "not the patient")
    assert (rv.reviewer_id, rv.verdict, rv.note, rv.previous_status) == (
        world.sup_a.id,
        "reject",
        "someone else in frame",
        schema.REVIEW,
    )
    assert (entry.actor, entry.target) == ("sup-a", f"submission:{sub}")
    assert entry.detail["reason"] == "not the patient" and entry.detail["note"] is True


def test_counts_waiting_done_today_and_auto_today(engine, world: World) -> None:
    with engine.begin() as conn:
        subs = [add_sub(conn, world.patient_a, world.today, 0.5) for _ in range(3)]
        add_sub(conn, world.patient_a, world.today, 0.97, status=schema.AUTO_ACCEPTED)
        add_sub(conn, world.patient_b, world.today, 0.97, status=schema.AUTO_ACCEPTED)
        review_verdicts.record_verdict(conn, world.sup_a, subs[0], "accept")
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    with engine.connect() as conn:
        assert review_queue.counts(conn, world.sup_a, midnight) == review_queue.Counts(2, 1, 1)
        assert review_queue.counts(conn, world.admin, midnight) == review_queue.Counts(2, 1, 2)
        later = utcnow() + timedelta(minutes=1)
        assert review_queue.counts(conn, world.sup_a, later) == review_queue.Counts(2, 0, 0)


def test_undo_restores_the_last_decision_of_that_reviewer(engine, world: World) -> None:
    with engine.begin() as conn:
        first = add_sub(conn, world.patient_a, world.today, 0.9)
        second = add_sub(conn, world.patient_a, world.today, 0.8)
        review_verdicts.record_verdict(conn, world.sup_a, first, "accept")
        review_verdicts.record_verdict(conn, world.sup_a, second, "unclear")
    with engine.begin() as conn:
        with pytest.raises(review_scope.ReviewError, match="no decision"):
            review_verdicts.undo_last(conn, world.sup_b)
        assert review_verdicts.undo_last(conn, world.sup_a) == [second]
    with engine.begin() as conn:
        rows = conn.execute(select(schema.submissions.c.id, schema.submissions.c.status))
        status = {r.id: r.status for r in rows}
        assert status == {first: schema.ACCEPTED, second: schema.REVIEW}
        undone = (
            conn.execute(
                select(schema.reviews.c.submission_id).where(
                    schema.reviews.c.undone_at.is_not(None)
                )
            )
            .scalars()
            .all()
        )
        assert undone == [second]
        entry = conn.execute(
            select(schema.audit_log).where(schema.audit_log.c.action == "review.undo")
        ).one()
        assert (entry.actor, entry.target) == ("sup-a", f"submission:{second}")
        assert review_verdicts.undo_last(conn, world.sup_a) == [first]  # then the one before
        assert review_queue.queue_size(conn, world.sup_a) == 2


def test_undo_refuses_when_the_video_changed_since(engine, world: World) -> None:
    with engine.begin() as conn:
        sub = add_sub(conn, world.patient_a, world.today, 0.9)
        review_verdicts.record_verdict(conn, world.sup_a, sub, "accept")
        conn.execute(schema.submissions.update().values(status=schema.REJECTED))
    with engine.begin() as conn, pytest.raises(review_scope.Conflict):
        review_verdicts.undo_last(conn, world.sup_a)


def test_bulk_accept_counts_first_and_holds_back_quality_problems(engine, world: World) -> None:
    with engine.begin() as conn:
        high = [add_sub(conn, world.patient_a, world.today, c) for c in (0.95, 0.92, 0.9)]
        faceless = add_sub(conn, world.patient_a, world.today, 0.96, reasons=("no_face",))
        low = add_sub(conn, world.patient_a, world.today, 0.89)
        add_sub(conn, world.patient_b, world.today, 0.99)
        preview = review_bulk.bulk_preview(conn, world.sup_a, 0.9)
        assert (preview.count, preview.held_back, preview.upto_id) == (3, 1, max(high))
        late = add_sub(conn, world.patient_a, world.today, 0.97)  # arrives after the preview
        with pytest.raises(review_scope.ReviewError):
            review_bulk.bulk_preview(conn, world.sup_a, 1.5)
    with engine.begin() as conn:
        assert review_bulk.bulk_accept(conn, world.sup_a, 0.9, preview.upto_id) == 3
    with engine.begin() as conn:
        assert ids(review_queue.queue(conn, world.sup_a)) == [late, faceless, low]
        assert (
            conn.execute(
                select(schema.submissions.c.status).where(schema.submissions.c.id.in_(high))
            )
            .scalars()
            .all()
            == [schema.ACCEPTED] * 3
        )
        actions = conn.execute(
            select(schema.audit_log.c.action, schema.audit_log.c.target).where(
                schema.audit_log.c.action.like("review.%")
            )
        ).all()
        assert sorted(t for a, t in actions if a == "review.accept") == sorted(
            f"submission:{i}" for i in high
        )
        assert ("review.bulk_accept", "bulk:3") in actions
        # One undo takes back the whole bulk accept.
        assert sorted(review_verdicts.undo_last(conn, world.sup_a)) == sorted(high)
        assert review_queue.queue_size(conn, world.sup_a) == 6


def test_spot_check_overturn_and_agreement(engine, world: World) -> None:
    with engine.begin() as conn:
        autos = [
            add_sub(conn, world.patient_a, world.today, 0.97, status=schema.AUTO_ACCEPTED)
            for _ in range(3)
        ]
        waiting = add_sub(conn, world.patient_a, world.today, 0.5)
        add_sub(conn, world.patient_b, world.today, 0.97, status=schema.AUTO_ACCEPTED)
        sample = review_spotchecks.spot_check_sample(conn, world.sup_a, size=10)
        assert sorted(ids(sample)) == autos
        assert review_spotchecks.agreement(conn, world.sup_a) == review_spotchecks.Agreement(0, 0)
        review_verdicts.record_verdict(conn, world.sup_a, autos[0], "accept")
        review_verdicts.overturn(conn, world.sup_a, autos[1], "reject", "not the patient")
        with pytest.raises(review_scope.Conflict):
            review_verdicts.overturn(conn, world.sup_a, waiting)
        review_verdicts.record_verdict(conn, world.sup_a, waiting, "accept")  # not a spot check
    with engine.connect() as conn:
        figures = review_spotchecks.agreement(conn, world.sup_a)
        assert (figures.checked, figures.agreed, figures.overturned) == (2, 1, 1)
        assert figures.rate == pytest.approx(0.5)
        assert review_spotchecks.agreement(conn, world.sup_b).rate is None
        assert ids(review_spotchecks.spot_check_sample(conn, world.sup_a, size=10)) == [autos[2]]
        assert ids(review_spotchecks.auto_accepted(conn, world.sup_a)) == [autos[2]]
        old = utcnow() + timedelta(days=8)
        assert review_spotchecks.spot_check_sample(conn, world.sup_a, days=7, now=old) == []


def test_calendar_marks_each_regimen_day(engine, world: World) -> None:
    today = world.today
    with engine.begin() as conn:
        clinic = world.sup_a.clinic_id
        pid = accounts.add_patient(
            conn, "A-CAL", clinic, today - timedelta(days=5), "UTC", length_days=8
        )[0].id
        start = today - timedelta(days=5)
        taken = add_sub(conn, pid, start, 0.9, status=schema.ACCEPTED)
        add_sub(conn, pid, start, 0.2, status=schema.REJECTED)  # a second try; taken wins
        rejected = add_sub(conn, pid, start + timedelta(days=1), 0.2, status=schema.REJECTED)
        unclear = add_sub(conn, pid, start + timedelta(days=2), 0.4, status=schema.UNCLEAR)
        pending = add_sub(conn, pid, start + timedelta(days=3), 0.5)
        auto = add_sub(conn, pid, today, 0.95, status=schema.AUTO_ACCEPTED)
    with engine.connect() as conn:
        cal = review_patients.calendar(conn, world.sup_a, pid)
        with pytest.raises(review_scope.NotFound):
            review_patients.calendar(conn, world.sup_b, pid)
    states = [(d.state, d.is_today) for d in cal.days]
    assert states == [
        ("taken", False),
        ("rejected", False),
        ("unclear", False),
        ("pending", False),
        ("missed", False),
        ("taken", True),
        ("not_due", False),
        ("not_due", False),
    ]
    assert cal.days[0].submission_ids[0] == taken and len(cal.days[0].submission_ids) == 2
    assert [cal.days[i].submission_ids for i in (1, 2, 3, 5)] == [
        (rejected,),
        (unclear,),
        (pending,),
        (auto,),
    ]
    # Five ended days plus today, which counts once taken (vot.adherence.rules's definition).
    assert (cal.adherence.taken, cal.adherence.expected) == (2, 6)


def test_item_details_and_still_times(engine, world: World) -> None:
    events = ({"type": "hand_to_mouth", "start_s": 1.0, "end_s": 2.0, "score": 0.8},)
    with engine.begin() as conn:
        sub = add_sub(
            conn,
            world.patient_a,
            world.today,
            0.6,
            events=events,
            key_moment=1.25,
            reasons=("face_cut_off", "new_code"),
        )
        short = add_sub(
            conn, world.patient_a, world.today, 0.6, events=events, key_moment=1.25, duration=1.4
        )
        review_verdicts.record_verdict(conn, world.sup_a, sub, "unclear", note="ask again")
    with engine.connect() as conn:
        found = review_item.item(conn, world.admin, sub)
        with pytest.raises(review_scope.NotFound):
            review_item.item(conn, world.sup_b, sub)
    assert found.patient_code == "A-001" and found.status == schema.UNCLEAR
    assert found.events[0].label == "Hand to mouth"
    assert found.still_times_ms == (1250, 1500)
    with engine.connect() as conn:
        assert review_item.item(conn, world.sup_a, short).still_times_ms == (
            1250,
        )  # not past the end
    assert [(h.reviewer, h.verdict, h.reason) for h in found.history] == [
        ("sup-a", "unclear", review_verdicts.UNCLEAR_REASON)
    ]
    assert [review_queue.reason_text(r) for r in found.reasons] == [
        review_queue.REASON_TEXT["face_cut_off"],
        "New code.",
    ]


def test_migration_3_adds_the_review_indexes_to_an_existing_database(engine) -> None:
    names = (
        "ix_submissions_status_updated",
        "ix_submissions_queue",
        "ix_scores_rank",
        "ix_reviews_reviewer",
        "ix_reviews_created",
        "ix_reviews_previous_status",
    )
    with engine.begin() as conn:
        for name in names:
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("DELETE FROM schema_migrations WHERE version >= 3"))  # back to v2
    assert upgrade(engine)[0] == 3
    with engine.connect() as conn:
        found = {
            ix["name"]
            for table in ("submissions", "scores", "reviews")
            for ix in inspect(conn).get_indexes(table)
        }
    assert set(names) <= found
