"""Content production: a brief comes in; the "Research lead" supervises an audience and
an SEO researcher (each searching its own knowledge); the "Writer" drafts the article
and the "SEO reviewer" sends it back until it is on target (two rounds at most); the
editor-in-chief approves (and may edit) it, and it is published to the CMS.

Patterns: supervisor, review loop, human approval, knowledge, actions.
"""

from __future__ import annotations

from overture.orchestration.templates.catalogue import (
    UseCase,
    agent,
    collection,
    http_connection,
    search,
)

CMS, BRAND, SEO = "CMS", "Brand and audience", "SEO guidelines"
LEAD, AUDIENCE, SEO_RESEARCHER = "Research lead", "Audience researcher", "SEO researcher"
WRITER, REVIEWER = "Writer", "SEO reviewer"

BRAND_DOCS = [
    ("Who we write for", """\
Our readers are operations managers at companies of 50 to 500 people. They are busy, \
practical and sceptical of hype: lead with the problem, show a worked example, end with \
one next step they can take today."""),
    ("Voice", """\
Plain, warm and confident. Short sentences, active voice, no jargon without an \
explanation, no exclamation marks. Use 'you' for the reader and 'we' for the company."""),
]
SEO_DOCS = [
    ("On-page basics", """\
Put the focus keyword in the title, the first paragraph and one subheading. Keep the \
title under 60 characters and write a meta description of 140 to 160 characters that \
promises what the article delivers."""),
    ("Structure", """\
Articles of 800 to 1,200 words rank best for us. Use a subheading every 200 to 300 \
words, a short list where steps are involved and link to one related article."""),
]

WRITER_TEMPLATE = """\
# {{ input.title }}

{{ input.topic }}: if you are responsible for {{ input.keyword }}, this guide is for you.

## Why {{ input.keyword }} matters

{{ input.brief }}

## What we learned

{{ input.research }}

## Your next step

Pick one process this week and apply {{ input.keyword }} to it; you will see the \
difference by Friday.
"""

AGENTS = [
    agent(AUDIENCE, "Knows the readers and the brand voice.",
          "audience researcher: says who the article is for and how to speak to them, "
          "from the brand and audience notes",
          model="wordllama",
          tools=[search(BRAND, "search_brand", "Search the brand and audience notes.")]),
    agent(SEO_RESEARCHER, "Knows the SEO guidelines.",
          "SEO researcher: gives the on-page and structure rules the article must meet "
          "for its focus keyword", model="wordllama",
          tools=[search(SEO, "search_seo", "Search the SEO guidelines.")]),
    agent(LEAD, "Coordinates the research for an article.",
          "content research lead: asks the audience and SEO researchers, then combines "
          "their findings into one research note for the writer", model="wordllama"),
    agent(WRITER, "Writes articles from a brief and its research.",
          "B2B content writer: writes the article from the brief and the research in the "
          "brand voice, keyword in the title and first paragraph",
          instructions=WRITER_TEMPLATE),
    agent(REVIEWER, "Checks a draft against the brief and the focus keyword.",
          "SEO editor: approves a draft only when it answers the brief and meets the SEO "
          "guidelines; otherwise says what to change", model="wordllama"),
]

INPUT_SCHEMA = {
    "type": "object", "required": ["title", "topic", "keyword", "brief"],
    "properties": {
        "title": {"type": "string", "title": "Working title", "maxLength": 120},
        "topic": {"type": "string", "title": "Topic", "maxLength": 200},
        "keyword": {"type": "string", "title": "Focus keyword", "maxLength": 80},
        "brief": {"type": "string", "title": "Brief", "maxLength": 5000}}}

STEPS = [
    {"id": "research", "type": "supervisor", "agent": LEAD,
     "specialists": [AUDIENCE, SEO_RESEARCHER], "max_rounds": 2,
     "task": "Research this article: who it is for and what it must do to rank.",
     "input": {"topic": "{{ input.topic }}", "keyword": "{{ input.keyword }}",
               "brief": "{{ input.brief }}"},
     "next": "write"},
    {"id": "write", "type": "review_loop", "drafter": WRITER, "reviewer": REVIEWER,
     "task": "Write the article for this brief.", "max_rounds": 2,
     "input": {"title": "{{ input.title }}", "topic": "{{ input.topic }}",
               "keyword": "{{ input.keyword }}", "brief": "{{ input.brief }}",
               "research": "{{ string(steps.research.output) }}"},
     "escalate": "approve", "next": "approve"},
    {"id": "approve", "type": "approval",
     "prompt": "Publish \"{{ input.title }}\"? The SEO reviewer "
               "{{ steps.write.approved ? 'approved it' : 'did not approve it' }} after "
               "{{ steps.write.rounds }} round(s). Edit the title or body if needed.",
     "data": {"title": "{{ input.title }}", "body": "{{ steps.write.draft }}",
              "keyword": "{{ input.keyword }}", "seo_feedback": "{{ steps.write.feedback }}"},
     "editable": ["title", "body"], "assignee": {"role": "admin"},
     "on_reject": "rejected", "next": "publish"},
    {"id": "publish", "type": "action", "action": "http.request",
     "connection": f"@connection:{CMS}",
     "input": {"method": "POST", "url": "/posts", "json": {
         "title": "{{ steps.approve.data.title }}", "body": "{{ steps.approve.data.body }}",
         "keyword": "{{ input.keyword }}", "status": "published"}},
     "retry": {"max_attempts": 3, "backoff_seconds": 1}, "next": "done"},
    {"id": "done", "type": "transform", "output": {
        "status": "published", "url": "{{ steps.publish.body.url }}",
        "title": "{{ steps.approve.data.title }}", "seo_approved": "{{ steps.write.approved }}",
        "rounds": "{{ steps.write.rounds }}",
        "researchers": "{{ steps.research.delegations.map(d, d.agent) }}"}},
    {"id": "rejected", "type": "stop", "output": {"status": "not_published",
                                                  "title": "{{ input.title }}"}},
]

USE_CASE = UseCase(
    key="content-production", name="Content production",
    summary="A brief is researched by a supervised team, written, edited in an SEO "
            "review loop, approved by an editor and published to the CMS.",
    patterns=("supervisor", "review loop", "approval", "knowledge", "actions"),
    knowledge=[collection(BRAND, "Who we write for and how we sound.", BRAND_DOCS),
               collection(SEO, "On-page SEO rules for every article.", SEO_DOCS)],
    connections=[http_connection(CMS, "https://cms.example.com/api")],
    agents=AGENTS,
    workflow={"name": "Article from a brief", "description": "Research, write, SEO-edit, "
              "approve and publish an article.",
              "definition": {"input_schema": INPUT_SCHEMA, "steps": STEPS}},
    samples={
        "article": {"title": "Workflow automation for operations teams",
                    "topic": "Automating approvals in operations",
                    "keyword": "workflow automation",
                    "brief": "Explain how operations managers can use workflow automation "
                             "to cut approval delays, with one worked example of a purchase "
                             "approval and the time it saves."}},
)
