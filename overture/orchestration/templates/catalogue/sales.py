"""Sales lead qualification: a CRM lead comes in, the CRM enriches its company, the
"Lead scorer" scores it, a router hands it to the rep of its segment, the "Follow-up
writer" drafts the first email from the sales playbook, the rep gets a CRM task, and the
email goes out after the follow-up delay (the demo outbox records it).

Patterns: sequential, router (rules), delay, actions (HTTP to the CRM).
"""

from __future__ import annotations

from overture.orchestration.templates.catalogue import (
    UseCase,
    agent,
    collection,
    http_connection,
    outbox,
    search,
)

CRM, OUTBOX, PLAYBOOK = "CRM", "Sales outbox", "Sales playbook"
SCORER, WRITER = "Lead scorer", "Follow-up writer"
REPS = {
    "enterprise": {"name": "Elena Fischer", "email": "elena@sales.example.com",
                   "segment": "enterprise", "task_due_hours": 4,
                   "playbook": "Enterprise follow-up"},
    "mid_market": {"name": "Marcus Reed", "email": "marcus@sales.example.com",
                   "segment": "mid-market", "task_due_hours": 24,
                   "playbook": "Mid-market follow-up"},
    "nurture": {"name": "Growth team", "email": "growth@sales.example.com",
                "segment": "nurture", "task_due_hours": 72,
                "playbook": "Nurture sequence"},
}
ENTERPRISE_SCORE, MID_MARKET_SCORE = 70, 40

PLAYBOOK_DOCS = [
    ("Enterprise follow-up", """\
Enterprise buyers (1,000+ employees) expect a tailored conversation, not a sales pitch. \
Offer a 30-minute discovery call with a solutions engineer this week, mention single \
sign-on, audit logs and the 99.9% uptime guarantee, and propose a security review pack."""),
    ("Mid-market follow-up", """\
Mid-market teams want to see value quickly. Offer a 20-minute live demo focused on the \
workflow they described, share the two-week guided trial and the yearly discount of two \
months free."""),
    ("Nurture sequence", """\
Small teams and early-stage leads get self-serve help first: the getting-started guide, \
the template gallery and the weekly group webinar. Invite them to reply with questions; \
a rep joins when they add more seats."""),
    ("Qualification criteria", f"""\
We score leads out of 100: company size up to 40 points, seniority of the contact up to \
25, buying intent in their message (demo, pricing, quote, trial, migrate) up to 20, and a \
target industry (software, finance, healthcare) 15. A score of {ENTERPRISE_SCORE} or more \
goes to the enterprise rep, {MID_MARKET_SCORE} or more to mid-market, the rest to \
nurture."""),
]

# The scorer answers with a JSON object; the `local` model computes the rubric of the
# playbook's "Qualification criteria" exactly (a real model applies it by reading).
SCORE_RUBRIC = (
    "(input.employees >= 1000 ? 40 : (input.employees >= 200 ? 25 : "
    "(input.employees >= 20 ? 10 : 0)))"
    " + ((input.title.contains('VP') || input.title.contains('Head') || "
    "input.title.contains('Director') || input.title.contains('Chief') || "
    "input.title.contains('CTO') || input.title.contains('CEO')) ? 25 : 0)"
    " + ((input.message.contains('demo') || input.message.contains('pricing') || "
    "input.message.contains('quote') || input.message.contains('trial') || "
    "input.message.contains('migrate')) ? 20 : 0)"
    " + (input.industry in ['Software', 'Finance', 'Healthcare'] ? 15 : 0)")
SCORER_TEMPLATE = "{{ {'score': " + SCORE_RUBRIC + ", 'basis': 'size, seniority, intent, " \
    "industry'} }}"

WRITER_TEMPLATE = """\
Hi {{ input.first_name }},

Thanks for reaching out about {{ input.company }}. I'm {{ input.rep_name }}, and I'll be \
your contact here.

{{ item.passages.exists(p, p.document_title == input.playbook) ? item.passages.filter(p, \
p.document_title == input.playbook)[0].text : "I'd love to hear more about what you're \
working on." }}

Would a short call later this week work for you?

Best regards,
{{ input.rep_name }}
"""

AGENTS = [
    agent(SCORER, "Scores inbound leads out of 100 against the qualification criteria.",
          "qualifies inbound B2B leads: scores them out of 100 by the playbook's criteria "
          "(size, seniority, intent, industry); answers {score, basis}",
          instructions=SCORER_TEMPLATE),
    agent(WRITER, "Drafts the first follow-up email from the sales playbook.",
          "a friendly, concise account executive: writes the first follow-up email in the "
          "rep's name with the playbook's advice for the segment, under 150 words",
          instructions=WRITER_TEMPLATE,
          tools=[search(PLAYBOOK, "search_playbook",
                        "Search the sales playbook for the advice on this kind of lead.")]),
]

INPUT_SCHEMA = {
    "type": "object", "required": ["lead_id", "email", "first_name", "company", "title",
                                   "message"],
    "properties": {
        "lead_id": {"type": "string", "title": "CRM lead id"},
        "email": {"type": "string", "format": "email", "title": "Email"},
        "first_name": {"type": "string", "title": "First name"},
        "company": {"type": "string", "title": "Company"},
        "title": {"type": "string", "title": "Job title"},
        "message": {"type": "string", "title": "What they asked", "maxLength": 5000},
        "follow_up_delay_seconds": {"type": "integer", "minimum": 0, "maximum": 86400,
                                    "title": "Wait before emailing (seconds)"}}}


def _rep(route: str) -> dict[str, object]:
    rep = REPS[route]
    return {"id": route, "type": "transform", "output": rep, "next": "write"}


STEPS = [
    {"id": "enrich", "type": "action", "action": "http.request", "connection": f"@connection:{CRM}",
     "input": {"method": "GET", "url": "/companies", "query": {"email": "{{ input.email }}"},
               "allow_client_errors": True},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "profile"},
    {"id": "profile", "type": "transform", "output": {
        "found": "{{ steps.enrich.status == 200 }}",
        "industry": "{{ steps.enrich.status == 200 ? steps.enrich.body.industry : 'unknown' }}",
        "employees": "{{ steps.enrich.status == 200 ? steps.enrich.body.employees : 0 }}",
        "country": "{{ steps.enrich.status == 200 ? steps.enrich.body.country : '' }}"},
     "next": "score"},
    {"id": "score", "type": "agent", "agent": SCORER,
     "task": "Score this lead out of 100.",
     "input": {"title": "{{ input.title }}", "message": "{{ input.message }}",
               "company": "{{ input.company }}", "industry": "{{ steps.profile.industry }}",
               "employees": "{{ steps.profile.employees }}"},
     "next": "route"},
    {"id": "route", "type": "router", "routes": [
        {"when": f"steps.score.output.score >= {ENTERPRISE_SCORE}", "next": "enterprise"},
        {"when": f"steps.score.output.score >= {MID_MARKET_SCORE}", "next": "mid_market"}],
     "default": "nurture"},
    _rep("enterprise"), _rep("mid_market"), _rep("nurture"),
    {"id": "write", "type": "agent", "agent": WRITER,
     "task": "Write the first follow-up email to this lead.",
     "input": {"first_name": "{{ input.first_name }}", "company": "{{ input.company }}",
               "message": "{{ input.message }}", "rep_name": "{{ REP.name }}",
               "segment": "{{ REP.segment }}", "playbook": "{{ REP.playbook }}"},
     "next": "task"},
    {"id": "task", "type": "action", "action": "http.request", "connection": f"@connection:{CRM}",
     "input": {"method": "POST", "url": "/tasks", "json": {
         "lead_id": "{{ input.lead_id }}", "owner": "{{ REP.email }}",
         "due_in_hours": "{{ REP.task_due_hours }}",
         "title": "Follow up with {{ input.first_name }} at {{ input.company }}",
         "score": "{{ steps.score.output.score }}", "draft": "{{ steps.write.output }}"}},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "wait"},
    {"id": "wait", "type": "delay",
     "seconds": "{{ has(input.follow_up_delay_seconds) ? input.follow_up_delay_seconds "
                ": 300 }}", "next": "send"},
    {"id": "send", "type": "action", "action": "demo_outbox.send_email",
     "connection": f"@connection:{OUTBOX}",
     "input": {"to": ["{{ input.email }}"], "subject": "Your enquiry about {{ input.company }}",
               "text": "{{ steps.write.output }}", "from_name": "{{ REP.name }}"},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "done"},
    {"id": "done", "type": "transform", "output": {
        "score": "{{ steps.score.output.score }}", "segment": "{{ REP.segment }}",
        "rep": "{{ REP.name }}", "rep_email": "{{ REP.email }}",
        "industry": "{{ steps.profile.industry }}", "crm_task": "{{ steps.task.body.id }}",
        "email": "{{ steps.send.text }}", "email_message_id": "{{ steps.send.message_id }}"}},
]
# The rep is whichever of the three transforms ran.
_REP = ("(has(steps.enterprise) ? steps.enterprise : (has(steps.mid_market) ? "
        "steps.mid_market : steps.nurture))")


def _with_rep(value: object) -> object:
    if isinstance(value, str):
        return value.replace("REP.", _REP + ".")
    if isinstance(value, dict):
        return {k: _with_rep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_rep(v) for v in value]
    return value


USE_CASE = UseCase(
    key="sales-leads", name="Sales lead qualification",
    summary="A CRM lead is enriched, scored, routed to the rep of its segment, gets a "
            "drafted follow-up and a CRM task, and the email goes out after a delay.",
    patterns=("sequential", "router", "delay", "actions"),
    knowledge=[collection(PLAYBOOK, "How we qualify leads and follow up each segment.",
                          PLAYBOOK_DOCS)],
    connections=[http_connection(CRM, "https://crm.example.com/api"), outbox(OUTBOX)],
    agents=AGENTS,
    workflow={"name": "Lead qualification",
              "description": "Enrich, score and route a new CRM lead, draft the follow-up, "
                             "create the rep's task and send the email after a delay.",
              "definition": {"input_schema": INPUT_SCHEMA, "steps": _with_rep(STEPS)}},
    samples={
        "enterprise": {"lead_id": "L-1001", "email": "jana@helix-bank.example",
                       "first_name": "Jana", "company": "Helix Bank",
                       "title": "VP Engineering",
                       "message": "We want to migrate 3,000 staff off spreadsheets; can we "
                                  "see a demo and pricing for SSO?",
                       "follow_up_delay_seconds": 0},
        "nurture": {"lead_id": "L-1002", "email": "sam@tinycafe.example",
                    "first_name": "Sam", "company": "Tiny Cafe", "title": "Owner",
                    "message": "Just looking around for now.",
                    "follow_up_delay_seconds": 0},
    },
)
