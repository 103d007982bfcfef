"""A manager configures the warning ladder: on the policies page, through the API, in the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from sla.models import SlaPolicy, WarningThreshold
from tests.schema_check import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy() -> SlaPolicy:
    return SlaPolicy.objects.get(tier="enterprise", severity="P1")


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


RUNGS = [
    {"target": "resolution", "percent": 50, "notify": ["assignee"], "webhook": False},
    {"target": "resolution", "percent": 75, "notify": ["team_lead"], "webhook": False},
    {"target": "resolution", "percent": 90, "notify": ["managers"]},
    {"target": "resolution", "percent": 100, "notify": ["duty_manager"], "webhook": True},
]


def test_a_manager_replaces_a_policys_ladder_through_the_api(manager, agent, policy):
    url = f"/api/sla/policies/{policy.pk}/ladder/"
    assert _api(agent).get(url).json() == {"policy": policy.pk, "thresholds": []}
    assert _api(agent).put(url, {"thresholds": RUNGS}, format="json").status_code == 403
    response = _api(manager).put(url, {"thresholds": RUNGS}, format="json")
    assert response.status_code == 200
    assert_matches_schema(response, "/api/sla/policies/{id}/ladder/", "put")
    assert_matches_schema(_api(agent).get(url), "/api/sla/policies/{id}/ladder/", "get")
    assert response.json()["thresholds"][2] == {
        "target": "resolution",
        "percent": 90,
        "notify": ["managers"],
        "webhook": True,  # the default
    }
    assert WarningThreshold.objects.filter(policy=policy).count() == 4
    response = _api(manager).put(url, {"thresholds": RUNGS[:1]}, format="json")
    assert [t["percent"] for t in response.json()["thresholds"]] == [50]


@pytest.mark.parametrize(
    ("rung", "field"),
    [
        ({"target": "resolution", "percent": 101}, "percent"),
        ({"target": "resolution", "percent": 50.5}, "percent"),
        ({"target": "lunch", "percent": 50}, "target"),
        ({"target": "resolution", "percent": 50, "notify": ["ceo"]}, "notify"),
    ],
)
def test_an_invalid_rung_is_a_400_naming_the_field(manager, policy, rung, field):
    response = _api(manager).put(
        f"/api/sla/policies/{policy.pk}/ladder/", {"thresholds": [rung]}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["thresholds"]["0"]  # by rung, then by field


def test_a_rung_telling_nobody_is_a_400_with_the_reason(manager, policy):
    rung = {"target": "resolution", "percent": 50, "notify": [], "webhook": False}
    response = _api(manager).put(
        f"/api/sla/policies/{policy.pk}/ladder/", {"thresholds": [rung]}, format="json"
    )
    assert response.status_code == 400
    assert "tells nobody" in str(response.json())


def _ladder_post(rows, extra=0):
    data = {"t-TOTAL_FORMS": str(len(rows) + extra), "t-INITIAL_FORMS": "0"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"t-{i}-{key}"] = value
    return data


def test_a_manager_edits_the_ladder_on_its_page_and_sees_it_on_the_policies_page(
    client, manager, agent, policy
):
    url = reverse("sla:ladder", args=[policy.pk])
    client.force_login(agent)
    assert client.get(url).status_code == 403
    client.force_login(manager)
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        _ladder_post(
            [
                {"target": "resolution", "percent": "50", "notify": ["assignee"]},
                {
                    "target": "resolution",
                    "percent": "90",
                    "notify": ["managers", "team_lead"],
                    "webhook": "on",
                },
                {"target": "resolution", "percent": "100", "notify": ["duty_manager"], "webhook": "on"},
            ],
            extra=2,  # the empty rows are ignored
        ),
    )
    assert response.status_code == 302
    rows = WarningThreshold.objects.filter(policy=policy).order_by("percent")
    assert [(r.percent, r.notify, r.webhook) for r in rows] == [
        (50, ["assignee"], False),
        (90, ["managers", "team_lead"], True),
        (100, ["duty_manager"], True),
    ]
    page = client.get(reverse("sla:policies")).content.decode()
    assert "Resolution: 50 %, 90 %, breach" in page
    assert "First response: 75 %" in page  # a target without a ladder: its single warning


def test_a_half_filled_row_or_a_bad_rung_is_shown_on_the_ladder_page(client, manager, policy):
    client.force_login(manager)
    url = reverse("sla:ladder", args=[policy.pk])
    response = client.post(url, _ladder_post([{"target": "resolution", "percent": ""}]))
    assert response.status_code == 400
    assert "Give both the target and the percentage" in response.content.decode()
    response = client.post(url, _ladder_post([{"target": "resolution", "percent": "60"}]))
    assert response.status_code == 400
    assert "tells nobody" in response.content.decode()
    assert not WarningThreshold.objects.exists()


def test_an_admin_edits_the_ladder_inline_with_the_policy(client, admin_user, policy):
    client.force_login(admin_user)
    url = reverse("admin:sla_slapolicy_change", args=[policy.pk])
    assert client.get(url).status_code == 200
    data = {
        "tier": policy.tier,
        "severity": policy.severity,
        "warning_ratio": "0.75",
        "first_response_minutes": "15",
        "triage_minutes": "30",
        "update_cadence_minutes": "30",
        "resolution_minutes": "480",
        "thresholds-TOTAL_FORMS": "2",
        "thresholds-INITIAL_FORMS": "0",
        "thresholds-0-target": "resolution",
        "thresholds-0-percent": "80",
        "thresholds-0-notify": ["managers"],
        "thresholds-1-target": "resolution",
        "thresholds-1-percent": "80",
        "thresholds-1-notify": ["assignee"],
    }
    response = client.post(url, data)
    assert response.status_code == 200  # the same percentage twice
    assert "duplicate data" in response.content.decode()
    assert not WarningThreshold.objects.exists()
    data["thresholds-1-percent"] = "90"
    data["thresholds-1-notify"] = []
    response = client.post(url, data)  # a rung telling nobody (the service's rule)
    assert "tells nobody" in response.content.decode()
    data["thresholds-1-percent"] = "100"
    data["thresholds-1-notify"] = ["assignee"]
    assert client.post(url, data).status_code == 302
    assert sorted(WarningThreshold.objects.values_list("percent", "notify")) == [
        (80, ["managers"]),
        (100, ["assignee"]),
    ]


def test_a_cases_clocks_show_their_ladder_in_the_api(agent, organisation, contact):
    import datetime as dt

    from cases import services as case_services
    from sla import services
    from sla.models import Target
    from tests.factories import at

    t0, minute = at(2026, 3, 4, 10, 0), dt.timedelta(minutes=1)
    p2 = SlaPolicy.objects.get(tier="enterprise", severity="P2")
    services.save_ladder(
        p2, thresholds=[services.ThresholdInput(Target.FIRST_RESPONSE, p, ["assignee"]) for p in (50, 75, 90)]
    )
    case = case_services.create_case(
        title="Slow", organisation=organisation, requester=contact, severity="P2", assignee=agent,
        actor=agent, now=t0,
    )  # fmt: skip
    services.record_due_warnings_and_breaches(now=t0 + 46 * minute)
    response = _api(agent).get(f"/api/cases/{case.key}/sla/")
    assert_matches_schema(response, "/api/cases/{key}/sla/", "get")
    clocks = {c["target"]: c for c in response.json()["clocks"]}
    assert clocks["first_response"]["warnings"] == [
        {"percent": 50, "warn_at": "2026-03-04T10:30:00Z", "warned_at": "2026-03-04T10:46:00Z"},
        {"percent": 75, "warn_at": "2026-03-04T10:45:00Z", "warned_at": "2026-03-04T10:46:00Z"},
        {"percent": 90, "warn_at": "2026-03-04T10:54:00Z", "warned_at": None},
    ]
    assert [w["percent"] for w in clocks["triage"]["warnings"]] == [75]  # no ladder: one warning
