"""The quarterly WHO outcome cohort as a DHIS2 data value set (vot.reporting), on SQLite and
PostgreSQL: the cohort is the courses that started in the period, the cohort size equals the
sum of the outcomes (DHIS2's validation rule), the codes and the org-unit map are configurable
and checked; ``vot export dhis2 --push`` against DHIS2-like servers started by the test on
loopback: one that accepts, and ones that refuse, which leave nothing imported or written."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, func, select

from tests.conftest import run_cli
from vot import accounts, schema
from vot.adherence import dashboard, outcomes
from vot.adherence.outcomes import OUTCOMES
from vot.reporting import ReportingError, dhis2, period, push
from vot.reporting.cohort import CohortCount, cohort
from vot.treatment import courses
from vot.treatment.regimens import builtins

NOW = datetime(2027, 6, 1, 12, tzinfo=UTC)
Q3 = period.parse("2026Q3")
MAP = "clinic,org_unit\nNorth Clinic,OU_NORTH01\nSouth Clinic,OU_SOUTH01\nWest Clinic,OU_SOUTH01\n"
# (clinic, start, regimen, outcome and its day, a regimen change (regimen, day))
COURSES: list[tuple[str, date, str, tuple[str, date] | None, tuple[str, date] | None]] = [
    ("North Clinic", date(2026, 7, 1), "6HRZE", ("cured", date(2027, 1, 10)), None),
    ("North Clinic", date(2026, 8, 15), "6HRZE", ("treatment_completed", date(2027, 3, 1)), None),
    ("North Clinic", date(2026, 9, 30), "6HRZE-TIW", None, None),  # no outcome yet
    ("North Clinic", date(2026, 6, 30), "6HRZE", None, None),  # the quarter before
    ("North Clinic", date(2026, 10, 1), "6HRZE", None, None),  # the quarter after
    ("North Clinic", date(2026, 7, 10), "3HP", None, None),  # preventive: not reported
    ("South Clinic", date(2026, 7, 20), "BPaLM", ("died", date(2026, 9, 1)), None),
    ("South Clinic", date(2026, 8, 1), "6HRZE", ("lost_to_follow_up", date(2026, 11, 1)), None),
    ("South Clinic", date(2026, 9, 1), "6HRZE", ("treatment_failed", date(2027, 2, 1)), None),
    ("South Clinic", date(2026, 8, 10), "6HRZE", None, ("BPaLM", date(2026, 8, 10))),
    ("South Clinic", date(2026, 7, 15), "6HRZE", None, ("DR-9M", date(2026, 8, 20))),
    ("West Clinic", date(2026, 7, 5), "6HRZE", None, None),  # same org unit as South
]
EXPECTED = {
    ("OU_NORTH01", "TB_NEWREL_LABCONF"): {"cured": 1, "treatment_completed": 1, "not_evaluated": 1},
    ("OU_SOUTH01", "TB_NEWREL_LABCONF"): {
        "lost_to_follow_up": 1,
        "treatment_failed": 1,
        "not_evaluated": 2,
    },
    ("OU_SOUTH01", "TB_MDR"): {"died": 1, "not_evaluated": 1},
}


def build(conn: Connection) -> None:
    clinics = {
        name: accounts.ensure_clinic(conn, name, district)
        for name, district in (("North Clinic", "Lakeside"), ("South Clinic", "Hills"))
        + (("West Clinic", "Hills"), ("East Clinic", "Hills"))
    }
    for n, (clinic, start, regimen, outcome, change) in enumerate(COURSES):
        pid = accounts.add_patient(conn, f"C-{n}", clinics[clinic], start, regimen_id=regimen)[0].id
        if change:
            courses.change_regimen(conn, pid, change[0], change[1], "sup", today=NOW.date())
        if outcome:
            outcomes.record(conn, pid, outcome[0], "sup", outcome[1], now=NOW)


@pytest.fixture
def world(engine):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        build(conn)
    return engine


def values(payload: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    return {
        (v["orgUnit"], v["dataElement"], v["categoryOptionCombo"]): int(v["value"])
        for v in payload["dataValues"]
    }


def mapped(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "map.csv").write_text(MAP)
    return dhis2.load_org_units(tmp_path / "map.csv")


def test_the_cohort_is_the_quarter_and_its_size_is_the_sum_of_outcomes(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    codes = dhis2.default_codes()
    with world.connect() as conn:
        counts = cohort(conn, Q3)
    found = dhis2.data_value_set(counts, Q3, codes, mapped(tmp_path))
    assert (found.courses, found.org_units, found.left_out) == (9, 2, {"3HP": 1})
    got = values(found.payload)
    assert len(got) == len(found.payload["dataValues"]) == 3 * (1 + len(OUTCOMES))
    for (unit, element), outcome_counts in EXPECTED.items():
        for outcome in OUTCOMES:
            combo = codes.outcomes[outcome]
            assert got[(unit, element, combo)] == outcome_counts.get(outcome, 0), outcome
        assert got[(unit, f"{element}_COH", "DEFAULT")] == sum(outcome_counts.values())
    assert dhis2.cohort_rule_breaches(found.payload, codes) == []
    assert {v["period"] for v in found.payload["dataValues"]} == {"2026Q3"}
    assert found.payload["orgUnitIdScheme"] == "UID"
    broken = json.loads(json.dumps(found.payload))
    broken["dataValues"][1]["value"] = str(int(broken["dataValues"][1]["value"]) + 1)
    assert dhis2.cohort_rule_breaches(broken, codes) == [
        "OU_NORTH01, new and relapse, bacteriologically confirmed (first-line treatment): "
        "cohort 3 but outcomes add up to 4"
    ]


def test_the_cohort_is_the_dashboards_cohort_of_the_quarter(world) -> None:  # type: ignore[no-untyped-def]
    with world.connect() as conn:
        counts = cohort(conn, Q3)
        (board,) = [row for row in dashboard.cohorts(conn) if row["cohort"] == "2026Q3"]
    by_outcome: Counter[str] = Counter()
    for count in counts:
        by_outcome[count.outcome] += count.courses
    assert by_outcome.total() == board["started"] == 10  # preventive courses included here
    assert by_outcome["not_evaluated"] == board["not_evaluated"] + board["no_outcome"]
    assert all(by_outcome[o] == board[o] for o in OUTCOMES if o != "not_evaluated")


def test_without_a_map_the_org_units_are_clinic_names_and_a_partial_map_is_refused(
    world, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with world.begin() as conn:
        accounts.add_patient(conn, "E-1", accounts.ensure_clinic(conn, "East Clinic"), Q3.first)
        counts = cohort(conn, Q3)
    named = dhis2.data_value_set(counts, Q3, dhis2.default_codes())
    assert named.payload["orgUnitIdScheme"] == "NAME"
    assert {v["orgUnit"] for v in named.payload["dataValues"]} == {
        "North Clinic",
        "South Clinic",
        "West Clinic",
        "East Clinic",
    }
    with pytest.raises(ReportingError, match="no org unit for clinic\\(s\\) 'East Clinic'"):
        dhis2.data_value_set(counts, Q3, dhis2.default_codes(), mapped(tmp_path))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.sampled_from(sorted(builtins())),
            st.sampled_from(OUTCOMES),
            st.integers(1, 50),
        ),
        max_size=30,
    )
)
def test_the_cohort_rule_holds_for_any_cohort(rows) -> None:  # type: ignore[no-untyped-def]
    codes = dhis2.default_codes()
    counts = [CohortCount(c, "", builtins()[r], o, n) for c, r, o, n in rows]
    found = dhis2.data_value_set(counts, Q3, codes, {"A": "OU1", "B": "OU2", "C": "OU1"})
    assert dhis2.cohort_rule_breaches(found.payload, codes) == []
    cohorts = sum(v for (_, de, _), v in values(found.payload).items() if de.endswith("_COH"))
    preventive = sum(n for _, r, _, n in rows if builtins()[r].kind == "preventive")
    assert cohorts == found.courses == sum(n for *_, n in rows) - preventive
    assert sum(found.left_out.values()) == preventive


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("2026Q3", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026Q4", date(2026, 10, 1), date(2026, 12, 31)),
        ("2025", date(2025, 1, 1), date(2025, 12, 31)),
    ],
)
def test_periods(text: str, first: date, last: date) -> None:
    assert period.parse(text) == period.Period(text, first, last)


@pytest.mark.parametrize("text", ["2026Q5", "2026Q0", "Q3-2026", "2026q3", "26Q1", "", "2026-07"])
def test_malformed_periods_are_refused(text: str) -> None:
    with pytest.raises(ReportingError, match="a period is a quarter like 2026Q3"):
        period.parse(text)


def test_codes_replace_the_defaults_key_by_key_and_are_checked() -> None:
    base = json.loads(dhis2.DEFAULT_CODES_FILE.read_text())
    mine = dhis2.parse_codes({"outcomes": {**base["outcomes"], "cured": "MY-CURED"}}, base)
    assert mine.outcomes["cured"] == "MY-CURED" and mine.reports == dhis2.default_codes().reports
    tpt = {"name": "TPT", "kinds": ["preventive"], "cohort": "TPT_COH", "outcomes": "TPT"}
    assert dhis2.parse_codes({"reports": [tpt]}, base).report_for(builtins()["3HP"]) is not None
    for bad, message in (
        ({"colour": 1}, "unknown key\\(s\\) colour"),
        ({"outcomes": {"cured": "X"}}, "codes.outcomes: missing died"),
        ({"idSchemes": {**base["idSchemes"], "orgUnit": "SHORTNAME"}}, "idSchemes.orgUnit"),
        ({"reports": []}, "one report or more"),
        ({"reports": [{**tpt, "kinds": ["tpt"]}]}, "kinds may hold only"),
        ({"reports": [{"name": "x", "cohort": "y", "kinds": ["treatment"]}]}, "needs outcomes"),
        ({"cohortCategoryOptionCombo": ""}, "cohortCategoryOptionCombo must be text"),
    ):
        with pytest.raises(ReportingError, match=message):
            dhis2.parse_codes(bad, base)


def test_org_unit_maps_csv_and_json_and_their_errors(tmp_path: Path) -> None:
    csv_map, json_map = tmp_path / "map.csv", tmp_path / "map.json"
    csv_map.write_text(MAP + "\n")
    json_map.write_text(json.dumps({"North Clinic": "OU_NORTH01"}))
    assert dhis2.load_org_units(csv_map)["West Clinic"] == "OU_SOUTH01"
    assert dhis2.load_org_units(json_map) == {"North Clinic": "OU_NORTH01"}
    for name, content, message in (
        ("a.csv", "name,unit\nA,B\n", "must start with a header clinic,org_unit"),
        ("b.csv", "clinic,org_unit\nA,B\nA,C\n", "line 3: 'A' is mapped twice"),
        ("c.csv", "clinic,org_unit\nA,\n", "line 2: a clinic needs an org unit"),
        ("d.csv", "clinic,org_unit\nA\n", "line 2: not clinic,org_unit"),
        ("e.json", "[1, 2]", "must be a JSON object"),
        ("f.json", "{", "is not JSON"),
    ):
        (tmp_path / name).write_text(content)
        with pytest.raises(ReportingError, match=message):
            dhis2.load_org_units(tmp_path / name)
    (tmp_path / "g.csv").write_bytes(b"\xff\xfe\x00bad")
    for unreadable, message in (
        (tmp_path / "none.csv", "No such file"),
        (tmp_path / "g.csv", "UTF-8"),
    ):
        with pytest.raises(ReportingError, match=f"cannot read the org-unit map .*{message}"):
            dhis2.load_org_units(unreadable)


# A DHIS2 stand-in on loopback: it records each request and answers with ``reply``.


@dataclass
class Seen:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dry_runs(self) -> list[str]:
        return [r["query"]["dryRun"][0] for r in self.requests]


Reply = Callable[[dict[str, Any]], tuple[int, Any]]
PAYLOAD = {
    "period": "2026Q3",
    "dataElementIdScheme": "CODE",
    "categoryOptionComboIdScheme": "CODE",
    "orgUnitIdScheme": "UID",
    "dataValues": [],
}


@contextmanager
def dhis2_server(reply: Reply) -> Iterator[Seen]:
    seen = Seen("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            parts = urlsplit(self.path)
            got = {
                "path": parts.path,
                "query": parse_qs(parts.query),
                "auth": self.headers["Authorization"],
                "body": json.loads(body),
            }
            seen.requests.append(got)
            status, answer = reply(got)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.url = f"http://127.0.0.1:{server.server_address[1]}/dhis"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def accepting(got: dict[str, Any]) -> tuple[int, Any]:
    """DHIS2 2.38+: a web message wrapping the import summary."""
    n = len(got["body"]["dataValues"])
    summary = {
        "responseType": "ImportSummary",
        "status": "SUCCESS",
        "importCount": {"imported": n, "updated": 0, "ignored": 0, "deleted": 0},
        "conflicts": [],
        "dataSetComplete": "false",
    }
    return 200, {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK", "response": summary}


def refusing(got: dict[str, Any]) -> tuple[int, Any]:
    """DHIS2 2.38+ refusing: 409, status ERROR, one conflict per unknown org unit."""
    conflict = {"object": "OU_SOUTH01", "value": "Org unit not found or not accessible"}
    summary = {"responseType": "ImportSummary", "status": "ERROR", "conflicts": [conflict] * 2}
    return 409, {"httpStatus": "Conflict", "status": "ERROR", "message": "x", "response": summary}


def cli(settings, tmp_path: Path, *args: str, password: str | None = "district"):  # type: ignore[no-untyped-def]
    (tmp_path / "map.csv").write_text(MAP)
    env = {
        "VOT_DATA_DIR": str(settings.data_dir),
        "VOT_DATABASE_URL": settings.database_url,
        "VOT_SECRET_KEY": "t",
    }
    stdin = f"{password}\n" if password is not None else ""
    return run_cli("export", "dhis2", "--period", "2026Q3", *args, env=env, stdin=stdin)


def pushes(conn: Connection) -> int:
    log = schema.audit_log
    query = select(func.count()).where(log.c.action == "export.dhis2.push")
    return int(conn.execute(query).scalar_one())


def test_push_sends_a_dry_run_then_the_data(settings, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "sent.json"
    with dhis2_server(accepting) as seen:
        args = ("--org-unit-map", str(tmp_path / "map.csv"), "--output", str(out))
        done = cli(
            settings, tmp_path, *args, "--push", seen.url, "--user", "admin", "--password-stdin"
        )
    assert done.returncode == 0, done.stderr
    assert "DHIS2 import summary: SUCCESS; imported 21, updated 0" in done.stdout
    assert seen.dry_runs == ["true", "false"]
    first, second = seen.requests
    assert first["path"] == "/dhis/api/dataValueSets" and first["body"] == second["body"]
    assert first["auth"] == "Basic " + base64.b64encode(b"admin:district").decode()
    assert first["query"]["dataElementIdScheme"] == ["CODE"]
    assert first["query"]["orgUnitIdScheme"] == ["UID"]
    assert json.loads(out.read_text()) == second["body"]
    assert dhis2.cohort_rule_breaches(second["body"], dhis2.default_codes()) == []
    with world.connect() as conn:
        assert pushes(conn) == 1


def test_a_refusal_is_one_line_and_changes_nothing(settings, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "sent.json"
    with dhis2_server(refusing) as seen:
        args = ("--org-unit-map", str(tmp_path / "map.csv"), "--output", str(out), "--push")
        refused = cli(settings, tmp_path, *args, seen.url, "--user", "admin", "--password-stdin")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        "vot: error: DHIS2 refused the data (HTTP 409): OU_SOUTH01: Org unit not found or not "
        "accessible\n"
    )
    assert seen.dry_runs == ["true"]  # the dry run refused: the data were never sent for real
    assert not out.exists()
    with world.connect() as conn:
        assert pushes(conn) == 0


def _warning_with_conflicts(got: dict[str, Any]) -> tuple[int, Any]:
    """DHIS2 before 2.38: the bare import summary, 200 even when some values are refused."""
    conflict = {"object": "TB_MDR", "value": "Data element not found or not accessible"}
    return 200, {"responseType": "ImportSummary", "status": "WARNING", "conflicts": [conflict]}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (_warning_with_conflicts, "in the dry run: TB_MDR: Data element not found"),
        (lambda got: (401, b"<html>Unauthorized</html>"), "(HTTP 401): <html>Unauthorized</html>"),
        (lambda got: (302, b""), "redirected the request (HTTP 302)"),
        (lambda got: (200, b"<html>login</html>"), "not JSON"),
        (lambda got: (200, {"hello": "world"}), "not an import summary"),
    ],
)
def test_push_refusals(reply: Reply, message: str) -> None:
    with dhis2_server(reply) as seen, pytest.raises(push.PushError) as caught:
        push.push(seen.url, "admin", "district", PAYLOAD)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert seen.dry_runs == ["true"]


def test_push_needs_a_usable_url_credentials_and_a_full_map(
    settings, world, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(push.PushError, match="must use https"):
        push.endpoint("http://dhis2.example.org")
    with pytest.raises(push.PushError, match="not in the URL"):
        push.endpoint("https://admin:district@dhis2.example.org")
    with pytest.raises(push.PushError, match="must be like https://"):
        push.endpoint("ftp://dhis2.example.org")
    with pytest.raises(push.PushError, match="cannot reach DHIS2"):
        push.push("http://127.0.0.1:9", "admin", "district", PAYLOAD)
    with world.begin() as conn:
        east = accounts.ensure_clinic(conn, "East Clinic")
        accounts.add_patient(conn, "E-1", east, date(2026, 8, 1))
    mapped = ("--org-unit-map", str(tmp_path / "map.csv"))
    login = ("--push", "https://dhis2.example.org", "--user", "admin", "--password-stdin")
    for args, message in (
        ((*mapped, *login), "no org unit for clinic(s) 'East Clinic' in the org-unit map"),
        (login, "--push needs --org-unit-map FILE"),
        ((*mapped, "--push", "https://dhis2.example.org"), "--push needs --user NAME and"),
        (("--org-unit-map", str(tmp_path / "absent.csv")), "cannot read the org-unit map"),
        (("--codes", str(tmp_path / "map.csv")), "is not JSON"),
    ):
        bad = cli(settings, tmp_path, *args)
        assert bad.returncode == 1 and bad.stderr.startswith("vot: error:"), bad.stderr
        assert message in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
    no_password = cli(settings, tmp_path, *mapped, *login, password=None)
    assert "no password on standard input" in no_password.stderr


def test_cli_writes_the_payload_without_pushing(settings, world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shown = cli(settings, tmp_path, "--org-unit-map", str(tmp_path / "map.csv"))
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    assert Counter(v["orgUnit"] for v in payload["dataValues"]) == {
        "OU_NORTH01": 7,
        "OU_SOUTH01": 14,
    }
    assert "9 course(s) that started in the period" in shown.stderr
    assert "left out (no report covers their regimen): 3HP: 1" in shown.stderr
    bad = cli(settings, tmp_path, "--period", "2026Q5")
    assert bad.returncode == 1 and bad.stderr.startswith("vot: error: a period is a quarter")
