"""The demo's support-triage workflow in the workspace "Acme Support", and everything
it needs, as data; `seed_support` creates it all and publishes the workflow.

It runs offline end to end (no network, no API key, no download):

1. `triage` (classify): the local "Ticket triager" picks billing, technical or sales
   by sentence-embedding similarity to the routes' descriptions (wordllama).
2. `account` (action): `demo_crm.find_account` on the "Demo CRM" connection, whose
   made-up accounts live on the connection itself (connectors/library/demo_crm.py).
3. `write` (review_loop): the local "Reply drafter" searches the "Support FAQ"
   knowledge collection and fills its template; the local "Reply reviewer" approves a
   draft close enough to the ticket. Not approved in two rounds: a person edits it.
4. `approve_refund` (approval): only when the ticket asks for a refund above
   REFUND_LIMIT; an admin approves (and may edit the reply) or rejects.
5. `send_email`, and `post_slack` for technical tickets: `demo_outbox` actions on the
   "Demo outbox" connection, which record the messages in that connection's outbox
   and deliver nothing (connectors/library/demo_outbox.py). Point these steps at real
   `smtp` and `slack` connections (same input) to deliver for real.

A run's input is a ticket: {"customer_email", "subject", "body", "refund_amount"
(optional, in USD)}; SAMPLE_TICKETS has some.
"""

from __future__ import annotations

import copy
from typing import Any

from overture.connectors import connections
from overture.orchestration import workflows
from overture.orchestration.agents import (
    knowledge,
    patterns,  # noqa: F401  (registers the agent steps)
    service,
)
from overture.orchestration.models import Workflow
from overture.platform.db import db, scoped_to
from overture.tenants.access import Principal, access_to
from overture.tenants.models import Tenant, User

WORKFLOW_NAME = "Support triage"
CRM_CONNECTION = "Demo CRM"
OUTBOX_CONNECTION = "Demo outbox"
FAQ_COLLECTION = "Support FAQ"
REFUND_LIMIT = 100  # USD; a larger refund needs an admin's approval
TECH_CHANNEL = "#support-technical"
TRIAGER, DRAFTER, REVIEWER = "Ticket triager", "Reply drafter", "Reply reviewer"

# --------------------------------------------------------------------------- knowledge

FAQ: list[tuple[str, str]] = [
    ("Refund policy", f"""\
We refund duplicate charges and charges for months you did not use, if you ask within 30 \
days of the charge.
Refunds go back to the original payment method and reach you within 5 to 10 business days.
Support agents can refund up to ${REFUND_LIMIT} straight away; a refund above \
${REFUND_LIMIT} is approved by a manager first, usually within one business day.
Annual plans cancelled within 14 days of purchase are refunded in full.
"""),
    ("Invoices and payment methods", """\
Invoices are emailed to the account owner on the first day of each month and are always \
available under Settings > Billing.
You can change the card, the billing address or the VAT number under Settings > Billing; \
the next invoice uses the new details.
If a payment fails we retry it three times over seven days and email the account owner \
each time.
Your workspace stays fully usable while a failed payment is retried.
"""),
    ("Password reset and signing in", """\
To reset your password, choose "Forgot password" on the sign-in page and follow the link \
we email you; the link works for one hour.
If you sign in with single sign-on (SSO), your company's identity provider manages your \
password, so ask your IT team to reset it.
After ten failed sign-in attempts an account is locked for 15 minutes to protect it.
If you lost your two-factor device, an account owner can reset two-factor authentication \
for you under Settings > Members.
"""),
    ("Outages and service status", """\
Our status page at status.acme.example.com shows live incidents and planned maintenance, \
and you can subscribe to updates there.
During an incident the app may show error 500 or load a blank dashboard; your data is \
safe and sync resumes on its own once the incident is resolved.
If the status page shows no incident, clear your browser cache, update the app to the \
latest version and try again.
If the problem continues, reply with the time it happened and a screenshot of the error \
so our engineers can trace it.
"""),
    ("Exports and integrations", """\
You can export any report to CSV or PDF from the report's menu; large exports are emailed \
to you when they are ready.
If an export fails or the app crashes while exporting, try a shorter date range and make \
sure you are on the latest version.
Integrations with Slack, Google Sheets and Jira are set up under Settings > Integrations \
by an admin.
"""),
    ("Plans and pricing", """\
Starter costs $12 per user per month and suits teams of up to 10 people.
Business costs $29 per user per month and adds advanced reports, integrations and \
priority support.
Enterprise is priced on request and adds single sign-on, audit logs, a dedicated \
success manager and a 99.9% uptime guarantee.
Paying yearly gives two months free, and seats you add during a billing period are \
charged pro rata.
For a quote or a demo, our sales team answers within one business day.
"""),
]

# --------------------------------------------------------------------------- the demo CRM

SAMPLE_ACCOUNTS: list[dict[str, Any]] = [
    {"id": "ACC-1001", "name": "Maria Garcia", "first_name": "Maria",
     "email": "maria@brightlane.example", "company": "Brightlane Studio", "plan": "Business",
     "seats": 12, "monthly_spend": 348, "customer_since": "2023-04-12", "status": "active",
     "last_invoice": {"number": "INV-2026-0311", "amount": 348, "status": "paid twice"}},
    {"id": "ACC-1002", "name": "Tom Becker", "first_name": "Tom",
     "email": "tom@beckerlogistics.example", "company": "Becker Logistics", "plan": "Starter",
     "seats": 3, "monthly_spend": 36, "customer_since": "2025-01-30", "status": "active",
     "last_invoice": {"number": "INV-2026-0307", "amount": 36, "status": "paid"}},
    {"id": "ACC-1003", "name": "Priya Natarajan", "first_name": "Priya",
     "email": "priya@orbit-analytics.example", "company": "Orbit Analytics",
     "plan": "Enterprise", "seats": 140, "monthly_spend": 5200,
     "customer_since": "2021-09-01", "status": "active",
     "last_invoice": {"number": "INV-2026-0298", "amount": 5200, "status": "paid"}},
    {"id": "ACC-1004", "name": "Lucas Martin", "first_name": "Lucas",
     "email": "lucas@fernwood.example", "company": "Fernwood Clinic", "plan": "Business",
     "seats": 25, "monthly_spend": 725, "customer_since": "2024-06-18", "status": "active",
     "last_invoice": {"number": "INV-2026-0302", "amount": 725, "status": "paid"}},
    {"id": "ACC-1005", "name": "Aiko Tanaka", "first_name": "Aiko",
     "email": "aiko@kumo-design.example", "company": "Kumo Design", "plan": "Starter",
     "seats": 2, "monthly_spend": 24, "customer_since": "2026-10-02", "status": "trial",
     "last_invoice": None},
]

SAMPLE_TICKETS: dict[str, dict[str, Any]] = {
    "technical": {
        "customer_email": "priya@orbit-analytics.example",
        "subject": "Dashboard shows error 500",
        "body": "Since this morning our dashboard is blank and the app shows error 500 "
                "when we open a report. Is there an outage?"},
    "refund_above_limit": {
        "customer_email": "maria@brightlane.example",
        "subject": "Charged twice for March",
        "body": "Our card was charged twice for the March invoice INV-2026-0311. Please "
                "refund the duplicate charge of $348.",
        "refund_amount": 348},
    "refund_below_limit": {
        "customer_email": "tom@beckerlogistics.example",
        "subject": "Refund for a month we did not use",
        "body": "We paused our project and did not use the app last month, but the card "
                "was charged $36. Could we get that refunded?",
        "refund_amount": 36},
    "sales": {
        "customer_email": "lucas@fernwood.example",
        "subject": "Quote for 20 more seats",
        "body": "We are opening a second clinic and want to add 20 seats. What would the "
                "Business plan cost if we paid yearly, and can we get a demo of Enterprise?"},
}

# --------------------------------------------------------------------------- agents

# The drafter is `local`: no model writes this; its instructions are a template (CEL in
# {{ }}) that sees the step's input as `input` and its searches' passages as
# `item.passages`, best first.
REPLY_TEMPLATE = """\
Hello {{ input.customer_name }},

Thank you for contacting Acme Support about "{{ input.subject }}".

{{ input.refund_amount > 0 ? "We are refunding $" + string(input.refund_amount) + \
" to your original payment method; it reaches you within 5 to 10 business days.\\n\\n" \
: "" }}{{ size(item.passages) > 0 ? item.passages[0].text : "A member of our team is \
looking into this and will write to you again within one business day." }}

{{ input.category == "technical" ? "Our technical team has been told about your ticket \
and follows it until it is solved.\\n\\n" : "" }}If anything is still unclear, just reply \
to this email.

Kind regards,
Acme Support
"""

AGENTS: list[tuple[str, str, dict[str, Any]]] = [
    (TRIAGER, "Sorts incoming tickets into billing, technical or sales.", {
        "role": "support ticket triage",
        "model": {"provider": "local", "model": "wordllama"}}),
    (DRAFTER, "Drafts replies from the support FAQ.", {
        "role": "drafts replies to support tickets from the FAQ",
        "model": {"provider": "local", "model": "template"},
        "instructions": REPLY_TEMPLATE,
        "tools": [{"kind": "knowledge", "ref": FAQ_COLLECTION, "name": "search_faq",
                   "description": "Search the support FAQ for the passages that answer the "
                                  "ticket."}]}),
    (REVIEWER, "Checks that a draft reply answers the ticket.", {
        "role": "reviews draft replies before they are sent",
        "model": {"provider": "local", "model": "wordllama"}}),
]

# --------------------------------------------------------------------------- the workflow

CUSTOMER = "steps.account.found ? steps.account.account.name : input.customer_email"
# A ticket, as the API, the console's test run and the portal's form take it.
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["customer_email", "subject", "body"],
    "properties": {
        "customer_email": {"type": "string", "format": "email", "title": "Your email",
                           "description": "we answer here"},
        "subject": {"type": "string", "title": "Subject", "minLength": 1, "maxLength": 200},
        "body": {"type": "string", "title": "What happened?", "minLength": 1,
                 "maxLength": 5000},
        "refund_amount": {"type": "number", "title": "Refund asked for (USD)", "minimum": 0,
                          "description": "only if you ask for money back"}}}
DEFINITION: dict[str, Any] = {"input_schema": INPUT_SCHEMA, "steps": [
    {"id": "triage", "type": "classify", "agent": TRIAGER,
     "task": "Which team should handle this support ticket?",
     "input": {"subject": "{{ input.subject }}", "body": "{{ input.body }}"},
     "routes": [
         {"name": "billing", "next": "account",
          "description": "billing: invoices, payments, charges, refunds, receipts, "
                         "subscription renewal and money taken from a card"},
         {"name": "technical", "next": "account",
          "description": "technical problems: errors, bugs, crashes, outages, the app or "
                         "site is down, login and password reset trouble, sync failures"},
         {"name": "sales", "next": "account",
          "description": "sales: pricing, plans, quotes, upgrading, buying more seats, "
                         "discounts, demos and enterprise contracts"}]},
    {"id": "account", "type": "action", "action": "demo_crm.find_account",
     "connection": CRM_CONNECTION,  # a name here; seed_support puts the connection's id
     "input": {"email": "{{ input.customer_email }}"},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "write"},
    {"id": "write", "type": "review_loop", "drafter": DRAFTER, "reviewer": REVIEWER,
     "task": "Write the reply to this support ticket.",
     "input": {
         "subject": "{{ input.subject }}", "body": "{{ input.body }}",
         "category": "{{ steps.triage.route }}",
         "customer_name": "{{ steps.account.found ? steps.account.account.first_name "
                          ": 'there' }}",
         "refund_amount": "{{ has(input.refund_amount) ? input.refund_amount : 0 }}"},
     "max_rounds": 2, "escalate": "check_reply", "next": "reply"},
    {"id": "check_reply", "type": "approval",
     "prompt": "The reviewer did not approve the draft reply to \"{{ input.subject }}\": "
               "edit it and approve, or reject to answer by hand.",
     "data": {"ticket": "{{ input.subject }}", "customer_email": "{{ input.customer_email }}",
              "reviewer_feedback": "{{ steps.write.feedback }}",
              "reply": "{{ steps.write.draft }}"},
     "editable": ["reply"], "assignee": {"role": "operator"},
     "on_reject": "reply_rejected", "next": "reply"},
    {"id": "reply", "type": "transform",
     "output": {"text": "{{ has(steps.check_reply) ? steps.check_reply.data.reply "
                        ": steps.write.draft }}"},
     "next": "refund_check"},
    {"id": "refund_check", "type": "condition",
     "if": f"has(input.refund_amount) && input.refund_amount > {REFUND_LIMIT}",
     "then": "approve_refund", "else": "send_email"},
    {"id": "approve_refund", "type": "approval",
     "prompt": f"{{{{ {CUSTOMER} }}}} asks for a refund of ${{{{ input.refund_amount }}}}, "
               f"above the ${REFUND_LIMIT} support may refund alone. Approve the refund and "
               "the reply (edit the reply if needed), or reject both.",
     "data": {"customer": f"{{{{ {CUSTOMER} }}}}",
              "customer_email": "{{ input.customer_email }}",
              "company": "{{ steps.account.found ? steps.account.account.company : '' }}",
              "plan": "{{ steps.account.found ? steps.account.account.plan : '' }}",
              "ticket": "{{ input.subject }}",
              "refund_amount": "{{ input.refund_amount }}", "refund_limit": REFUND_LIMIT,
              "reply": "{{ steps.reply.text }}"},
     "editable": ["reply"], "assignee": {"role": "admin"},
     "timeout_seconds": 86400, "timeout_action": "escalate", "escalate_to_role": "owner",
     "on_reject": "refund_declined", "next": "send_email"},
    {"id": "send_email", "type": "action", "action": "demo_outbox.send_email",
     "connection": OUTBOX_CONNECTION,
     "input": {"to": ["{{ input.customer_email }}"], "subject": "Re: {{ input.subject }}",
               "text": "{{ has(steps.approve_refund) ? steps.approve_refund.data.reply "
                       ": steps.reply.text }}",
               "from_name": "Acme Support"},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "technical_check"},
    {"id": "technical_check", "type": "condition",
     "if": "steps.triage.route == 'technical'", "then": "post_slack", "else": "done"},
    {"id": "post_slack", "type": "action", "action": "demo_outbox.post_message",
     "connection": OUTBOX_CONNECTION,
     "input": {"channel": TECH_CHANNEL,
               "text": f"Technical ticket from {{{{ {CUSTOMER} }}}}: \"{{{{ input.subject }}}}\". "
                       "The reply went out by email (run {{ run.id }})."},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "done"},
    {"id": "done", "type": "transform", "output": {
        "category": "{{ steps.triage.route }}",
        "confidence": "{{ steps.triage.confidence }}",
        "customer": f"{{{{ {CUSTOMER} }}}}",
        "reply": "{{ steps.send_email.text }}",
        "reply_status": "{{ steps.send_email.status }}",
        "delivered": "{{ steps.send_email.delivered }}",
        "email_message_id": "{{ steps.send_email.message_id }}",
        "slack_message_id": "{{ has(steps.post_slack) ? steps.post_slack.message_id : null }}",
        "refund_approval": "{{ has(steps.approve_refund) ? steps.approve_refund.decision "
                           ": 'not needed' }}"}},
    {"id": "refund_declined", "type": "stop", "output": {
        "category": "{{ steps.triage.route }}", "reply_status": "not_sent",
        "reason": "an admin rejected the refund; answer the customer by hand"}},
    {"id": "reply_rejected", "type": "stop", "output": {
        "category": "{{ steps.triage.route }}", "reply_status": "not_sent",
        "reason": "the draft reply was rejected; answer the customer by hand"}},
]}


def definition(connection_ids: dict[str, str]) -> dict[str, Any]:
    """DEFINITION with each action step's connection name replaced by its id."""
    found = copy.deepcopy(DEFINITION)
    for step in found["steps"]:
        if "connection" in step:
            step["connection"] = connection_ids[step["connection"]]
    return found


# --------------------------------------------------------------------------- seeding


def seed_support(workspace: Tenant, builder: User) -> Workflow:
    """Create the connections, FAQ, agents and published workflow in `workspace`, as
    `builder` (who must hold credential.manage there). Flushes; the caller commits."""
    with scoped_to(workspace.id):
        access = access_to(Principal(builder), workspace)
        crm = connections.create(access, connector_key="demo_crm", name=CRM_CONNECTION,
                                 settings={"accounts": copy.deepcopy(SAMPLE_ACCOUNTS)})
        outbox = connections.create(access, connector_key="demo_outbox",
                                    name=OUTBOX_CONNECTION, settings={"messages": []})
        faq = knowledge.create_collection(
            FAQ_COLLECTION, "Acme's help-centre answers: refunds, billing, sign-in, "
                            "outages, exports, plans.", created_by=builder.id)
        for title, text in FAQ:
            knowledge.add_document(faq, title, text, created_by=builder.id)
        for name, description, config in AGENTS:
            service.create_agent(name, {"name": name, **config}, description,
                                 created_by=builder.id)
        workflow = workflows.create_workflow(
            WORKFLOW_NAME, "Classify a support ticket, look up the customer, draft and "
                           "review a reply from the FAQ, ask an admin before a refund "
                           f"above ${REFUND_LIMIT}, then send the reply (demo outbox).",
            draft=definition({CRM_CONNECTION: str(crm.id), OUTBOX_CONNECTION: str(outbox.id)}),
            created_by=builder.id)
        workflows.publish(workflow, builder.id)
        db.session.flush()
        return workflow
