# The one image behind web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SUPPORTDESK_VAR_DIR=/app/var

WORKDIR /app
COPY pyproject.toml README.md ./
COPY supportdesk ./supportdesk
COPY cases ./cases
COPY sla ./sla
COPY escalations ./escalations
COPY knowledge ./knowledge
COPY metrics ./metrics
COPY imports ./imports
COPY inbound ./inbound
COPY incidents ./incidents
RUN pip install .
COPY . .
# collectstatic needs settings, not secrets or services: a throwaway key and the single-machine
# defaults for this build step only (the running containers get DATABASE_URL and CELERY_BROKER_URL).
RUN SECRET_KEY=collectstatic-only SUPPORTDESK_ALLOW_SQLITE=true SUPPORTDESK_ALLOW_FILESYSTEM_BROKER=true \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 --home /app supportdesk \
    && mkdir -p /app/var/media \
    && chown -R supportdesk /app/var
USER supportdesk
EXPOSE 8000
CMD ["gunicorn", "supportdesk.wsgi:application", "--workers", "3"]
