from __future__ import annotations

from facturation_service.models import Base
from shared import run_alembic_env

run_alembic_env(Base.metadata)
