"""Every mapped table, imported in one place for Alembic and `create_all`."""

from overture.platform import audit  # noqa: F401
from overture.platform.db import Base
from overture.tenants import models as tenants_models  # noqa: F401

metadata = Base.metadata
