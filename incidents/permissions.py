"""Who may do what with a major incident: decided here once, for the pages and the API.

Support staff (agents, managers, admins) see every incident, declare them, link cases and post
updates: an outage is worked by many hands. Resolving an incident (which can resolve every linked
case at once) and changing its update cadence belong to its commander, or a manager.
Engineers and customers see no incident.
"""

from __future__ import annotations

from supportdesk.core.roles import is_agent, is_manager

from .models import MajorIncident


def can_see_incidents(user) -> bool:
    return is_agent(user)


def can_work(user, incident: MajorIncident) -> bool:
    """Link cases to it and post its updates."""
    return is_agent(user)


def can_command(user, incident: MajorIncident) -> bool:
    """Resolve it, change its cadence: its commander, or a manager."""
    return is_agent(user) and (incident.commander_id == user.pk or is_manager(user))


COMMAND_REFUSED = "Only the incident's commander or a manager can do this."
