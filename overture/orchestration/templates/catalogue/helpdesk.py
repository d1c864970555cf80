"""IT helpdesk: a ticket is classified (access, network, hardware, software), the
"Runbook finder" looks up the runbook for it in the IT knowledge base, and when the
runbook has a safe automated fix (unlock an account, reset a VPN profile) an IT admin
approves it before the automation API runs it and the requester is told; anything else,
or a fix the admin refuses, is escalated to the service desk's queue.

Patterns: classify (handoff), knowledge lookup, condition, human approval, actions.
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

AUTOMATION, SERVICE_DESK, OUTBOX, RUNBOOKS = ("Automation API", "Service desk",
                                              "IT outbox", "IT runbooks")
CLASSIFIER, FINDER = "Ticket classifier", "Runbook finder"
SAFE_FIXES = {"access": "unlock-account", "network": "reset-vpn-profile"}

RUNBOOK_DOCS = [
    ("access: unlock an account and reset the password", """\
A user locked out after too many sign-in attempts, or who forgot their password: unlock \
the directory account and send a one-hour password reset link to their work email. Safe \
to automate; never read a password out over chat or phone."""),
    ("network: reset the VPN profile", """\
VPN will not connect or drops every few minutes: revoke the user's VPN certificate and \
push a fresh profile to their enrolled device, then ask them to restart the VPN client. \
Safe to automate."""),
    ("hardware: repair or replace a device", """\
Broken screens, dead batteries, failing keyboards and printers need a technician: book a \
desk visit or ship a loan laptop. Not automated; the service desk's hardware group owns \
it."""),
    ("software: install or repair an application", """\
Licence requests and installs need a manager's sign-off and a licence from procurement; \
a crashing application is reinstalled by the service desk's software group. Not \
automated."""),
]

FINDER_TEMPLATE = (
    "{{ item.passages.exists(p, p.document_title.startsWith(input.category)) ? "
    "{'runbook': item.passages.filter(p, p.document_title.startsWith(input.category))[0]"
    ".document_title, 'text': item.passages.filter(p, p.document_title.startsWith("
    "input.category))[0].text} : {'runbook': 'none', 'text': 'No runbook matches.'} }}")

AGENTS = [
    agent(CLASSIFIER, "Sorts IT tickets into access, network, hardware or software.",
          "IT service desk triage: sorts each ticket into access, network, hardware or "
          "software", model="wordllama"),
    agent(FINDER, "Finds the runbook for a ticket in the IT knowledge base.",
          "finds the runbook that resolves an IT ticket and quotes its steps; answers "
          "{runbook, text}", instructions=FINDER_TEMPLATE,
          tools=[search(RUNBOOKS, "search_runbooks",
                        "Search the IT runbooks for the procedure that fixes this ticket.")]),
]

INPUT_SCHEMA = {
    "type": "object", "required": ["ticket_id", "requester_email", "subject", "body"],
    "properties": {
        "ticket_id": {"type": "string", "title": "Ticket"},
        "requester_email": {"type": "string", "format": "email", "title": "Requester"},
        "subject": {"type": "string", "title": "Subject", "maxLength": 200},
        "body": {"type": "string", "title": "Description", "maxLength": 5000}}}

ROUTES = [
    ("access", "account access: locked out, forgot my password, password reset, cannot sign "
               "in or log in, two-factor MFA code not working"),
    ("network", "network: VPN will not connect, Wi-Fi, internet connection drops, cannot "
                "reach a server or shared drive"),
    ("hardware", "hardware: laptop, screen cracked, battery, keyboard, monitor, printer or "
                 "device broken and needs repair or replacement"),
    ("software", "software: install an application, licence request, program crashes, "
                 "update fails, error in an app"),
]

STEPS = [
    {"id": "triage", "type": "classify", "agent": CLASSIFIER,
     "task": "Which IT queue does this ticket belong to?",
     "input": {"subject": "{{ input.subject }}", "body": "{{ input.body }}"},
     "routes": [{"name": n, "description": d, "next": "runbook"} for n, d in ROUTES]},
    {"id": "runbook", "type": "agent", "agent": FINDER,
     "task": "Find the runbook that resolves this ticket.",
     "input": {"category": "{{ steps.triage.route }}", "subject": "{{ input.subject }}",
               "body": "{{ input.body }}"},
     "next": "fixable"},
    {"id": "fixable", "type": "condition",
     "if": f"steps.triage.route in {list(SAFE_FIXES)}",
     "then": "approve_fix", "else": "escalate"},
    {"id": "approve_fix", "type": "approval",
     "prompt": "Run the automated fix for ticket {{ input.ticket_id }} "
               "(\"{{ input.subject }}\") for {{ input.requester_email }}?",
     "data": {"ticket": "{{ input.ticket_id }}", "user": "{{ input.requester_email }}",
              "fix": "{{ steps.triage.route == 'access' ? '" + SAFE_FIXES["access"]
                     + "' : '" + SAFE_FIXES["network"] + "' }}",
              "runbook": "{{ steps.runbook.output.runbook }}"},
     "assignee": {"role": "admin"}, "timeout_seconds": 14400, "timeout_action": "reject",
     "on_reject": "escalate", "next": "fix"},
    {"id": "fix", "type": "action", "action": "http.request",
     "connection": f"@connection:{AUTOMATION}",
     "input": {"method": "POST", "url": "/fixes",
               "json": {"fix": "{{ steps.approve_fix.data.fix }}",
                        "user": "{{ input.requester_email }}",
                        "ticket": "{{ input.ticket_id }}"}},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "tell"},
    {"id": "tell", "type": "action", "action": "demo_outbox.send_email",
     "connection": f"@connection:{OUTBOX}",
     "input": {"to": ["{{ input.requester_email }}"],
               "subject": "Re: {{ input.subject }} [{{ input.ticket_id }}]",
               "text": "Hello,\n\nWe ran the fix for your ticket: "
                       "{{ steps.runbook.output.text }}\n\nReply if it still does not "
                       "work.\n\nIT Service Desk", "from_name": "IT Service Desk"},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "fixed"},
    {"id": "fixed", "type": "transform", "output": {
        "category": "{{ steps.triage.route }}", "runbook": "{{ steps.runbook.output.runbook }}",
        "resolution": "automated_fix", "fix": "{{ steps.approve_fix.data.fix }}",
        "fix_job": "{{ steps.fix.body.job }}", "approved_by_admin": True}},
    {"id": "escalate", "type": "action", "action": "http.request",
     "connection": f"@connection:{SERVICE_DESK}",
     "input": {"method": "POST", "url": "/escalations",
               "json": {"ticket": "{{ input.ticket_id }}", "group": "{{ steps.triage.route }}",
                        "runbook": "{{ steps.runbook.output.runbook }}",
                        "summary": "{{ input.subject }}"}},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "escalated"},
    {"id": "escalated", "type": "transform", "output": {
        "category": "{{ steps.triage.route }}", "runbook": "{{ steps.runbook.output.runbook }}",
        "resolution": "escalated", "escalation": "{{ steps.escalate.body.id }}",
        "fix_refused": "{{ has(steps.approve_fix) }}"}},
]

USE_CASE = UseCase(
    key="it-helpdesk", name="IT helpdesk",
    summary="A ticket is classified, its runbook looked up; a safe automated fix runs "
            "once an IT admin approves it, anything else is escalated.",
    patterns=("classify (handoff)", "knowledge", "condition", "approval", "actions"),
    knowledge=[collection(RUNBOOKS, "The service desk's runbooks, one per kind of ticket.",
                          RUNBOOK_DOCS)],
    connections=[http_connection(AUTOMATION, "https://automation.example.com/api"),
                 http_connection(SERVICE_DESK, "https://itsm.example.com/api"),
                 outbox(OUTBOX)],
    agents=AGENTS,
    workflow={"name": "IT ticket", "description": "Classify an IT ticket, find its "
              "runbook, run a safe fix after approval or escalate it.",
              "definition": {"input_schema": INPUT_SCHEMA, "steps": STEPS}},
    samples={
        "locked_out": {"ticket_id": "IT-2041", "requester_email": "omar@corp.example",
                       "subject": "Locked out of my account",
                       "body": "I forgot my password and now I cannot sign in; it says my "
                               "account is locked."},
        "broken_laptop": {"ticket_id": "IT-2042", "requester_email": "lena@corp.example",
                          "subject": "Laptop screen cracked",
                          "body": "I dropped my laptop and the screen is cracked; the "
                                  "device needs repair or a replacement."},
    },
)
