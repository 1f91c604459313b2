"""The gate catalogue: which gates guard each step of the ladder, as pure functions of the evidence.

The controller gathers the evidence (Prometheus measurements, stored-data facts, the audit log); these
functions only turn it into :class:`~fundmodel.rollout.gates.GateResult` values, so every threshold,
window and "too few to judge" rule can be tested without a database or a Prometheus server.

- ``off -> warn``: :func:`traffic_gates` (each validated endpoint sees traffic);
- ``warn -> enforce 10 %``: :func:`warn_gates` (warn observed long enough, would-reject ratios low,
  stored data canonical and verified, a fresh backup);
- ``enforce N % -> the next percentage``: :func:`canary_gates` (soak time, enough canary and baseline
  validations, canary reject ratio absolute and against the baseline, validator latency, no automatic
  downgrade during the step);
- ``enforce N % -> enforce 100 %``: the canary gates, plus :func:`breaking_clients_gate` (no client outside
  an exemption sent input enforce rejects, named from the usage ledger);
- ``enforce 100 % -> sunset``: :func:`sunset_gates` (no deprecated alias sent in the window, on traffic),
  plus :func:`alias_clients_gate` (no client outside an exemption sent an alias, named).

Any gate named in the configuration's ``dry_run_gates`` is reported but never blocks
(:func:`~fundmodel.rollout.gates.as_dry_run`, applied by the controller to every step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fundmodel.rollout.client_gates import (
    ALIAS_KINDS,
    ENFORCE_BREAKING_KINDS,
    ClientExemption,
    ClientGateReport,
    ClientKindUsage,
    client_gate,
)
from fundmodel.rollout.config import GateConfig, format_duration, traffic_gate_name
from fundmodel.rollout.data_checks import DataFacts
from fundmodel.rollout.gates import (
    GateResult,
    GateStatus,
    Measurement,
    evaluate_gate,
    judged_on,
    relative_gate,
    sample_gate,
)

__all__ = [
    "CanaryEvidence",
    "ClientEvidence",
    "WarnEvidence",
    "alias_clients_gate",
    "breaking_clients_gate",
    "canary_gates",
    "canary_window",
    "sunset_gates",
    "traffic_gates",
    "warn_gates",
]


@dataclass(frozen=True, slots=True)
class WarnEvidence:
    """What the ``warn -> enforce 10 %`` gates judge."""

    now: datetime
    warn_since: datetime | None
    """When warn began (``None``: the audit log does not say, e.g. the mode was never set)."""
    would_reject_ratio: Measurement
    worst_hour_would_reject_ratio: Measurement
    facts: DataFacts
    observation_reset: str | None = None
    """``rollout reset-observation`` moved the observation's start (when, who, why), or ``None``."""
    observed_since: datetime | None = None
    """Where the observation starts: ``warn_since`` or a later reset (``None``: as ``warn_since``)."""


@dataclass(frozen=True, slots=True)
class CanaryEvidence:
    """What the gates of the next canary percentage judge, all measured over the step's window."""

    now: datetime
    step_label: str
    """The current step as shown to operators (e.g. ``enforce 10%``)."""
    entered_at: datetime | None
    """When the current percentage began (``None``: the audit log does not say)."""
    window: timedelta
    """The window the Prometheus measurements cover: :func:`canary_window`."""
    canary_reject_ratio: Measurement
    canary_validations: Measurement
    baseline_validations: Measurement
    baseline_would_reject_ratio: Measurement
    validation_p99_seconds: Measurement
    auto_downgrades: int | None
    """Automatic downgrades since the step began (``None``: its start is unknown)."""
    step_began: datetime | None
    canary_clients_active: int | None = None
    """Active API keys in the canary cohort (named or by hash); ``0``: no enforced sample can ever come."""


@dataclass(frozen=True, slots=True)
class SunsetEvidence:
    """What the ``enforce 100 % -> sunset`` gates judge."""

    window: timedelta
    alias_validations: Measurement
    all_validations: Measurement


@dataclass(frozen=True, slots=True)
class ClientEvidence:
    """What the client gates judge: the usage ledger's clients of the gate's kinds over the window."""

    window: timedelta
    cutoff: datetime
    """The window's start: clients last seen before it are out of the window."""
    usage: tuple[ClientKindUsage, ...]
    ledger_validations: int
    """Every validation the ledger counted in the window (0: nothing to judge on)."""
    exemptions: tuple[ClientExemption, ...] = ()
    revoked_client_ids: frozenset[str] = frozenset()


def breaking_clients_gate(evidence: ClientEvidence) -> tuple[GateResult, ClientGateReport]:
    """``-> enforce 100 %``: no client outside an exemption sent input enforce rejects in the window."""
    window = format_duration(evidence.window)
    return client_gate(
        "clients_rejected",
        f"clients not exempt that sent input enforce rejects in the last {window}: kind rejected "
        "(an enforced client got a 400), and kinds unknown and sum - input a warn-mode client sent that "
        "enforce WILL reject once it applies to every client",
        kinds=ENFORCE_BREAKING_KINDS,
        window=evidence.window,
        cutoff=evidence.cutoff,
        usage=evidence.usage,
        ledger_validations=evidence.ledger_validations,
        exemptions=evidence.exemptions,
        revoked_client_ids=evidence.revoked_client_ids,
    )


def alias_clients_gate(evidence: ClientEvidence) -> tuple[GateResult, ClientGateReport]:
    """``-> sunset``: no client outside an exemption sent a deprecated alias in the window."""
    window = format_duration(evidence.window)
    return client_gate(
        "clients_alias",
        f"clients not exempt that sent a deprecated alias in the last {window} (each would get a 400 "
        "once aliases are rejected)",
        kinds=ALIAS_KINDS,
        window=evidence.window,
        cutoff=evidence.cutoff,
        usage=evidence.usage,
        ledger_validations=evidence.ledger_validations,
        exemptions=evidence.exemptions,
        revoked_client_ids=evidence.revoked_client_ids,
    )


def canary_window(
    config: GateConfig, canary_percent: float, entered_at: datetime | None, now: datetime
) -> timedelta:
    """The window the canary measurements cover: the whole step so far, or the soak time when its start is
    unknown (the soak gate then has no data and blocks anyway)."""
    return (now - entered_at) if entered_at is not None else config.soak_for(canary_percent)


def traffic_gates(config: GateConfig, validations: Mapping[str, Measurement]) -> list[GateResult]:
    """``off -> warn``: at least the configured number of validated requests on every endpoint."""
    window = format_duration(config.traffic_window)
    return [
        evaluate_gate(
            traffic_gate_name(endpoint),
            f"validated requests on {endpoint} in the last {window}",
            validations[endpoint],
            threshold=config.min_validations_per_endpoint,
            comparison=">=",
            unit="count",
        )
        for endpoint in config.endpoints
    ]


def warn_gates(config: GateConfig, evidence: WarnEvidence) -> list[GateResult]:
    """``warn -> enforce 10 %``: warn watched long enough, little it would reject, clean stored data."""
    window = format_duration(config.warn_window)
    facts = evidence.facts
    since = evidence.observed_since or evidence.warn_since
    what = "observed" if evidence.observation_reset else "warn"
    observed = (
        Measurement((evidence.now - since).total_seconds(), f"{what} since {since:%Y-%m-%d %H:%M} UTC")
        if since is not None
        else Measurement.missing("the audit log does not say when warn began (mode never set)")
    )
    if evidence.observation_reset and observed.usable:
        observed = replace(observed, detail=f"{observed.detail}; {evidence.observation_reset}")
    return [
        evaluate_gate(
            "warn_observed",
            f"warn has lasted the whole {window} window the ratios cover",
            observed,
            threshold=config.warn_window.total_seconds(),
            comparison=">=",
            unit="duration",
        ),
        evaluate_gate(
            "would_reject_ratio",
            f"share of warn-mode validations enforce would reject, last {window}",
            evidence.would_reject_ratio,
            threshold=config.max_would_reject_ratio,
            comparison="<",
            unit="ratio",
        ),
        evaluate_gate(
            "would_reject_worst_hour",
            f"worst hour of that share in the last {window}",
            evidence.worst_hour_would_reject_ratio,
            threshold=config.max_hourly_would_reject_ratio,
            comparison="<=",
            unit="ratio",
        ),
        evaluate_gate(
            "stored_stages_canonical",
            "stored stages and allocations are canonical (db verify's canonical checks failing)",
            facts.non_canonical_checks,
            threshold=0,
            comparison="<=",
            unit="count",
        ),
        evaluate_gate(
            "db_verify",
            "`fundmodel db verify` checks failing",
            facts.failed_verify_checks,
            threshold=0,
            comparison="<=",
            unit="count",
        ),
        evaluate_gate(
            "backup_fresh",
            "age of the newest verified backup of the stage tables",
            facts.backup_age_seconds,
            threshold=config.max_backup_age.total_seconds(),
            comparison="<=",
            unit="duration",
        ),
    ]


def canary_gates(config: GateConfig, canary_percent: float, evidence: CanaryEvidence) -> list[GateResult]:
    """``enforce N %`` -> the next percentage: soaked, enough evidence, few rejections, fast, no downgrade."""
    unknown_start = Measurement.missing("the audit log does not say when this step began")
    in_step = f"since the step began ({format_duration(evidence.window)})"
    minimum = config.min_canary_validations
    # The ratios count only over enough validations of each cohort compared (no_data until then).
    canary_sample = sample_gate(
        "canary_sample",
        f"enforced canary validations {in_step}",
        evidence.canary_validations,
        minimum=minimum,
    )
    if evidence.canary_clients_active == 0 and not canary_sample.passed:
        # Waiting cannot help: no active client is enforced, so the sample stays where it is.
        canary_sample = replace(
            canary_sample,
            status=GateStatus.FAIL,
            detail="the canary cohort holds no active client, so no enforced sample can come: name "
            "clients with `fundmodel rollout advance --canary-client NAME` or `fundmodel mode set "
            f"enforce --canary {canary_percent:g} --canary-client NAME`",
        )
    baseline_sample = sample_gate(
        "baseline_sample",
        f"baseline-cohort validations {in_step}",
        evidence.baseline_validations,
        minimum=minimum,
    )
    began, step = evidence.entered_at, evidence.step_began
    downgrades = (
        Measurement(float(evidence.auto_downgrades), f"since {step:%Y-%m-%d %H:%M} UTC")
        if step is not None and evidence.auto_downgrades is not None
        else unknown_start
    )
    canary_vs_baseline = relative_gate(
        "canary_vs_baseline",
        f"canary reject ratio vs max({config.max_canary_vs_baseline:g} x baseline "
        f"would-reject ratio, {config.canary_vs_baseline_floor:.2%})",
        evidence.canary_reject_ratio,
        evidence.baseline_would_reject_ratio,
        max_factor=config.max_canary_vs_baseline,
        floor=config.canary_vs_baseline_floor,
    )
    return [
        evaluate_gate(
            "soak_time",
            f"time at {evidence.step_label} (minimum soak)",
            Measurement((evidence.now - began).total_seconds()) if began is not None else unknown_start,
            threshold=config.soak_for(canary_percent).total_seconds(),
            comparison=">=",
            unit="duration",
        ),
        canary_sample,
        judged_on(
            evaluate_gate(
                "canary_reject_ratio",
                f"share of enforced canary validations rejected {in_step}",
                evidence.canary_reject_ratio,
                threshold=config.max_canary_reject_ratio,
                comparison="<",
                unit="ratio",
            ),
            canary_sample,
            "canary",
        ),
        judged_on(judged_on(canary_vs_baseline, baseline_sample, "baseline"), canary_sample, "canary"),
        evaluate_gate(
            "validation_p99",
            f"validator p99 {in_step}",
            evidence.validation_p99_seconds,
            threshold=config.max_validation_p99_seconds,
            comparison="<",
            unit="seconds",
        ),
        evaluate_gate(
            "no_auto_downgrade",
            "automatic downgrades (Alertmanager webhook) since the step began",
            downgrades,
            threshold=0,
            comparison="<=",
            unit="count",
        ),
    ]


def sunset_gates(config: GateConfig, evidence: SunsetEvidence) -> list[GateResult]:
    """``enforce 100 % -> sunset``: no client still sends a deprecated alias (each would become a 400)."""
    window = format_duration(evidence.window)
    traffic = sample_gate(
        "sunset_traffic",
        f"validations in the last {window} (the alias count means something only on traffic)",
        evidence.all_validations,
        minimum=config.min_canary_validations,
    )
    aliases = evidence.alias_validations
    if aliases.usable and aliases.value and aliases.value > config.max_alias_validations:
        aliases = replace(
            aliases,
            detail="clients still send deprecated aliases: see the stage_validation_offender events "
            "(outcome normalized_alias) and chase them before the Sunset step",
        )
    return [
        traffic,
        judged_on(
            evaluate_gate(
                "alias_traffic",
                f"validations carrying a deprecated alias in the last {window}",
                aliases,
                threshold=config.max_alias_validations,
                comparison="<=",
                unit="count",
            ),
            traffic,
            "all",
        ),
    ]
