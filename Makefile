# The project's vocabulary: `make run` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: run test test-services lint typecheck format migrate demo sample-mail bench bench-sla bench-knowledge bench-metrics bench-import bench-inbound manage clean help

help:
	@echo "make run            start web + Celery worker + beat on SQLite with demo data (http://127.0.0.1:$(PORT)/)"
	@echo "make test           run the test suite (SQLite, in-process broker)"
	@echo "make manage CMD=... run a management command in development, e.g. CMD=\"import_history --help\""
	@echo "make sample-mail    drop a customer mail into the demo mailbox (CASE=CASE-12: an answer to that case)"
	@echo "make test-services  run the suite against PostgreSQL and Redis (see README)"
	@echo "make lint           ruff check + format check + mypy"
	@echo "make typecheck      mypy with the Django and DRF plugins (see [tool.mypy] in pyproject.toml)"
	@echo "make bench          benchmark the case list at scale on PostgreSQL (see bench/README.md)"
	@echo "make bench-metrics  dashboard API vs hand-written SQL at 1M cases on PostgreSQL"
	@echo "make bench-inbound  ingest customer mails into a 1M-case PostgreSQL database: mails/s"
	@echo "make bench-import   import a 1M-row ServiceNow CSV and a 1M-event XES log into PostgreSQL: events/s, peak memory"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

migrate: $(STAMP)
	DEBUG=true $(PY) manage.py migrate --noinput

demo: migrate
	DEBUG=true $(PY) manage.py load_demo_data
	DEBUG=true $(PY) manage.py load_demo_escalations
	DEBUG=true $(PY) manage.py load_demo_knowledge
	DEBUG=true $(PY) manage.py load_demo_csat
	DEBUG=true $(PY) manage.py load_demo_workspace
	DEBUG=true $(PY) manage.py load_demo_incidents
	DEBUG=true $(PY) manage.py load_demo_mailbox

# Any management command with the development settings (DEBUG=true, SQLite, no SECRET_KEY needed):
# make manage CMD="import_history --format xes --mapping imports/mappings/xes-example.toml log.xes.gz"
manage: $(STAMP)
	DEBUG=true $(PY) manage.py $(CMD)

# A realistic customer mail into the demo's Maildir mailbox (var/mailboxes/support); beat ingests it.
# CASE=CASE-12 writes the requester's answer to that case instead.
sample-mail: $(STAMP)
	DEBUG=true $(PY) manage.py drop_sample_mail $(if $(CASE),--reply $(CASE))

run: demo
	@echo ""
	@echo "  SupportDesk is starting at http://127.0.0.1:$(PORT)/   (health: http://127.0.0.1:$(PORT)/healthz)"
	@echo "  Demo logins: agent/agent  manager/manager  engineer/engineer  admin/admin"
	@echo "  Ctrl-C stops the web app, the worker and beat."
	@echo ""
	DEBUG=true PORT=$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.dev start

test: $(STAMP)
	CELERY_BROKER_URL=memory:// $(PY) -m pytest

test-services: $(STAMP)
	REQUIRE_SERVICES=true \
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} \
	$(PY) -m pytest

# The settings load for the Django plugin with the development defaults (no production secrets).
MYPY := SECRET_KEY=typecheck DEBUG=true $(VENV)/bin/mypy

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MYPY) .

typecheck: $(STAMP)
	$(MYPY) .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench_cases} SECRET_KEY=bench ALLOWED_HOSTS=testserver \
	$(PY) bench/bench_cases.py --count $${COUNT:-1000000} --reuse

bench-sla: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench_sla} SECRET_KEY=bench $(PY) bench/bench_sla.py

bench-knowledge: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench_knowledge} SECRET_KEY=bench $(PY) bench/bench_knowledge.py

bench-metrics: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench_metrics} SECRET_KEY=bench ALLOWED_HOSTS=testserver \
	DEBUG=false $(PY) bench/bench_metrics.py --count $${COUNT:-1000000} --reuse

bench-import: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench_import} SECRET_KEY=bench $(PY) bench/bench_import.py --reimport

clean:
	rm -rf $(VENV) var/broker var/celerybeat-schedule*

bench-inbound: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/bench_inbound} \
	$(PY) bench/bench_inbound.py --count $${COUNT:-1000000} --mails $${MAILS:-3000} --workers $${WORKERS:-2} --reuse
