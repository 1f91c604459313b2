"""What clients are told about brownouts: the windows in force or to come, in ``GET /api/deprecations``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from fundmodel.apimodel import ApiModel
from fundmodel.db.brownout_store import BrownoutSchedule
from fundmodel.validation.brownout import upcoming_windows


class BrownoutNotice(ApiModel):
    """One brownout window: stage input that enforce rejects is answered 400 in it, as after the Sunset."""

    id: int = Field(description="The window's number (stable; a cancelled window disappears from the list).")
    starts_at: datetime = Field(description="When enforce starts applying (UTC).")
    ends_at: datetime = Field(description="When the window ends and the usual mode applies again (UTC).")
    canary_percent: float = Field(
        description="The percentage of clients enforced during the window (100: every client)."
    )
    active: bool = Field(description="Whether the window is in force now.")


def brownout_notices(schedule: BrownoutSchedule, now: datetime) -> list[BrownoutNotice]:
    """The windows of this worker's cache in force or still to come at ``now``, earliest first."""
    return [
        BrownoutNotice(
            id=window.window_id,
            starts_at=window.starts_at,
            ends_at=window.ends_at,
            canary_percent=window.canary_percent,
            active=window.active_at(now),
        )
        for window in upcoming_windows(schedule.windows(), now)
    ]
