#!/usr/bin/env python
"""Django's command-line utility for SupportDesk."""

import os
import sys

# How development runs a command without exporting anything (see the README).
DEVELOPMENT_HINT = 'In development run it as `make manage CMD="<command> <arguments>"` (it sets DEBUG=true).'


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportdesk.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        # Loads the settings module: a configuration that cannot run is told in a sentence and
        # exit status 2, not a traceback (the settings raise RuntimeError or ImproperlyConfigured).
        settings.INSTALLED_APPS  # noqa: B018
    except (ImproperlyConfigured, RuntimeError) as exc:
        hint = "" if os.environ.get("DEBUG", "").lower() == "true" else f"\n{DEVELOPMENT_HINT}"
        sys.stderr.write(f"SupportDesk cannot start: {exc}{hint}\n")
        sys.exit(2)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
