"""Running simulations: argument checks, chunking, threads, progress, and assembling the result.

Work is cut into chunks of at most ``CHUNK_FUNDS`` funds; each chunk's funds are split into tasks that
run the Numba kernel (which releases the GIL) on up to ``threads`` threads. Random draws depend only on
(seed, fund index, company key = (entry stage, index within the stage), round, purpose), so results are
bit-identical for any chunking or thread count, and :func:`compare` gets common random numbers for free.
The same holds across machines: :func:`simulate_block` computes any range of funds into
:class:`FundArrays`, and :func:`assemble` turns the concatenated blocks into the result (``simulate`` is
exactly that, with the blocks written in place on local threads).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo import cashflows as kernel
from fundmodel.engines.montecarlo import events as ledger
from fundmodel.engines.montecarlo.companies import PortfolioPlan, plan_portfolio
from fundmodel.engines.montecarlo.config import QUARTERS_PER_YEAR, SimulationConfig
from fundmodel.engines.montecarlo.kernel_inputs import FundBatch, fund_terms, portfolio_arrays
from fundmodel.engines.montecarlo.metrics import (
    column_medians,
    column_percentiles,
    probabilities_at_least,
    summarize,
    tail_risk,
)
from fundmodel.engines.montecarlo.result import (
    BAND_MEASURES,
    BAND_PERCENTILES,
    DEAL_BUCKETS,
    CapitalSummary,
    DealOutcomes,
    EngineInfo,
    JCurve,
    ReturnsBySource,
    SimulationResult,
    SourceReturns,
    YearlyBands,
)
from fundmodel.engines.montecarlo.rng import FUNDS_PER_BLOCK, block_keys
from fundmodel.errors import SimulationConfigError
from fundmodel.stages import Stage

ENGINE_VERSION = "2.0.0"
"""Bumped whenever the model or the random streams change what a given config and seed produce."""

MIN_ITERATIONS = 10
MAX_ITERATIONS = 2_000_000
"""About 2.2 GB of per-fund results at a 25-year horizon (1.1 kB per fund: 36 result columns, the J-curve
and the yearly points); the API enforces far smaller limits."""
MAX_SEED = 2**64 - 1
CHUNK_FUNDS = 65_536
"""Funds per progress step (and per block of work handed to the threads)."""
TASK_FUNDS = 8_192
"""Upper bound on funds per thread task; tasks come in multiples of the thread count (one thread runs a
whole chunk in one call). 10,000 funds on two threads: 2 tasks instead of 6 at 2,048 took about 2 ms
(3 %) less CPU and no more wall time, measured alternately at load 2.3-2.8 (docs/performance.md)."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(funds_done, funds_total)`` after each chunk, on the calling thread."""


def default_threads() -> int:
    """Threads used when the caller does not say: the CPUs this process may run on, at most 8."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def simulate(
    config: SimulationConfig,
    *,
    iterations: int,
    seed: int,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
) -> SimulationResult:
    """Simulate ``iterations`` funds of ``config`` with ``seed``; see docs/model.md for the model."""
    _check_arguments(config, iterations, seed)
    plan = plan_portfolio(config)
    worker_count = default_threads() if threads is None else threads
    if isinstance(worker_count, bool) or not isinstance(worker_count, int) or worker_count < 1:
        raise SimulationConfigError("threads must be a positive integer", field="threads")

    arrays = FundArrays.empty(config, iterations)

    def run(first_fund: int, count: int) -> None:
        _run_kernel(config, plan, seed, first_fund, count, arrays.out, arrays.j_curve, arrays.yearly)

    done = 0
    with ThreadPoolExecutor(max_workers=worker_count) as pool:
        while done < iterations:
            chunk = min(CHUNK_FUNDS, iterations - done)
            # A multiple of the thread count of equal tasks, so no thread is left with the tail alone.
            tasks = worker_count * math.ceil(chunk / (worker_count * TASK_FUNDS))
            task = max(math.ceil(chunk / tasks), 1)
            starts = range(done, done + chunk, task)
            if worker_count == 1:
                # One kernel call per chunk: splitting only serves the threads, and each call builds its
                # inputs (quantile grids, block keys, scratch arrays) again. Results do not depend on it.
                run(done, chunk)
            else:
                futures = [pool.submit(run, start, min(task, done + chunk - start)) for start in starts]
                for future in futures:
                    future.result()
            done += chunk
            if progress is not None:
                progress(done, iterations)
        return _assemble_on(pool, worker_count, config, plan, arrays, seed)


@dataclass(frozen=True, slots=True)
class FundArrays:
    """Per-fund results of consecutive funds of one seed's stream: what a block of work produces.

    ``out`` is ``(OUT_COLUMNS, funds)`` float64, ``j_curve`` ``(funds, horizon + 1)`` float32 and
    ``yearly`` ``(funds, YEARLY_MEASURES, yearly points)`` float32. Every fund's values depend only on
    (config, seed, fund index), so blocks computed anywhere and concatenated in fund order equal the arrays
    of one local run bit for bit.
    """

    out: npt.NDArray[np.float64]
    j_curve: npt.NDArray[np.float32]
    yearly: npt.NDArray[np.float32]

    @property
    def funds(self) -> int:
        return int(self.out.shape[1])

    @classmethod
    def empty(cls, config: SimulationConfig, funds: int) -> FundArrays:
        horizon = config.horizon_quarters
        return cls(
            out=np.empty((kernel.OUT_COLUMNS, funds), dtype=np.float64),
            j_curve=np.empty((funds, horizon + 1), dtype=np.float32),
            yearly=np.empty((funds, kernel.YEARLY_MEASURES, kernel.yearly_points(horizon)), dtype=np.float32),
        )

    @classmethod
    def concatenate(cls, blocks: Sequence[FundArrays]) -> FundArrays:
        """The blocks' funds one after the other (pass them in fund order)."""
        if not blocks:
            raise SimulationConfigError("at least one block of funds is needed", field="blocks")
        return cls(
            out=np.concatenate([block.out for block in blocks], axis=1),
            j_curve=np.concatenate([block.j_curve for block in blocks], axis=0),
            yearly=np.concatenate([block.yearly for block in blocks], axis=0),
        )


def simulate_block(config: SimulationConfig, *, seed: int, first_fund: int, count: int) -> FundArrays:
    """Simulate funds ``[first_fund, first_fund + count)`` of ``seed``'s stream on the calling thread.

    The unit of work a distributed runner ships; :func:`assemble` turns the concatenated blocks of funds
    ``[0, iterations)`` into the result :func:`simulate` gives for the same config and seed.
    """
    _check_arguments(config, MIN_ITERATIONS, seed)
    for name, value in (("first_fund", first_fund), ("count", count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SimulationConfigError(f"{name} must be a non-negative integer", field=name)
    if count < 1 or first_fund + count > MAX_ITERATIONS:
        raise SimulationConfigError(
            f"a block must hold 1 to {MAX_ITERATIONS:,} funds below fund {MAX_ITERATIONS:,}", field="count"
        )
    plan = plan_portfolio(config)
    arrays = FundArrays.empty(config, count)
    _run_funds(config, plan, seed, first_fund, count, arrays, output_offset=-first_fund)
    return arrays


def assemble(
    config: SimulationConfig, arrays: FundArrays, *, seed: int, threads: int | None = None
) -> SimulationResult:
    """The result of funds ``[0, arrays.funds)`` of ``seed`` from their per-fund arrays (percentiles are
    exact: computed once over all funds)."""
    _check_arguments(config, arrays.funds, seed)
    worker_count = default_threads() if threads is None else threads
    plan = plan_portfolio(config)
    with ThreadPoolExecutor(max_workers=worker_count) as pool:
        return _assemble_on(pool, worker_count, config, plan, arrays, seed)


def _assemble_on(
    pool: ThreadPoolExecutor,
    worker_count: int,
    config: SimulationConfig,
    plan: PortfolioPlan,
    arrays: FundArrays,
    seed: int,
) -> SimulationResult:
    horizon = config.horizon_quarters
    medians = np.empty(horizon + 1, dtype=np.float64)

    def fill_medians(first: int, stop: int) -> None:
        column_medians(arrays.j_curve, medians, first, stop)

    _split_columns(fill_medians, horizon + 1, pool, worker_count)
    bands = _yearly_bands(config, arrays.yearly, pool, worker_count)
    return _assemble(config, plan, arrays.out, medians, bands, arrays.funds, seed)


def compare(
    configs: Sequence[SimulationConfig],
    *,
    iterations: int,
    seed: int,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
) -> list[SimulationResult]:
    """Simulate several configs on common random numbers (same seed streams per company key).

    In fund ``i``, the ``j``-th company entering at a stage sees the same draws at round ``r`` in every
    config, and the fund the same market state, so the differences between the results come from the
    configs (e.g. the stage allocation), not from noise; adding companies at one stage changes no other
    company's draws.
    ``progress`` receives the funds done across all configs.
    """
    if not configs:
        raise SimulationConfigError("compare needs at least one configuration", field="configs")
    results: list[SimulationResult] = []
    total = iterations * len(configs)
    for position, config in enumerate(configs):
        offset = position * iterations

        def forward(done: int, _: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total)

        results.append(simulate(config, iterations=iterations, seed=seed, progress=forward, threads=threads))
    return results


def warm_up() -> float:
    """Compile (or load from cache) the kernels with a tiny run; return the seconds it took."""
    started = time.perf_counter()
    config = SimulationConfig(fund_size=1e8, stage_distribution={Stage.SEED: 1.0})
    simulate(config, iterations=MIN_ITERATIONS, seed=0, threads=1)
    return time.perf_counter() - started


def _check_arguments(config: object, iterations: object, seed: object) -> None:
    if not isinstance(config, SimulationConfig):
        raise SimulationConfigError(
            f"config must be a SimulationConfig, not {type(config).__name__}", field="config"
        )
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise SimulationConfigError("iterations must be an integer", field="iterations")
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise SimulationConfigError(
            f"iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS:,}, not {iterations:,}",
            field="iterations",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SimulationConfigError(
            f"seed must be an integer between 0 and 2**64 - 1, not {seed!r}", field="seed"
        )


def _run_kernel(
    config: SimulationConfig,
    plan: PortfolioPlan,
    seed: int,
    first_fund: int,
    count: int,
    out: npt.NDArray[np.float64],
    j_curve: npt.NDArray[np.float32],
    yearly: npt.NDArray[np.float32],
) -> None:
    """Funds ``[first_fund, first_fund + count)`` into the same columns of run-sized arrays."""
    _run_funds(config, plan, seed, first_fund, count, FundArrays(out, j_curve, yearly), output_offset=0)


def _run_funds(
    config: SimulationConfig,
    plan: PortfolioPlan,
    seed: int,
    first_fund: int,
    count: int,
    arrays: FundArrays,
    *,
    output_offset: int,
) -> None:
    """Fund ``f`` goes to column ``f + output_offset`` of ``arrays``."""
    first_block = first_fund // FUNDS_PER_BLOCK
    last_block = (first_fund + count - 1) // FUNDS_PER_BLOCK
    batch = FundBatch(
        first_fund=first_fund,
        fund_count=count,
        output_offset=first_fund + output_offset,
        block_keys=block_keys(seed, first_block, last_block - first_block + 1),
        first_block=first_block,
    )
    kernel.simulate_funds(
        batch, portfolio_arrays(plan), fund_terms(config, plan), arrays.out, arrays.j_curve, arrays.yearly
    )


def _split_columns(
    fill: Callable[[int, int], None], columns: int, pool: ThreadPoolExecutor, worker_count: int
) -> None:
    """Run ``fill(first, stop)`` over ``columns`` split in one range per thread; with one thread, on the
    calling thread (the pool then never starts a thread)."""
    if worker_count == 1:
        fill(0, columns)
        return
    bounds = np.linspace(0, columns, worker_count + 1).astype(int)
    futures = [
        pool.submit(fill, int(first), int(stop)) for first, stop in itertools.pairwise(bounds) if stop > first
    ]
    for future in futures:
        future.result()


def _yearly_bands(
    config: SimulationConfig,
    yearly: npt.NDArray[np.float32],
    pool: ThreadPoolExecutor,
    worker_count: int,
) -> YearlyBands:
    """Percentiles across funds of each yearly measure, computed column by column on the threads."""
    iterations, measures, points = yearly.shape
    columns = yearly.reshape(iterations, measures * points)
    levels = np.empty((len(BAND_PERCENTILES), measures * points), dtype=np.float64)

    fractions = np.asarray(BAND_PERCENTILES, dtype=np.float64) / 100.0

    def fill(first: int, stop: int) -> None:
        column_percentiles(columns, fractions, levels, first, stop)

    _split_columns(fill, measures * points, pool, worker_count)
    horizon = config.horizon_quarters
    years = [point * 1.0 for point in range(horizon // kernel.QUARTERS_PER_POINT + 1)]
    if horizon % kernel.QUARTERS_PER_POINT:
        years.append(horizon / QUARTERS_PER_YEAR)
    bands = {
        measure: {
            level: [float(value) for value in levels[row, index * points : (index + 1) * points]]
            for row, level in enumerate(BAND_PERCENTILES)
        }
        for index, measure in enumerate(BAND_MEASURES)
    }
    return YearlyBands(years=years, bands=bands)


def _assemble(
    config: SimulationConfig,
    plan: PortfolioPlan,
    out: npt.NDArray[np.float64],
    median_j_curve: npt.NDArray[np.float64],
    yearly_bands: YearlyBands,
    iterations: int,
    seed: int,
) -> SimulationResult:
    net_tvpi = out[kernel.OUT_NET_TVPI]
    net_irr = out[kernel.OUT_NET_IRR]
    median_curve = median_j_curve * config.fund_size
    samples = {
        "netTvpi": net_tvpi,
        "dpi": out[kernel.OUT_DPI],
        "rvpi": out[kernel.OUT_RVPI],
        "netIrr": net_irr,
        "grossMoic": out[kernel.OUT_GROSS_MOIC],
        "lossRatio": out[kernel.OUT_LOSS_RATIO],
        "paidIn": out[kernel.OUT_PAID_IN],
        "investedInitial": out[kernel.OUT_INVESTED_INITIAL],
        "investedFollowOn": out[kernel.OUT_INVESTED_FOLLOW_ON],
        "followOnRequested": out[kernel.OUT_FOLLOW_ON_REQUESTED],
        "reserveCalled": out[kernel.OUT_RESERVE_CALLED],
        "recycled": out[kernel.OUT_RECYCLED],
        "carryPaid": out[kernel.OUT_CARRY],
        "lpDistributed": out[kernel.OUT_LP_DISTRIBUTED],
        "lpResidual": out[kernel.OUT_LP_RESIDUAL],
        "grossProceeds": out[kernel.OUT_GROSS_PROCEEDS],
        "distributable": out[kernel.OUT_DISTRIBUTABLE],
        "residualValue": out[kernel.OUT_RESIDUAL_VALUE],
        "marketState": out[kernel.OUT_MARKET],
        "fundReturners": out[kernel.OUT_LEDGER + ledger.LEDGER_FUND_RETURNERS],
    }
    capital = CapitalSummary(
        commitments=config.fund_size,
        management_fees=config.total_management_fees,
        fund_expenses=config.total_expenses,
        investable=config.investable_capital,
        initial_budget=plan.initial_budget,
        reserve=plan.reserve,
        companies_by_stage=dict(plan.companies_by_stage),
        initial_check_by_stage=dict(plan.initial_check_by_stage),
        mean_paid_in=_mean(samples["paidIn"]),
        mean_initial_deployed=_mean(samples["investedInitial"]),
        mean_follow_on_deployed=_mean(samples["investedFollowOn"]),
        mean_follow_on_requested=_mean(samples["followOnRequested"]),
        mean_reserve_used=_mean(samples["reserveCalled"]),
        mean_recycled=_mean(samples["recycled"]),
        mean_carry_paid=_mean(samples["carryPaid"]),
    )
    return SimulationResult(
        net_tvpi=summarize(net_tvpi),
        dpi=summarize(samples["dpi"]),
        rvpi=summarize(samples["rvpi"]),
        net_irr=summarize(net_irr),
        gross_moic=summarize(samples["grossMoic"]),
        loss_ratio=summarize(samples["lossRatio"]),
        prob_tvpi_at_least=probabilities_at_least(net_tvpi),
        tvpi_risk=tail_risk(net_tvpi),
        irr_risk=tail_risk(net_irr),
        j_curve=JCurve(
            quarters=list(range(config.horizon_quarters + 1)),
            median_cumulative_net_cash_flow=[float(value) for value in median_curve],
        ),
        capital=capital,
        stage_distribution=dict(plan.stage_weights),
        engine=EngineInfo(version=ENGINE_VERSION, iterations=iterations, seed=seed),
        yearly_bands=yearly_bands,
        deal_outcomes=_deal_outcomes(out),
        returns_by_source=_returns_by_source(out),
        prob_fund_returner=float(np.count_nonzero(samples["fundReturners"] > 0.0)) / iterations,
        samples=samples,
    )


def _ledger_total(out: npt.NDArray[np.float64], entry: int) -> float:
    return float(np.sum(out[kernel.OUT_LEDGER + entry]))


def _deal_outcomes(out: npt.NDArray[np.float64]) -> DealOutcomes:
    counts = [_ledger_total(out, ledger.LEDGER_COUNT + index) for index in range(ledger.BUCKETS)]
    dollars = [_ledger_total(out, ledger.LEDGER_DOLLARS + index) for index in range(ledger.BUCKETS)]
    return DealOutcomes(
        by_count=_shares(counts),
        by_dollars=_shares(dollars),
    )


def _shares(values: list[float]) -> dict[str, float]:
    total = sum(values)
    return {
        name: (value / total if total > 0.0 else 0.0)
        for name, value in zip(DEAL_BUCKETS, values, strict=True)
    }


def _returns_by_source(out: npt.NDArray[np.float64]) -> ReturnsBySource:
    def pooled(invested_column: int, returned: int, lost: int) -> SourceReturns:
        invested = float(np.sum(out[invested_column]))
        if invested <= 0.0:
            return SourceReturns(gross_moic=0.0, loss_ratio=0.0)
        return SourceReturns(
            gross_moic=_ledger_total(out, returned) / invested,
            loss_ratio=_ledger_total(out, lost) / invested,
        )

    return ReturnsBySource(
        initial=pooled(
            kernel.OUT_INVESTED_INITIAL, ledger.LEDGER_INITIAL_RETURNED, ledger.LEDGER_INITIAL_LOST
        ),
        follow_on=pooled(
            kernel.OUT_INVESTED_FOLLOW_ON, ledger.LEDGER_FOLLOW_ON_RETURNED, ledger.LEDGER_FOLLOW_ON_LOST
        ),
    )


def _mean(values: npt.NDArray[np.float64]) -> float:
    return float(np.mean(values))
