"""The sweep core: parameter paths and values, grid semantics, common random numbers, tornado, backsolve."""

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundmodel.engines.montecarlo import MIN_ITERATIONS, load_config, simulate
from fundmodel.engines.sweep import (
    INVALID_SWEEP,
    STAGE_WEIGHTS_RENORMALIZED,
    SWEEP_LIMIT,
    BacksolveSpec,
    Parameter,
    PreparedPoint,
    SensitivityParameter,
    SensitivitySpec,
    SweepSpec,
    expand_grid,
    parse_parameter,
    parse_values,
    resolve_path,
    run_backsolve,
    run_sensitivity,
    run_sweep,
)
from fundmodel.errors import InvalidInputError, InvalidStageDistributionError, SimulationConfigError
from fundmodel.stages import Stage

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "fund.json"
ITERATIONS = 40
SEED = 11


def base() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return data


def netTvpi_p50(body: dict[str, Any]) -> float:
    """The metric of one configuration simulated on its own, as a user would with `simulate`."""
    return float(simulate(load_config(body), iterations=ITERATIONS, seed=SEED).to_json()["netTvpi"]["p50"])


def sweep(*parameters: Parameter, metric: str = "netTvpi.p50", **options: Any) -> SweepSpec:
    return SweepSpec(
        base=options.pop("base", base()),
        parameters=parameters,
        metric=metric,
        iterations=ITERATIONS,
        seed=SEED,
        **options,
    )


# Values: start:stop:count and lists


@given(
    start=st.floats(-1e6, 1e6, allow_nan=False),
    stop=st.floats(-1e6, 1e6, allow_nan=False),
    count=st.integers(2, 1_000),
)
def test_start_stop_count_is_inclusive_and_evenly_spaced(start: float, stop: float, count: int) -> None:
    values = parse_values(f"{start!r}:{stop!r}:{count}")
    assert len(values) == count
    assert values[0] == start
    assert values[-1] == stop
    step = (stop - start) / (count - 1)
    for position, value in enumerate(values[:-1]):
        assert math.isclose(value, start + step * position, rel_tol=1e-9, abs_tol=1e-6)


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=20))
def test_a_comma_list_is_taken_as_given(values: list[float]) -> None:
    assert parse_values(",".join(repr(value) for value in values)) == tuple(values)


@pytest.mark.parametrize(
    "text", ["0:1", "0:1:1", "0:1:x", "a:1:3", "0:1:3:4", "1,,2", "", "nan,1", "0:inf:3", "0:1:1001"]
)
def test_malformed_values_are_the_callers_error(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_values(text, field="parameters[0].values")
    assert caught.value.code == INVALID_SWEEP
    assert caught.value.field == "parameters[0].values"


def test_the_cli_form_is_path_equals_values() -> None:
    assert parse_parameter("reserveRatio=0:0.8:3") == Parameter("reserveRatio", (0.0, 0.4, 0.8))
    with pytest.raises(InvalidInputError, match="PATH=VALUES"):
        parse_parameter("reserveRatio")


# Paths


@pytest.mark.parametrize(
    ("path", "segments", "stage"),
    [
        ("reserveRatio", ("reserveRatio",), None),
        ("managementFeeStepDownRate", ("managementFeeStepDownRate",), None),
        ("riskModel.marketOnOutcomes", ("riskModel", "marketOnOutcomes"), None),
        ("stageDistribution.Series A", ("stageDistribution", "series_a"), Stage.SERIES_A),
        (
            "stageProfiles.seed.exitMultipleMedian",
            ("stageProfiles", "seed", "exitMultipleMedian"),
            Stage.SEED,
        ),
    ],
)
def test_numeric_fields_resolve(path: str, segments: tuple[str, ...], stage: Stage | None) -> None:
    resolved = resolve_path(path)
    assert resolved.segments == segments
    assert resolved.stage is stage


def test_a_stage_alias_in_a_path_keeps_its_spelling_for_the_mode_policy() -> None:
    resolved = resolve_path("stageDistribution.Series A")
    assert resolved.stage_spelling == "Series A"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("reserve", "not a field here"),
        ("followOnPolicy", "not a numeric field"),
        ("stageProfiles.seed", "is an object"),
        ("stageDistribution", "needs a stage"),
        ("stageDistribution.seeed", "did you mean: seed"),
        ("reserveRatio.value", "not a numeric field"),
        ("stageProfiles.seed.exitMultiple", "not a field here"),
    ],
)
def test_unknown_or_non_numeric_paths_are_rejected_up_front(path: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        sweep(Parameter(path, (1.0,)))
    assert caught.value.code == INVALID_SWEEP
    assert caught.value.field == "parameters[0].path"


def test_a_stage_key_is_replaced_whatever_the_bases_spelling() -> None:
    body = base()
    body["stageDistribution"] = {"Pre-Seed": 0.1, "Seed": 0.6, "Series A": 0.3}
    (point,) = expand_grid(sweep(Parameter("stageDistribution.seed", (0.5,)), base=body))
    assert point.body["stageDistribution"] == {"Pre-Seed": 0.1, "Seed": 0.5, "Series A": 0.3}
    assert body["stageDistribution"]["Seed"] == 0.6  # the base is not modified


# Grid semantics and common random numbers


def test_the_grid_is_the_cartesian_product_last_parameter_fastest() -> None:
    spec = sweep(Parameter("reserveRatio", (0.2, 0.5, 0.8)), Parameter("carryRate", (0.2, 0.3)))
    result = run_sweep(spec)
    assert [point.values for point in result.points] == [
        {"reserveRatio": reserve, "carryRate": carry} for reserve in (0.2, 0.5, 0.8) for carry in (0.2, 0.3)
    ]
    assert [point.index for point in result.points] == list(range(6))
    assert result.points_total == 6
    assert not result.cancelled


def test_every_point_is_exactly_simulate_with_the_same_seed() -> None:
    result = run_sweep(sweep(Parameter("reserveRatio", (0.2, 0.7))))
    for point in result.points:
        body = {**base(), "reserveRatio": point.values["reserveRatio"]}
        assert point.outcome.metric == netTvpi_p50(body)
    assert result.points[0].outcome.metric != result.points[1].outcome.metric


def test_a_parameter_that_does_not_change_the_config_gives_identical_points() -> None:
    # followOnTopShare only matters under the topQuantile policy; the example follows on pro rata, so the
    # config simulated is the same at every point: on common random numbers they must be bit-identical.
    result = run_sweep(sweep(Parameter("followOnTopShare", (0.1, 0.5, 0.9))))
    outcomes = [(point.outcome.metric, point.outcome.summary) for point in result.points]
    assert outcomes[0][0] is not None
    assert outcomes == [outcomes[0]] * 3


def test_points_report_the_standard_summary() -> None:
    (point,) = run_sweep(sweep(Parameter("reserveRatio", (0.45,)))).points
    summary = point.outcome.summary
    assert summary is not None
    assert set(summary) == {"netTvpiP10", "netTvpiP50", "netTvpiP90", "probTvpiAtLeast3"}
    assert summary["netTvpiP10"] <= summary["netTvpiP50"] <= summary["netTvpiP90"]
    assert summary["netTvpiP50"] == point.outcome.metric


def test_an_invalid_point_is_reported_and_the_sweep_goes_on() -> None:
    result = run_sweep(sweep(Parameter("reserveRatio", (0.3, 0.99, 0.6))))
    errors = [point.outcome.error for point in result.points]
    assert errors[0] is None
    assert errors[2] is None
    assert errors[1] is not None
    assert errors[1]["code"] == "INVALID_SIMULATION_CONFIG"
    assert errors[1]["field"] == "reserveRatio"
    assert result.points[1].outcome.metric is None
    assert result.points[2].outcome.metric == netTvpi_p50({**base(), "reserveRatio": 0.6})


def test_stage_weights_off_one_fail_the_point_unless_renormalized() -> None:
    strict = run_sweep(sweep(Parameter("stageDistribution.seed", (0.6, 0.8))))
    assert strict.points[0].outcome.error is None
    assert strict.points[1].outcome.error is not None
    assert "SUM_MISMATCH" in strict.points[1].outcome.error["message"]

    lenient = run_sweep(sweep(Parameter("stageDistribution.seed", (0.6, 0.8)), renormalize_stages=True))
    warning = lenient.points[1].outcome.warnings[0]
    assert warning["code"] == STAGE_WEIGHTS_RENORMALIZED
    expected = {
        **base(),
        "stageDistribution": {"pre_seed": 0.1 / 1.2, "seed": 0.8 / 1.2, "series_a": 0.3 / 1.2},
    }
    assert lenient.points[1].outcome.metric == netTvpi_p50(expected)
    assert lenient.points[0].outcome.warnings == ()


def test_the_point_hook_sees_each_raw_body_and_its_errors_become_the_points() -> None:
    seen: list[dict[str, Any]] = []

    def prepare(body: dict[str, Any]) -> PreparedPoint:
        seen.append(body)
        if body["stageDistribution"]["seed"] > 0.7:
            raise InvalidStageDistributionError("weights sum to 1.2", field="stageDistribution")
        return PreparedPoint(body=body, warnings=({"code": "CHECKED", "message": "ok"},))

    result = run_sweep(sweep(Parameter("stageDistribution.seed", (0.6, 0.8))), prepare_point=prepare)
    assert [body["stageDistribution"]["seed"] for body in seen] == [0.6, 0.8]
    assert result.points[0].outcome.warnings == ({"code": "CHECKED", "message": "ok"},)
    assert result.points[1].outcome.error == {
        "code": "INVALID_STAGE_DISTRIBUTION",
        "message": "weights sum to 1.2",
        "field": "stageDistribution",
    }


def test_should_stop_returns_a_partial_result_marked_cancelled() -> None:
    progress: list[tuple[int, int]] = []
    result = run_sweep(
        sweep(Parameter("reserveRatio", (0.1, 0.2, 0.3, 0.4))),
        progress=lambda done, total: progress.append((done, total)),
        should_stop=lambda: len(progress) >= 2,
    )
    assert result.cancelled
    assert len(result.points) == 2
    assert progress == [(1, 4), (2, 4)]
    document = result.to_json()
    assert (document["pointsDone"], document["pointsTotal"], document["cancelled"]) == (2, 4, True)


def test_to_json_is_camel_case_and_strict_json() -> None:
    result = run_sweep(sweep(Parameter("reserveRatio", (0.3, 0.99))))
    document = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert document["kind"] == "sweep"
    assert document["parameters"] == [{"path": "reserveRatio", "values": [0.3, 0.99]}]
    assert set(document["points"][0]) == {"index", "values", "metric", "summary", "warnings", "error"}
    assert document["points"][1]["metric"] is None


# Up-front errors and limits


def test_an_unknown_metric_lists_the_choices() -> None:
    with pytest.raises(InvalidInputError, match=r"netTvpi\.p50") as caught:
        run_sweep(sweep(Parameter("reserveRatio", (0.3,)), metric="netTvpi.p51"))
    assert caught.value.field == "metric"
    choices = caught.value.extra["choices"]
    assert {"netTvpi.p50", "dpi.mean", "netIrr.p10", "probTvpiAtLeast.3"} <= set(choices)
    assert not any(choice.startswith(("engine.", "jCurve", "yearlyBands")) for choice in choices)


def test_an_invalid_base_is_the_callers_error() -> None:
    with pytest.raises(SimulationConfigError) as caught:
        run_sweep(sweep(Parameter("carryRate", (0.2,)), base={**base(), "reserveRatio": 2.0}))
    assert caught.value.field == "base.reserveRatio"


def test_grid_and_work_limits() -> None:
    many = Parameter("reserveRatio", tuple(index / 100 for index in range(40)))
    with pytest.raises(InvalidInputError) as caught:
        sweep(many, Parameter("carryRate", tuple(index / 100 for index in range(30))))
    assert caught.value.code == SWEEP_LIMIT
    with pytest.raises(InvalidInputError) as caught:
        sweep(many, max_work=39 * ITERATIONS)
    assert caught.value.code == SWEEP_LIMIT
    assert sweep(many, max_work=40 * ITERATIONS).point_count == 40


def test_at_most_three_distinct_parameters() -> None:
    four = [Parameter(path, (0.1,)) for path in ("reserveRatio", "carryRate", "catchUp", "recyclingRatio")]
    with pytest.raises(InvalidInputError, match="1 to 3"):
        sweep(*four)
    with pytest.raises(InvalidInputError, match="twice"):
        sweep(Parameter("stageDistribution.seed", (0.1,)), Parameter("stageDistribution.Seed", (0.2,)))


@pytest.mark.parametrize(
    ("field", "value"), [("iterations", MIN_ITERATIONS - 1), ("iterations", True), ("seed", -1)]
)
def test_iterations_and_seed_are_checked(field: str, value: object) -> None:
    arguments: dict[str, Any] = {"iterations": ITERATIONS, "seed": SEED, field: value}
    with pytest.raises(InvalidInputError) as caught:
        SweepSpec(
            base=base(), parameters=(Parameter("reserveRatio", (0.1,)),), metric="dpi.mean", **arguments
        )
    assert caught.value.field == field


# Sensitivity (tornado)


def test_the_tornado_is_ranked_by_the_size_of_the_effect() -> None:
    spec = SensitivitySpec(
        base=base(),
        parameters=(
            SensitivityParameter("followOnTopShare", 0.1, 0.9),
            SensitivityParameter("stageProfiles.series_a.exitMultipleMedian", 1.0, 9.0),
            SensitivityParameter("carryRate", 0.15, 0.3),
            SensitivityParameter("reserveRatio", 0.1, 0.8),
        ),
        metric="netTvpi.p50",
        iterations=ITERATIONS,
        seed=SEED,
    )
    result = run_sensitivity(spec)
    assert result.base_metric == netTvpi_p50(base())
    swings = [row.swing for row in result.rows]
    assert [row.path for row in result.rows][-1] == "followOnTopShare"
    assert swings == sorted(swings, key=lambda swing: -(swing or 0.0))
    assert swings[-1] == 0.0  # no effect at all on common random numbers
    by_path = {row.path: row for row in result.rows}
    assert by_path["reserveRatio"].at_low.metric == netTvpi_p50({**base(), "reserveRatio": 0.1})
    assert by_path["reserveRatio"].base_value == 0.45
    assert by_path["stageProfiles.series_a.exitMultipleMedian"].base_value is not None  # the default's


def test_a_failed_end_ranks_last_with_its_error() -> None:
    spec = SensitivitySpec(
        base=base(),
        parameters=(
            SensitivityParameter("reserveRatio", 0.1, 0.99),
            SensitivityParameter("carryRate", 0.15, 0.3),
        ),
        metric="netTvpi.p50",
        iterations=ITERATIONS,
        seed=SEED,
    )
    rows = run_sensitivity(spec).to_json()["rows"]
    assert [row["path"] for row in rows] == ["carryRate", "reserveRatio"]
    assert rows[1]["effect"] is None
    assert rows[1]["errorHigh"]["field"] == "reserveRatio"


# Backsolve


BACKSOLVE_ITERATIONS = 500
"""Enough funds that the median falls monotonically with the reserve ratio over [0.1, 0.9] at this seed."""


def median_at(reserve_ratio: float) -> float:
    config = load_config({**base(), "reserveRatio": reserve_ratio})
    return float(simulate(config, iterations=BACKSOLVE_ITERATIONS, seed=SEED).to_json()["netTvpi"]["p50"])


def backsolve(target: float, **options: Any) -> BacksolveSpec:
    return BacksolveSpec(
        base=base(),
        path=options.pop("path", "reserveRatio"),
        low=options.pop("low", 0.1),
        high=options.pop("high", 0.9),
        metric="netTvpi.p50",
        target=target,
        iterations=BACKSOLVE_ITERATIONS,
        seed=SEED,
        **options,
    )


def test_backsolve_recovers_a_reachable_target() -> None:
    target = median_at(0.55)
    result = run_backsolve(backsolve(target, tolerance=0.005))
    assert result.status == "reached"
    assert result.value is not None
    assert result.achieved_metric is not None
    assert abs(result.achieved_metric - target) <= 0.005
    # Common random numbers: the value found gives exactly the metric reported.
    assert median_at(result.value) == result.achieved_metric
    assert abs(result.value - 0.55) < 0.1
    assert result.steps == len(result.history) <= 2 + 30


def test_backsolve_reports_an_unreachable_target_with_both_ends() -> None:
    result = run_backsolve(backsolve(100.0))
    assert result.status == "notReachable"
    assert result.value is None
    assert result.metric_at_low == median_at(0.1)
    assert result.metric_at_high == median_at(0.9)
    assert result.to_json()["status"] == "notReachable"


def test_backsolve_stops_after_max_steps_with_the_closest_value() -> None:
    target = median_at(0.55)
    result = run_backsolve(backsolve(target, tolerance=1e-12, max_steps=2))
    assert result.status == "notConverged"
    assert result.steps <= 4
    best = min(result.history, key=lambda pair: abs(pair[1] - target))
    assert (result.value, result.achieved_metric) == best


def test_backsolve_with_an_invalid_end_is_the_callers_error() -> None:
    with pytest.raises(SimulationConfigError, match=r"reserveRatio = 0\.99"):
        run_backsolve(backsolve(2.0, high=0.99))


def test_backsolve_needs_low_below_high() -> None:
    with pytest.raises(InvalidInputError, match="below"):
        backsolve(2.0, low=0.5, high=0.5)


def test_backsolve_can_be_cancelled() -> None:
    result = run_backsolve(backsolve(1.0), should_stop=lambda: True)
    assert result.status == "cancelled"
    assert result.steps == 0


def test_an_alias_in_a_varied_stage_path_sets_the_canonical_stage() -> None:
    result = run_sweep(
        sweep(Parameter("stageDistribution.Series A", (0.3,)), Parameter("stageDistribution.Seed", (0.6,)))
    )
    (point,) = result.points
    assert point.values == {"stageDistribution.Series A": 0.3, "stageDistribution.Seed": 0.6}
    assert point.outcome.metric == netTvpi_p50(base())


def test_values_between_the_ends_read_as_written_not_with_the_steps_binary_rounding() -> None:
    assert parse_values("0:0.8:5") == (0.0, 0.2, 0.4, 0.6, 0.8)
    assert parse_values("0.1:0.7:7") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
