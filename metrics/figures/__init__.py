"""The KPIs of DOMAIN.md's metrics table, computed in the database, by family.

``base`` holds what every family shares (periods, filters, the figures' value types, running
queries side by side); ``durations``, ``compliance``, ``resolutions`` (reopen rate, knowledge
reuse), ``escalations``, ``csat`` and ``backlog`` compute one family each; ``summary`` puts a
period's headline figures together (rollup and source), ``trends`` the weekly series,
``drilldown`` lists the cases a figure counts and ``agents`` the per-assignee figures.
``metrics.selectors`` is the public surface that callers import.
"""
