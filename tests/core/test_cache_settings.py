"""Which cache each environment gets: Redis shared by every process in production, local memory
in development and the tests."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from tests.settings_process import python_with_settings, setting_in_fresh_process

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-long-random-production-secret-key-with-enough-entropy-1234567890",
    "ALLOWED_HOSTS": "support.example.com",
    "DATABASE_URL": "postgres://supportdesk@db.internal:5432/supportdesk",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
}
REDIS = "django.core.cache.backends.redis.RedisCache"
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"


def _cache_settings(env: dict[str, str]) -> dict:
    """settings.CACHES['default'] of a fresh process with exactly ``env`` set (nothing inherited)."""
    return setting_in_fresh_process("settings.CACHES['default']", env)


def test_production_caches_in_the_brokers_redis_on_the_next_database():
    conf = _cache_settings(PRODUCTION)
    assert conf["BACKEND"] == REDIS
    assert conf["LOCATION"] == "redis://redis.internal:6379/1"


def test_production_takes_an_explicit_cache_url():
    conf = _cache_settings({**PRODUCTION, "CACHE_URL": "rediss://:secret@cache.internal:6380/3"})
    assert (conf["BACKEND"], conf["LOCATION"]) == (REDIS, "rediss://:secret@cache.internal:6380/3")
    conf = _cache_settings({**PRODUCTION, "REDIS_CACHE_URL": "redis://cache.internal:6379/5"})
    assert (conf["BACKEND"], conf["LOCATION"]) == (REDIS, "redis://cache.internal:6379/5")


def test_production_without_a_redis_broker_or_with_locmem_keeps_memory():
    single_machine = {k: v for k, v in PRODUCTION.items() if k != "CELERY_BROKER_URL"}
    # A single-machine install opts in to the filesystem broker (the production guard asks it to).
    single_machine["CELERY_BROKER_URL"] = "filesystem://"
    single_machine["SUPPORTDESK_ALLOW_FILESYSTEM_BROKER"] = "true"
    assert _cache_settings(single_machine)["BACKEND"] == LOCMEM
    assert _cache_settings({**PRODUCTION, "CACHE_URL": "locmem://"})["BACKEND"] == LOCMEM


def test_development_uses_local_memory_even_with_a_redis_broker():
    conf = _cache_settings({"DEBUG": "true", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"})
    assert conf["BACKEND"] == LOCMEM


def test_a_cache_url_of_another_kind_is_refused_without_showing_it():
    done = python_with_settings(
        "import django; django.setup()", {**PRODUCTION, "CACHE_URL": "memcached://u:hunter2@cache:11211"}
    )
    assert done.returncode != 0
    assert "CACHE_URL must be a redis://" in done.stderr
    assert "hunter2" not in done.stderr


def test_the_tests_use_local_memory():
    assert settings.CACHES["default"]["BACKEND"] == LOCMEM
    cache.set("probe", 1)
    assert cache.get("probe") == 1
