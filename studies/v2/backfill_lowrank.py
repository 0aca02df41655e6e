"""Fill `params_lowrank` / `bytes_lowrank` of study v2's rows stored before schema 5.

The calibration scan ran before the factorised parameters and bytes were stored, so its rows
have them as None, and `greenbench summary` would count those rows' nuclear bytes as the
structured bytes while the grid's rows count them factorised. For a network of Linear layers
only (LeNet-300-100) the factorised count follows exactly from columns every row has:
every kept weight is used once per inference, so the weights of the structured count equal
its MACCs and

    params_lowrank = params_structured - maccs_structured + maccs_lowrank
    bytes_lowrank  = params_lowrank * bytes per parameter (bytes_structured / params_structured)

This script checks that identity on every row that stored both (it refuses to write anything
if one row disagrees), then fills the rows of the given model that lack them. Run once:

    python studies/v2/backfill_lowrank.py studies/results/study_v2.db lenet300
"""

from __future__ import annotations

import sqlite3
import sys

FULLY_LINEAR = ("lenet300",)  # models whose weight layers are all nn.Linear


def _derived(row: sqlite3.Row) -> tuple[int, int]:
    params = row["params_structured"] - row["maccs_structured"] + row["maccs_lowrank"]
    element = row["bytes_structured"] // row["params_structured"]
    return params, params * element


def main(db: str, model: str) -> int:
    if model not in FULLY_LINEAR:
        print(f"{model}: not a network of Linear layers only; the identity does not hold")
        return 2
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    cols = ("point_id, params_structured, maccs_structured, maccs_lowrank, bytes_structured, "
            "params_lowrank, bytes_lowrank")
    stored = conn.execute(f"SELECT {cols} FROM points WHERE model = ? AND status = 'done' "
                          "AND bytes_lowrank IS NOT NULL", (model,)).fetchall()
    bad = [r["point_id"][:12] for r in stored
           if _derived(r) != (r["params_lowrank"], r["bytes_lowrank"])]
    if not stored or bad:
        print(f"identity checked on {len(stored)} rows, {len(bad)} disagree {bad[:5]}: "
              "nothing written")
        return 1
    missing = conn.execute(f"SELECT {cols} FROM points WHERE model = ? AND status = 'done' "
                           "AND bytes_lowrank IS NULL AND maccs_lowrank IS NOT NULL",
                           (model,)).fetchall()
    with conn:
        conn.executemany("UPDATE points SET params_lowrank = ?, bytes_lowrank = ? "
                         "WHERE point_id = ?", [(*_derived(r), r["point_id"]) for r in missing])
    conn.close()
    print(f"identity holds on all {len(stored)} rows that stored both; filled {len(missing)} "
          "rows")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
