"""The offender-log sampler the app builds follows STAGE_OFFENDER_LOG_PER_MINUTE / _SAMPLE_FRACTION."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ApiClient, open_api_client, settings_for

DROPPED = "fundmodel_stage_validation_offender_logs_dropped_total"
STRATEGIES = "/api/portfolio/strategies"


@pytest.fixture
def strict_sampling(database_url: str) -> Iterator[ApiClient]:
    """One offender event per endpoint and minute, and none of the surplus."""
    settings = settings_for(
        database_url, stage_offender_log_per_minute=1, stage_offender_log_sample_fraction=0.0
    )
    client, close = open_api_client(settings)
    yield client
    close()


def test_the_configured_limit_and_fraction_apply(strict_sampling: ApiClient) -> None:
    for position in range(4):
        response = strict_sampling.request(
            "POST", STRATEGIES, json={"name": f"s{position}", "stageAllocation": {"Seed": 1.0}}
        )
        assert response.status_code == 201, response.text
    dropped = strict_sampling.state.registry.get_sample_value(DROPPED, {"endpoint": STRATEGIES})
    assert dropped == 3  # the defaults (60 a minute) would have logged all four


def test_the_defaults_log_every_event_under_sixty_a_minute(api: ApiClient) -> None:
    for position in range(4):
        api.request("POST", STRATEGIES, json={"name": f"d{position}", "stageAllocation": {"Seed": 1.0}})
    assert api.state.registry.get_sample_value(DROPPED, {"endpoint": STRATEGIES}) == 0
