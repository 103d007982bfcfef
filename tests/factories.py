"""factory-boy factories, one per model, with realistic defaults."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from cases.models import Case, Contact, Organisation, Severity, Status, Tag, Team, Tier


def _with_roles(default: tuple[str, ...]):
    """A post-generation hook adding the user to role groups (``roles=(...)`` overrides)."""

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):
        names = default if extracted is None else extracted
        if create and names:
            # get_or_create: transactional tests flush the groups the migration created.
            obj.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in names))

    return roles


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@support.example")
    password = factory.django.Password("pw-for-tests-1")
    roles = _with_roles(())


class AgentFactory(UserFactory):
    username = factory.Sequence(lambda n: f"agent{n}")
    roles = _with_roles(("agent",))


class ManagerFactory(UserFactory):
    username = factory.Sequence(lambda n: f"manager{n}")
    roles = _with_roles(("manager",))


class EngineerFactory(UserFactory):
    username = factory.Sequence(lambda n: f"engineer{n}")
    roles = _with_roles(("engineer",))


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True
    roles = _with_roles(("admin",))


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    tier = Tier.BUSINESS
    time_zone = "Europe/Berlin"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"contact{n}@customer.example")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class CaseFactory(factory.django.DjangoModelFactory):
    """A case row as the services would create it (use cases.services.create_case for events)."""

    class Meta:
        model = Case
        skip_postgeneration_save = True

    title = factory.Faker("sentence", nb_words=6)
    description = factory.Faker("paragraph")
    organisation = factory.SubFactory(OrganisationFactory)
    requester = factory.SubFactory(ContactFactory, organisation=factory.SelfAttribute("..organisation"))
    severity = Severity.P3
    status = Status.NEW
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyAttribute(lambda c: c.created_at)

    @factory.post_generation
    def tags(obj, create, extracted, **kwargs):
        """``tags=["billing", ...]``: the case carries these tags (names already normalised)."""
        if create and extracted:
            obj.tags.add(*(Tag.objects.get_or_create(name=name)[0] for name in extracted))


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, tz: str = "UTC") -> dt.datetime:
    """An aware instant, for readable tests."""
    from zoneinfo import ZoneInfo

    return dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))


def api_token_key(user, *, name: str = "tests") -> str:
    """A new REST API token of ``user`` (hashed at rest); its key, what a client sends."""
    from supportdesk.core.models import ApiToken

    _token, key = ApiToken.objects.create(user=user, name=name)
    return key
