"""Request and response shapes of agents, their notes, and knowledge collections."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import (
    UUID,
    DateTime,
    Decimal,
    Dict,
    Float,
    Integer,
    List,
    Nested,
    Raw,
    String,
)
from apiflask.validators import Length, Range

from overture.orchestration.agents import chat, knowledge, memory
from overture.web.api.schemas import Multiline, PageQuery, Strict

CONFIG_HELP = ("the agent's configuration: role, instructions, model {provider, model, "
               "temperature, max_output_tokens}, credential_id, tools [{kind, ref, name, "
               "description, allow_side_effects}], output {schema}, limits {max_iterations, "
               "max_tokens, max_cost}, script, notes (true: the agent reads its recent "
               "notes and may keep one with a `remember` tool), notes_retention_days")

# --------------------------------------------------------------------------- agents


class AgentCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    description = Multiline(load_default="", validate=Length(0, 5000))
    config = Dict(required=True, metadata={"description": CONFIG_HELP})


class AgentUpdate(Strict):
    name = String(validate=Length(1, 120))
    description = Multiline(validate=Length(0, 5000))
    config = Dict(metadata={"description": "replaces the configuration: the next version"})


class AgentOut(Schema):
    id = UUID()
    name = String()
    description = String()
    config = Dict(metadata={"description": "the current version's configuration"})
    current_version = Integer(allow_none=True)
    created_by_id = UUID(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()


class AgentPage(Schema):
    items = List(Nested(AgentOut))
    next_cursor = String(allow_none=True)


class AgentVersionOut(Schema):
    id = UUID()
    number = Integer()
    config = Dict()
    created_by_id = UUID(allow_none=True)
    created_at = DateTime()


class AgentVersionList(Schema):
    items = List(Nested(AgentVersionOut))


class NoteCreate(Strict):
    text = Multiline(required=True, validate=Length(1, memory.MAX_NOTE))


class NoteQuery(Strict):
    limit = Integer(load_default=20, validate=Range(1, memory.MAX_RECALL))


class NoteOut(Schema):
    id = UUID()
    text = String()
    created_at = DateTime()
    expires_at = DateTime(allow_none=True)


class NoteList(Schema):
    items = List(Nested(NoteOut), metadata={"description": "newest first; expired never"})


# --------------------------------------------------------------------------- conversations


class ConversationCreate(Strict):
    title = String(load_default="", validate=Length(0, chat.MAX_TITLE),
                   metadata={"description": "a label, e.g. who the end user is"})
    end_user_id = UUID(load_default=None, allow_none=True,
                       metadata={"description": "a member of this workspace, if the chat "
                                                "is theirs"})


class ConversationQuery(PageQuery):
    end_user_id = UUID(load_default=None, metadata={"description": "only this user's"})


class ConversationOut(Schema):
    id = UUID()
    agent_id = UUID()
    title = String()
    end_user_id = UUID(allow_none=True)
    created_at = DateTime()
    updated_at = DateTime()


class ConversationPage(Schema):
    items = List(Nested(ConversationOut))
    next_cursor = String(allow_none=True)


class MessageOut(Schema):
    role = String(metadata={"description": "user | assistant"})
    content = String()
    created_at = DateTime()


class ConversationDetail(ConversationOut):
    messages = List(Nested(MessageOut), metadata={"description": "the last `limit`, oldest "
                                                                  "first"})


class MessagesQuery(Strict):
    limit = Integer(load_default=100, validate=Range(1, memory.MAX_HISTORY))


class MessageCreate(Strict):
    content = Multiline(required=True, validate=Length(1, memory.MAX_MESSAGE))


class TurnUsage(Schema):
    input_tokens = Integer()
    output_tokens = Integer()
    cost = Decimal(as_string=True, allow_none=True, metadata={
        "description": "USD, from the price table; null when the model has no price"})
    agent_invocations = Integer(metadata={"description": "the agent's and its delegates'"})
    tool_calls = Integer()


class ReplyOut(Schema):
    message = Nested(MessageOut, metadata={"description": "the agent's reply, as stored"})
    status = String(metadata={"description": "ok | needs_human | needs_info | failed"})
    confidence = Float(allow_none=True)
    output = Raw(metadata={"description": "the answer's output (the reply's text, or the "
                                          "structured output the agent's schema asks for)"})
    usage = Nested(TurnUsage)


# --------------------------------------------------------------------------- knowledge


class CollectionCreate(Strict):
    name = String(required=True, validate=Length(1, 120))
    description = Multiline(load_default="", validate=Length(0, 5000))


class CollectionUpdate(Strict):
    name = String(validate=Length(1, 120))
    description = Multiline(validate=Length(0, 5000))


class CollectionOut(Schema):
    id = UUID()
    name = String()
    description = String()
    document_count = Integer()
    created_at = DateTime()


class CollectionPage(Schema):
    items = List(Nested(CollectionOut))
    next_cursor = String(allow_none=True)


class DocumentCreate(Strict):
    title = String(required=True, validate=Length(1, knowledge.MAX_TITLE))
    text = Multiline(required=True, validate=Length(1, knowledge.MAX_TEXT),
                  metadata={"description": "plain text; split into passages and embedded"})


class DocumentOut(Schema):
    id = UUID()
    title = String()
    passage_count = Integer()
    created_by_id = UUID(allow_none=True)
    created_at = DateTime()


class DocumentDetail(DocumentOut):
    text = String()


class DocumentPage(Schema):
    items = List(Nested(DocumentOut))
    next_cursor = String(allow_none=True)


class SearchQuery(Strict):
    q = String(required=True, validate=Length(1, knowledge.MAX_QUERY))
    k = Integer(load_default=3, validate=Range(1, knowledge.MAX_K))


class PassageOut(Schema):
    document_id = UUID()
    document_title = String()
    text = String()
    score = Float()


class PassageList(Schema):
    items = List(Nested(PassageOut), metadata={"description": "best first"})
