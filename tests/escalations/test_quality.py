"""The quality rubric: each criterion, scored from model values and from raw form strings alike."""

from __future__ import annotations

import pytest

from escalations.quality import MAX_SCORE, assess, numbered_steps
from tests.escalations.conftest import complete_package


def _missing(fields) -> dict[str, str]:
    return {m.criterion: m.message for m in assess(fields).missing}


def test_a_complete_package_scores_five_with_nothing_missing():
    result = assess(complete_package())
    assert result.score == MAX_SCORE == 5
    assert result.missing == []


def test_an_empty_package_scores_zero_and_lists_every_criterion():
    result = assess({})
    assert result.score == 0
    assert [m.criterion for m in result.missing] == [
        "reproduction",
        "evidence",
        "environment",
        "impact",
        "diagnosis",
    ]


@pytest.mark.parametrize(
    ("change", "expected_fragment"),
    [
        ({"steps_to_reproduce": ""}, "write the steps to reproduce as a numbered list"),
        ({"steps_to_reproduce": "Log in, add an item, pay"}, "number the steps"),
        ({"steps_to_reproduce": "1. Log in and pay"}, "at least 2"),
        ({"expected_behaviour": "  "}, "expected behaviour"),
        ({"actual_behaviour": None}, "actual behaviour"),
    ],
)
def test_reproduction_needs_two_numbered_steps_and_expected_and_actual(change, expected_fragment):
    missing = _missing(complete_package(**change))
    assert set(missing) == {"reproduction"}
    assert expected_fragment in missing["reproduction"].lower()
    assert assess(complete_package(**change)).score == 4


def test_numbered_steps_accept_dots_and_parentheses():
    assert numbered_steps("1. a\n2) b\n  3.c\nnot a step\n- d") == 3
    assert numbered_steps("") == 0


@pytest.mark.parametrize(
    ("change", "met"),
    [
        ({"request_ids": "", "log_excerpts": ""}, False),
        ({"request_ids": "", "log_excerpts": "ERROR upstream"}, True),
        ({"request_ids": "req-1", "log_excerpts": ""}, True),
        ({"first_seen_at": None}, False),
        ({"first_seen_at": "2025-03-03T09:00"}, True),
    ],
)
def test_evidence_needs_a_request_id_or_log_excerpt_and_when_it_was_first_seen(change, met):
    assert ("evidence" not in _missing(complete_package(**change))) is met


@pytest.mark.parametrize("blank", ["product_version", "region", "tenant"])
def test_environment_needs_version_region_and_tenant(blank):
    missing = _missing(complete_package(**{blank: ""}))
    assert set(missing) == {"environment"}
    assert blank.replace("_", " ") in missing["environment"]


def test_environment_message_names_every_gap():
    message = _missing(complete_package(region="", tenant=""))["environment"]
    assert "region and tenant" in message


@pytest.mark.parametrize(
    ("change", "met"),
    [
        ({"users_affected": None}, False),
        ({"users_affected": ""}, False),
        ({"users_affected": "many"}, False),
        ({"users_affected": -3}, False),
        ({"users_affected": "40"}, True),
        ({"users_affected": 0}, True),
        ({"workaround_available": None}, False),
        ({"workaround_available": ""}, False),
        ({"workaround_available": "unknown"}, False),
        ({"workaround_available": "yes"}, True),
        ({"workaround_available": "no"}, True),
        ({"workaround_available": True}, True),
    ],
)
def test_impact_needs_users_affected_and_a_yes_or_no_on_the_workaround(change, met):
    assert ("impact" not in _missing(complete_package(**change))) is met


@pytest.mark.parametrize("blank", ["hypotheses", "severity_rationale"])
def test_diagnosis_needs_hypotheses_and_a_severity_rationale(blank):
    assert set(_missing(complete_package(**{blank: ""}))) == {"diagnosis"}


def test_unscored_fields_do_not_change_the_score():
    bare = complete_package(revenue_at_risk=None, component="", last_seen_at=None, workaround="")
    assert assess(bare).score == 5


def test_each_missing_message_is_a_sentence_naming_its_criterion():
    for item in assess({}).missing:
        assert item.message.endswith(".")
        assert item.message.split(":")[0] in {
            "Reproduction",
            "Evidence",
            "Environment",
            "Customer impact",
            "Diagnosis",
        }


def test_as_dict_is_what_the_live_endpoint_returns():
    data = assess(complete_package(tenant="")).as_dict()
    assert data["score"] == 4
    assert data["max_score"] == 5
    assert data["missing"] == [{"criterion": "environment", "message": "Environment: Add the tenant."}]
