"""Everything the app builds at start-up (in its lifespan), held on ``app.state.fundmodel``."""

from __future__ import annotations

from dataclasses import dataclass

from anyio import CapacityLimiter
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from fundmodel.api.stage_validation import StageValidator
from fundmodel.auth.cache import PrincipalCache
from fundmodel.db.brownout_store import BrownoutSchedule
from fundmodel.db.mode_store import ModeStore
from fundmodel.observability.metrics import ServiceMetrics
from fundmodel.settings import Settings


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: Engine
    mode_store: ModeStore
    brownouts: BrownoutSchedule
    registry: CollectorRegistry
    metrics: ServiceMetrics
    validator: StageValidator
    simulation_slots: CapacityLimiter
    expected_revisions: frozenset[str]
    principals: PrincipalCache
