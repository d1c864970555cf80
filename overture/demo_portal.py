"""The demo's portal: what "Acme Support" shows its customers at /portal/acme-support/.

The support-triage workflow (`demo_support`), as "Contact support": a customer fills
in the ticket form (made from the workflow's `input_schema`) and sees the reply that
was written for them (the `reply` step), nothing else of the run. And "FAQ assistant",
an offline agent (`local`) that answers a question with the best passage of the
support FAQ, to chat with.
"""

from __future__ import annotations

from overture.demo_support import FAQ_COLLECTION
from overture.orchestration.agents import service
from overture.orchestration.models import Workflow
from overture.orchestration.portal import publishing
from overture.platform.db import scoped_to
from overture.tenants.models import Tenant, User

FAQ_ASSISTANT = "FAQ assistant"
ANSWER = ("{{ size(item.passages) > 0 ? item.passages[0].text : \"I could not find that "
          "in our help centre. Please contact support and a person will answer you.\" }}")


def seed_portal(workspace: Tenant, builder: User, workflow: Workflow) -> None:
    """Publish the workflow and an FAQ agent to the workspace's portal. Flushes."""
    with scoped_to(workspace.id):
        agent = service.create_agent(FAQ_ASSISTANT, {
            "name": FAQ_ASSISTANT, "role": "answers customers' questions from the FAQ",
            "model": {"provider": "local", "model": "template"}, "instructions": ANSWER,
            "tools": [{"kind": "knowledge", "ref": FAQ_COLLECTION, "name": "search_faq",
                       "description": "Search the support FAQ."}]},
            "Answers questions from the support FAQ.", created_by=builder.id)
        publishing.set_workflow(workflow, publishing.Settings(
            published=True, label="Contact support",
            description="Tell us what happened: we answer by email, and you can follow "
                        "your request here.", visible_steps=["reply"], show_output=False),
            builder.id)
        publishing.set_agent(agent, publishing.Settings(
            published=True, label=FAQ_ASSISTANT,
            description="Quick answers about refunds, invoices, signing in and more."),
            builder.id)
