"""The sampling distributions of the model, as transforms of a single uniform draw each.

One uniform per quantity (inverse-CDF sampling) keeps draws aligned across configurations: the same
uniform gives a larger exit multiple under a larger median, which is what makes comparisons on common
random numbers and the monotonicity tests meaningful.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fundmodel.engines.montecarlo.jit import jit, jit_step


@jit
def standard_normal_quantile(p: float) -> float:
    """Inverse CDF of N(0, 1) for ``p`` in (0, 1): Wichura's AS241 (PPND16), about 1e-16 relative error."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        num = (
            (
                (
                    (
                        (
                            (
                                (2.50908_09287_30122_6727e3 * r + 3.34305_75583_58812_8105e4) * r
                                + 6.72657_70927_00870_0853e4
                            )
                            * r
                            + 4.59219_53931_54987_1457e4
                        )
                        * r
                        + 1.37316_93765_50946_1125e4
                    )
                    * r
                    + 1.97159_09503_06551_4427e3
                )
                * r
                + 1.33141_66789_17843_7745e2
            )
            * r
            + 3.38713_28727_96366_6080e0
        ) * q
        den = (
            (
                (
                    (
                        (
                            (5.22649_52788_52854_5610e3 * r + 2.87290_85735_72194_2674e4) * r
                            + 3.93078_95800_09271_0610e4
                        )
                        * r
                        + 2.12137_94301_58659_5867e4
                    )
                    * r
                    + 5.39419_60214_24751_1077e3
                )
                * r
                + 6.87187_00749_20579_0830e2
            )
            * r
            + 4.23133_30701_60091_1252e1
        ) * r + 1.0
        return num / den
    r = p if q <= 0.0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r = r - 1.6
        num = (
            (
                (
                    (
                        (
                            (7.74545_01427_83414_07640e-4 * r + 2.27238_44989_26918_45833e-2) * r
                            + 2.41780_72517_74506_11770e-1
                        )
                        * r
                        + 1.27045_82524_52368_38258e0
                    )
                    * r
                    + 3.64784_83247_63204_60504e0
                )
                * r
                + 5.76949_72214_60691_40550e0
            )
            * r
            + 4.63033_78461_56545_29590e0
        ) * r + 1.42343_71107_49683_57734e0
        den = (
            (
                (
                    (
                        (
                            (1.05075_00716_44416_84324e-9 * r + 5.47593_80849_95344_94600e-4) * r
                            + 1.51986_66563_61645_71966e-2
                        )
                        * r
                        + 1.48103_97642_74800_74590e-1
                    )
                    * r
                    + 6.89767_33498_51000_04550e-1
                )
                * r
                + 1.67638_48301_83803_84940e0
            )
            * r
            + 2.05319_16266_37758_82187e0
        ) * r + 1.0
    else:
        r = r - 5.0
        num = (
            (
                (
                    (
                        (
                            (2.01033_43992_92288_13265e-7 * r + 2.71155_55687_43487_57815e-5) * r
                            + 1.24266_09473_88078_43860e-3
                        )
                        * r
                        + 2.65321_89526_57612_30930e-2
                    )
                    * r
                    + 2.96560_57182_85048_91230e-1
                )
                * r
                + 1.78482_65399_17291_33580e0
            )
            * r
            + 5.46378_49111_64114_36990e0
        ) * r + 6.65790_46435_01103_77720e0
        den = (
            (
                (
                    (
                        (
                            (2.04426_31033_89939_78564e-15 * r + 1.42151_17583_16445_88870e-7) * r
                            + 1.84631_83175_10054_68180e-5
                        )
                        * r
                        + 7.86869_13114_56132_59100e-4
                    )
                    * r
                    + 1.48753_61290_85061_48525e-2
                )
                * r
                + 1.36929_88092_27358_05310e-1
            )
            * r
            + 5.99832_20655_58879_37690e-1
        ) * r + 1.0
    x = num / den
    if q < 0.0:
        x = -x
    return x


@jit
def exit_multiple(u: float, log_median: float, sigma: float, cap: float) -> float:
    """Exit value as a multiple of the last post-money valuation: lognormal, optionally capped."""
    return exit_multiple_from_score(standard_normal_quantile(u), log_median, sigma, cap)


@jit
def exit_multiple_from_score(score: float, log_median: float, sigma: float, cap: float) -> float:
    """The exit multiple for a standard-normal ``score``: ``median x exp(sigma x score)``, capped."""
    return min(math.exp(log_median + sigma * score), cap)


@jit
def delay_quarters(score: float, median_quarters: float, sigma: float, shift: float) -> int:
    """Quarters until a company's next event: lognormal, ``median x exp(sigma x score + shift)`` for a
    standard-normal ``score``, rounded to whole quarters, at least one."""
    quarters = math.floor(median_quarters * math.exp(sigma * score + shift) + 0.5)
    return max(1, int(quarters))


QUANTILE_CELLS = 1024
"""Cells of the standard-normal quantile grid: cell ``i`` holds the uniforms in ``[i, i + 1) / 1024``."""
_SCORE_MARGIN = 1e-9
"""Absolute slack on a score comparison decided from the grid: far above any rounding of the quantile."""
_DELAY_MARGIN = 1e-9
"""Relative slack on a delay decided from the grid, for the same reason."""
_LARGEST_GRID_DELAY = 1e9
"""Delays (in quarters) beyond this are computed directly (and the cell's upper end may be infinite)."""


@jit
def quantile_grid(cells: int) -> npt.NDArray[np.float64]:
    """``grid[i]`` = the standard-normal quantile of ``i / cells`` (``-inf`` and ``+inf`` at the ends).

    The quantile is increasing, so a uniform ``u`` in cell ``i`` has its quantile between ``grid[i]`` and
    ``grid[i + 1]``: enough, most of the time, to decide a comparison or a rounding without computing it
    (:func:`normal_score_below`, :func:`delay_quarters_from_uniform`)."""
    grid = np.empty(cells + 1, dtype=np.float64)
    grid[0] = -np.inf
    grid[cells] = np.inf
    for cell in range(1, cells):
        grid[cell] = standard_normal_quantile(cell / cells)
    return grid


@jit_step
def quantile_cell(u: float, cells: int) -> int:
    """The grid cell of the uniform ``u`` (``u`` of exactly 1.0 falls in the last cell)."""
    return min(int(u * cells), cells - 1)


@jit_step
def normal_score_below(
    u: float, offset: float, scale: float, threshold: float, grid: npt.NDArray[np.float64]
) -> bool:
    """Exactly ``offset + scale x standard_normal_quantile(u) < threshold`` for ``scale > 0``.

    Decided from the bracket of the quantile in ``grid`` when the whole bracket is clearly on one side of
    the threshold (all but about one draw in a thousand); the quantile itself only when it straddles."""
    cell = quantile_cell(u, grid.shape[0] - 1)
    if offset + scale * grid[cell + 1] < threshold - _SCORE_MARGIN:
        return True
    if offset + scale * grid[cell] > threshold + _SCORE_MARGIN:
        return False
    return offset + scale * standard_normal_quantile(u) < threshold


@jit_step
def delay_quarters_from_uniform(
    u: float,
    median_quarters: float,
    sigma: float,
    shift: float,
    lognormal_grid: npt.NDArray[np.float64],
    row: int,
    shift_factor: float,
) -> int:
    """Exactly ``delay_quarters(standard_normal_quantile(u), median_quarters, sigma, shift)`` for
    ``sigma > 0``, given ``lognormal_grid[row] = exp(sigma x grid)`` and ``shift_factor = exp(shift)``.

    The delay is a whole number of quarters: when both ends of the cell's bracket round to the same
    number, that is the delay, with no quantile and no exponential computed (most draws)."""
    cell = quantile_cell(u, lognormal_grid.shape[1] - 1)
    scale = median_quarters * shift_factor
    high = scale * lognormal_grid[row, cell + 1]
    if high < _LARGEST_GRID_DELAY:
        low = scale * lognormal_grid[row, cell]
        low_quarters = math.floor(low * (1.0 - _DELAY_MARGIN) + 0.5)
        high_quarters = math.floor(high * (1.0 + _DELAY_MARGIN) + 0.5)
        if max(1, low_quarters) == max(1, high_quarters):
            return max(1, int(low_quarters))
    return delay_quarters(standard_normal_quantile(u), median_quarters, sigma, shift)
