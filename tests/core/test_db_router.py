"""Without DATABASE_REPLICA_URL there is no replica and the replica scope changes nothing; with it,
settings add the alias with the options of default (pool, PgBouncer) as a test mirror."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from cases.models import Case
from supportdesk.core.db_router import REPLICA, read_alias, reads_from_replica
from tests import factories
from tests.settings_process import setting_in_fresh_process


@pytest.mark.django_db
def test_without_a_replica_the_scope_changes_nothing(client, manager):
    case = factories.CaseFactory()
    assert REPLICA not in connections.settings
    with reads_from_replica():
        assert read_alias() == "default"
        assert Case.objects.get(pk=case.pk)._state.db == "default"
    client.force_login(manager)
    with CaptureQueriesContext(connections["default"]) as on_default:
        assert client.get("/metrics/").status_code == 200
    assert any('"cases_case"' in q["sql"] for q in on_default.captured_queries)


def _databases(env: dict[str, str]) -> dict:
    return setting_in_fresh_process("settings.DATABASES", {"DEBUG": "true", **env})


def test_settings_add_the_replica_alias_with_defaults_options_only_when_asked():
    primary = "postgres://app@db-primary:5432/supportdesk"
    assert set(_databases({"DATABASE_URL": primary})) == {"default"}
    both = _databases(
        {
            "DATABASE_URL": primary,
            "DATABASE_REPLICA_URL": "postgres://app@db-replica:5432/supportdesk",
            "DATABASE_PGBOUNCER": "true",
        }
    )
    assert both["replica"]["HOST"] == "db-replica"
    assert both["replica"]["OPTIONS"]["pool"] == both["default"]["OPTIONS"]["pool"]
    assert both["replica"]["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert both["replica"]["TEST"] == {"MIRROR": "default"}
