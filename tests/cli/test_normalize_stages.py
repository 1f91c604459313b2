"""`fundmodel db normalize-stages --map`: unknown stored values fixed by the operator with an audit trail
(dry run, backup gate, apply, `db verify`, `constrain-stages`, rollback), on both databases."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from fundmodel.ops.planning import classify_stage_value
from tests.cli.test_db_ops import cli, one_line_error, verified_backup  # noqa: F401  (fixture)
from tests.ops.conftest import (  # noqa: F401  (fixtures)
    database_url,
    engine,
    postgres_template,
    postgres_up,
    sqlite_template,
)
from tests.ops.legacy_data import CANONICAL, audit_rows, current_values, seed_legacy

MAPS = ["--map", "mezzanine=series_b", "--map", "=seed"]


def test_map_fixes_unknown_values_with_an_audit_trail_and_rolls_back(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=40, deals=6, unknown=2)  # 'mezzanine' and ''
    unknown = {i: v for i, v in seeded.companies.items() if classify_stage_value(v)[0] == "unknown"}
    assert sorted(unknown.values()) == ["", "mezzanine"]

    refused = cli("constrain-stages", backup_dir=False)
    assert refused.exit_code == 1
    assert "--map 'mezzanine=STAGE'" in one_line_error(refused.output)

    dry = cli("normalize-stages", *MAPS, "--json", backup_dir=False)
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)["plan"]
    assert plan["operator_map"] == {"": "seed", "mezzanine": "series_b"}
    assert plan["unknown_rows"] == 0
    mapped = [c for t in plan["tables"] for c in t["changes"] if c["mapped"]]
    assert sorted((c["before"], c["after"]) for c in mapped) == [("", "seed"), ("mezzanine", "series_b")]
    assert current_values(engine, "portfolio_companies") == seeded.companies  # a dry run changes nothing
    text = cli("normalize-stages", *MAPS, backup_dir=False)
    assert "series_b (--map)" in text.stdout

    ungated = cli("normalize-stages", "--apply", *MAPS)
    assert ungated.exit_code == 1  # the same backup gate as every apply
    verified_backup(cli)
    applied = cli("normalize-stages", "--apply", *MAPS, "--json")
    assert applied.exit_code == 0, applied.output
    run = json.loads(applied.stdout)["result"]
    assert run["rows_unknown_seen"] == 0
    final = current_values(engine, "portfolio_companies")
    assert set(final.values()) <= set(CANONICAL)
    assert {final[i] for i in unknown} == {"series_b", "seed"}
    audited = {
        (int(row_id), before, after) for _r, _t, row_id, before, after in audit_rows(engine, run["run_id"])
    }
    assert {(i, v, {"mezzanine": "series_b", "": "seed"}[v]) for i, v in unknown.items()} <= audited

    verify = cli("verify", "--json", backup_dir=False)
    assert verify.exit_code == 0, verify.output
    assert json.loads(verify.stdout)["ok"] is True
    assert cli("constrain-stages", backup_dir=False).exit_code == 0
    assert cli("constrain-stages", "--drop", backup_dir=False).exit_code == 0

    rolled_back = cli("normalize-stages", "--rollback", run["run_id"], "--confirm", "CONFIRM", "--json")
    assert rolled_back.exit_code == 0, rolled_back.output
    assert current_values(engine, "portfolio_companies") == seeded.companies


def test_map_mistakes_are_usage_errors_that_change_nothing(cli, engine: Engine) -> None:  # noqa: F811
    seeded = seed_legacy(engine, companies=20, deals=2, unknown=1)
    cases = {
        ("--map", "mezzanine"): "is not SOURCE=STAGE",
        ("--map", "mezzanine=Series B"): "is not a canonical stage",
        ("--map", "Series A=series_b"): "known spelling of series_a",
        (
            "--map",
            "mezzanin=series_b",
        ): "no stage column holds: 'mezzanin'; the unknown values stored are: 'mezzanine'",
    }
    for args, message in cases.items():
        for mode in ((), ("--apply",)):
            result = cli("normalize-stages", *mode, *args)
            assert result.exit_code == 2, (args, result.output)
            assert message in one_line_error(result.output)
    for other in (("--resume",), ("--rollback", "abc")):
        result = cli("normalize-stages", *other, "--map", "mezzanine=series_b")
        assert result.exit_code == 2
        assert "--map plans a new run" in one_line_error(result.output)
    assert current_values(engine, "portfolio_companies") == seeded.companies


def test_a_map_that_leaves_unknown_values_still_needs_force_unknown(cli, engine: Engine) -> None:  # noqa: F811
    seed_legacy(engine, companies=40, deals=2, unknown=3)  # 'mezzanine', '', 'pre'
    verified_backup(cli)
    blocked = cli("normalize-stages", "--apply", "--map", "mezzanine=series_b")
    assert blocked.exit_code == 1
    assert "unknown stage values block the run" in one_line_error(blocked.output)
    forced = cli(
        "normalize-stages",
        *("--apply", "--map", "mezzanine=series_b", "--force-unknown", "--confirm", "CONFIRM", "--json"),
    )
    assert forced.exit_code == 0, forced.output
    left = {u["value"] for u in json.loads(forced.stdout)["result"]["unknown_left"]}
    assert left == {"", "pre"}
    assert "mezzanine" not in current_values(engine, "portfolio_companies").values()
