"""The TOML mapping: the shipped ones load, mistakes are reported all at once, dates parse exactly."""

from __future__ import annotations

import datetime as dt

import pytest

from imports.dates import DateError, DateParser
from imports.mapping import MappingError, Template, default_mapping_text, load_mapping


@pytest.mark.parametrize("format", ["servicenow-csv", "xes"])
def test_the_shipped_mappings_load(format):
    mapping = load_mapping(default_mapping_text(format), format=format)
    assert mapping.format == format
    assert set(mapping.status.values()) <= {
        "new", "triaged", "in_progress", "waiting_on_customer", "waiting_on_engineering", "resolved",
        "reopened", "closed", "unchanged",
    }  # fmt: skip


def test_the_servicenow_mapping_covers_the_states_of_the_issue():
    mapping = load_mapping(default_mapping_text("servicenow-csv"))
    states = [
        "New",
        "Active",
        "Awaiting User Info",
        "Awaiting Vendor",
        "Awaiting Problem",
        "Awaiting Evidence",
    ]
    assert all(state in mapping.status for state in [*states, "Resolved", "Closed"])
    assert mapping.severity.values == {
        "1 - Critical": "P1",
        "2 - High": "P2",
        "3 - Moderate": "P3",
        "4 - Low": "P4",
    }


def test_every_problem_of_a_mapping_is_reported():
    text = """
    [source]
    key = "number"
    time_zone = "Mars/Olympus"
    [status]
    "New" = "fresh"
    [severity.values]
    "1 - Critical" = "P0"
    [first_response]
    statuses = ["answered"]
    [colours]
    """
    with pytest.raises(MappingError) as caught:
        load_mapping(text)
    problems = "\n".join(caught.value.problems)
    for expected in (
        "Unknown section [colours]",
        "[source] needs state",
        "[source] needs timestamp",
        "“Mars/Olympus” is not a known time zone",
        "[status] “New” = “fresh”",
        "“1 - Critical” = “P0”",
        "“answered” is not a status",
        "[organisation] needs name",
    ):
        assert expected in problems


def test_a_mapping_for_another_format_is_refused():
    with pytest.raises(MappingError, match="for 'xes' files"):
        load_mapping(default_mapping_text("xes"), format="servicenow-csv")


def test_not_toml_at_all():
    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping("[source\nkey=")


def test_templates_leave_out_missing_fields():
    template = Template("{number}: {category} / {subcategory}")
    assert (
        template.render({"number": "INC1", "category": "Network", "subcategory": "VPN"})
        == "INC1: Network / VPN"
    )
    assert template.render({"number": "INC1"}) == "INC1"
    assert Template("Re: {trace:subject}").render({"trace:subject": "Hi"}) == "Re: Hi"


def test_display_dates_in_a_zone_with_dst():
    parser = DateParser(fmt="%d/%m/%Y %H:%M", time_zone="Europe/Berlin")
    assert parser.parse("26/03/2023 01:30") == dt.datetime(2023, 3, 26, 0, 30, tzinfo=dt.UTC)
    assert parser.parse("26/03/2023 03:30") == dt.datetime(2023, 3, 26, 1, 30, tzinfo=dt.UTC)
    # The repeated hour when DST ends is read as its first occurrence.
    assert parser.parse("29/10/2023 02:30") == dt.datetime(2023, 10, 29, 0, 30, tzinfo=dt.UTC)
    assert parser.parse("1/7/2023 9:05") == dt.datetime(2023, 7, 1, 7, 5, tzinfo=dt.UTC)
    with pytest.raises(DateError, match="does not exist in Europe/Berlin"):
        parser.parse("26/03/2023 02:30")
    with pytest.raises(DateError, match="not a real date"):
        parser.parse("31/02/2023 09:00")
    with pytest.raises(DateError, match="does not match"):
        parser.parse("2023-03-01 09:00")


def test_other_formats_fall_back_to_strptime():
    parser = DateParser(fmt="%b %d, %Y %I:%M %p", time_zone="UTC")
    assert parser.parse("Mar 01, 2023 09:15 PM") == dt.datetime(2023, 3, 1, 21, 15, tzinfo=dt.UTC)


def test_iso_dates_without_offset_are_local():
    parser = DateParser(fmt="%d/%m/%Y %H:%M", time_zone="America/New_York")
    assert parser.parse_iso("2023-03-01T09:00:00") == dt.datetime(2023, 3, 1, 14, 0, tzinfo=dt.UTC)
    assert parser.parse_iso("2023-03-01T09:00:00Z") == dt.datetime(2023, 3, 1, 9, 0, tzinfo=dt.UTC)
