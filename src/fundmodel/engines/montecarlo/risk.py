"""Shared and persistent risk: the market state of each simulated fund and the quality of each company.

Each simulated fund draws one market state ``m`` (its vintage's exit and financing market) and each
company one latent quality ``q``, both standard normal and fixed for the fund's or the company's life.
At every round a company's outcome score is ``X = a_q q + a_m m + sqrt(1 - a_q^2 - a_m^2) e`` with a fresh
idiosyncratic ``e``; it fails when ``X`` falls below the stage's failure quantile, so ``X`` is standard
normal and every stage's failure rate stays exactly the profile's rate on average over markets and
companies. A survivor exits or raises its next round in the profile's proportion. Its exit multiple is
lognormal around the profile's median with the log-space shock ``b_q q + b_m m + sqrt(1 - ...) e'``,
again standard normal, and the delays shrink by ``exp(-timing * m)`` in a good market (failures: grow).

Because the same ``q`` drives every round, a company that graduated is, on average, better than one at
entry, and the follow-on policy ``topQuantile`` observes ``q`` with noise (``signalNoise``) to pick its
follow-ons. Every default is an assumption, chosen so that the model's fund-level dispersion matches the
published spread of fund outcomes (docs/model.md, "Shared market and company quality").
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from fundmodel.engines.montecarlo.schema import CamelModel, Number

Loading = Annotated[Number, Field(ge=0.0, le=0.95)]


class RiskModel(CamelModel):
    """How strongly the fund's market state and each company's quality drive outcomes (0: not at all)."""

    market_on_outcomes: Loading = 0.3
    """Loading of the market state on every round's survive-or-fail score."""
    quality_on_outcomes: Loading = 0.5
    """Loading of the company's quality on every round's survive-or-fail score."""
    market_on_exits: Loading = 0.35
    """Loading of the market state on the log exit multiple (in units of the stage's sigma)."""
    quality_on_exits: Loading = 0.3
    """Loading of the company's quality on the log exit multiple (in units of the stage's sigma)."""
    market_on_timing: Annotated[Number, Field(ge=0.0, le=1.0)] = 0.15
    """Delays scale by exp(-this x market state): rounds and exits come sooner in a good market."""
    signal_noise: Annotated[Number, Field(ge=0.0, le=10.0)] = 1.0
    """Standard deviation of the noise on the quality the fund observes (``topQuantile`` follow-ons)."""

    def loadings_problem(self) -> str | None:
        """Why the loadings leave no idiosyncratic risk, as ``"field: reason"``; ``None`` when they fit.

        A rule between two fields: :class:`SimulationConfig` raises it with the other cross-field rules
        (``INVALID_SIMULATION_CONFIG``), since JSON Schema can only bound each loading on its own."""
        if self.market_on_outcomes**2 + self.quality_on_outcomes**2 > 0.95:
            return (
                "qualityOnOutcomes: marketOnOutcomes^2 + qualityOnOutcomes^2 must not exceed 0.95 "
                "(some idiosyncratic risk must remain)"
            )
        if self.market_on_exits**2 + self.quality_on_exits**2 > 0.95:
            return (
                "qualityOnExits: marketOnExits^2 + qualityOnExits^2 must not exceed 0.95 "
                "(some idiosyncratic risk must remain)"
            )
        return None

    @property
    def idiosyncratic_on_outcomes(self) -> float:
        return math.sqrt(1.0 - self.market_on_outcomes**2 - self.quality_on_outcomes**2)

    @property
    def idiosyncratic_on_exits(self) -> float:
        return math.sqrt(1.0 - self.market_on_exits**2 - self.quality_on_exits**2)
