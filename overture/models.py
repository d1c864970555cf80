"""Every mapped table, imported in one place for Alembic and `create_all`."""

from overture.billing import alerts as billing_alerts  # noqa: F401
from overture.billing import (  # noqa: F401
    budgets,
    counters,
    plan_models,
    rollups,
    standing,
    stripe_models,
    usage,
)
from overture.connectors import models as connectors_models  # noqa: F401
from overture.connectors import openapi_models  # noqa: F401
from overture.orchestration import models as orchestration_models  # noqa: F401
from overture.orchestration import trigger_models  # noqa: F401
from overture.orchestration.agents import models as agents_models  # noqa: F401
from overture.orchestration.llm import prices as llm_prices  # noqa: F401
from overture.orchestration.portal import models as portal_models  # noqa: F401
from overture.orchestration.templates import models as templates_models  # noqa: F401
from overture.platform import audit  # noqa: F401
from overture.platform import mail as platform_mail  # noqa: F401
from overture.platform.db import Base
from overture.tenants import (
    account_tokens_models,  # noqa: F401
    brand_models,  # noqa: F401
    domain_models,  # noqa: F401
    invitations_models,  # noqa: F401
    mail_server_models,  # noqa: F401
    mfa_models,  # noqa: F401
    sso_models,  # noqa: F401
    vault_models,  # noqa: F401
)
from overture.tenants import models as tenants_models  # noqa: F401
from overture.tenants import sessions as tenant_sessions  # noqa: F401
from overture.tenants.events import models as events_models  # noqa: F401

metadata = Base.metadata
