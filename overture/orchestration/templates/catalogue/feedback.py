"""Product feedback triage: feedback is collected from three sources at once (app-store
reviews, support tickets, survey answers), pooled, discussed by the "Feedback analyst"
(who clusters it into themes) and the "Product manager" (who says what to act on), an
issue is opened in the tracker for every theme raised at least MIN_MENTIONS times, and
the product channel gets the summary.

Patterns: parallel, group discussion, loop over items, actions.
"""

from __future__ import annotations

from overture.orchestration.templates.catalogue import (
    UseCase,
    agent,
    collection,
    http_connection,
    outbox,
)

SOURCES, TRACKER, OUTBOX, AREAS = ("Feedback sources", "Issue tracker", "Product outbox",
                                   "Product areas")
ANALYST, PM = "Feedback analyst", "Product manager"
MIN_MENTIONS = 2
CHANNEL = "#product-feedback"
# (area, issue title, the word that marks it in feedback)
THEMES = [("exports", "Exports fail or time out", "export"),
          ("performance", "Dashboards load slowly", "slow"),
          ("mobile", "Mobile app requests", "mobile")]

AREA_DOCS = [
    ("Areas and owners", """\
Exports and reports belong to the Data team. Performance of dashboards and sync belongs \
to the Platform team. The iOS and Android apps belong to the Mobile team. Pricing and \
plans feedback goes to the Growth team, not to the tracker."""),
    ("When to open an issue", f"""\
Open an issue when a theme is raised by at least {MIN_MENTIONS} customers in a cycle, \
label it with its area and 'customer-feedback', and quote the customers' own words. \
Single mentions are kept in the weekly digest."""),
]


# The analyst sorts each item under the product areas' themes (a real model finds new
# ones too); the product manager keeps those raised at least MIN_MENTIONS times.
ANALYST_TEMPLATE = (
    "{{ {'themes': input.themes.map(t, {'area': t.area, 'title': t.title, 'quotes': "
    "input.items.filter(i, i.text.matches('(?i)' + t.word))"
    ".map(i, i.source + ': ' + i.text)})} }}")
PM_TEMPLATE = (
    "{{ {'act_on': input.themes.filter(t, size(input.items.filter(i, i.text.matches('(?i)' + "
    f"t.word))) >= {MIN_MENTIONS}).map(t, t.title), 'reviewed': size(input.items)}} }}}}")

AGENTS = [
    agent(ANALYST, "Clusters customer feedback into themes.",
          "product feedback analyst: sorts feedback under the given themes with customer "
          "quotes; answers {themes: [{area, title, quotes: [\"source: text\"]}]}",
          instructions=ANALYST_TEMPLATE),
    agent(PM, "Decides which feedback themes to act on.",
          "product manager: picks the themes to act on this cycle (raised by at least "
          f"{MIN_MENTIONS} customers); answers {{act_on: [theme titles], reviewed: n}}",
          instructions=PM_TEMPLATE),
]

INPUT_SCHEMA = {
    "type": "object", "properties": {
        "since": {"type": "string", "format": "date", "title": "Feedback since"}}}


def _source(step: str, path: str, label: str) -> dict[str, object]:
    return {"steps": [
        {"id": f"fetch_{step}", "type": "action", "action": "http.request",
         "connection": f"@connection:{SOURCES}",
         "input": {"method": "GET", "url": path,
                   "query": {"since": "{{ has(input.since) ? input.since : '' }}"}},
         "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": f"from_{step}"},
        {"id": f"from_{step}", "type": "transform",
         "output": f"{{{{ steps.fetch_{step}.body.items.map(i, "
                   f"{{'source': '{label}', 'text': i.text}}) }}}}"}]}


STEPS = [
    {"id": "collect", "type": "parallel", "join": "all", "branches": [
        _source("reviews", "/app-reviews", "app store"),
        _source("tickets", "/support-tickets", "support"),
        _source("survey", "/survey-responses", "survey")], "next": "pool"},
    {"id": "pool", "type": "transform",
     "output": {"items": "{{ steps.collect[0] + steps.collect[1] + steps.collect[2] }}",
                "themes": [{"area": a, "title": t, "word": w} for a, t, w in THEMES]},
     "next": "discuss"},
    {"id": "discuss", "type": "group", "agents": [ANALYST, PM], "speaker": "round_robin",
     "max_turns": 2, "task": "Cluster this cycle's feedback into themes, then decide what "
                            "to act on.",
     "input": {"items": "{{ steps.pool.items }}", "themes": "{{ steps.pool.themes }}"},
     "next": "open_issues"},
    {"id": "open_issues", "type": "loop",
     "for_each": "steps.discuss.transcript[0].output.themes.filter(t, t.title in "
                 "steps.discuss.transcript[1].output.act_on)",
     "body": {"steps": [
         {"id": "open_issue", "type": "action", "action": "http.request",
          "connection": f"@connection:{TRACKER}",
          "input": {"method": "POST", "url": "/issues", "json": {
              "title": "{{ item.title }}",
              "body": "Raised by {{ size(item.quotes) }} customers this cycle, for example: "
                      "\"{{ item.quotes[0] }}\"", "quotes": "{{ item.quotes }}",
              "labels": ["{{ item.area }}", "customer-feedback"]}},
          "retry": {"max_attempts": 3, "backoff_seconds": 1}}]},
     "next": "announce"},
    {"id": "announce", "type": "action", "action": "demo_outbox.post_message",
     "connection": f"@connection:{OUTBOX}",
     "input": {"channel": CHANNEL,
               "text": "Feedback cycle: {{ size(steps.pool.items) }} pieces of feedback, "
                       "{{ size(steps.open_issues) }} recurring themes. Issues opened: "
                       "{{ size(steps.open_issues) }}. (run {{ run.id }})"},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "done"},
    {"id": "done", "type": "transform", "output": {
        "feedback": "{{ size(steps.pool.items) }}",
        "themes": "{{ steps.discuss.transcript[0].output.themes.map(t, "
                  "{'title': t.title, 'count': size(t.quotes)}) }}",
        "issues": "{{ steps.open_issues.map(r, r.body.number) }}",
        "act_on": "{{ steps.discuss.transcript[1].output.act_on }}"}},
]

USE_CASE = UseCase(
    key="feedback-triage", name="Product feedback triage",
    summary="Feedback from reviews, tickets and surveys is collected in parallel, "
            "clustered and prioritised by two agents, and issues are opened per theme.",
    patterns=("parallel", "group", "loop", "actions"),
    knowledge=[collection(AREAS, "Who owns which product area, and when to open an issue.",
                          AREA_DOCS)],
    connections=[http_connection(SOURCES, "https://feedback.example.com/api"),
                 http_connection(TRACKER, "https://tracker.example.com/api"),
                 outbox(OUTBOX)],
    agents=AGENTS,
    workflow={"name": "Feedback cycle", "description": "Collect, cluster and prioritise "
              "customer feedback; open an issue per recurring theme.",
              "definition": {"input_schema": INPUT_SCHEMA, "steps": STEPS}},
    samples={"this_week": {"since": "2026-11-30"}},
)
