"""The laws and data packages after their split: old import paths still work, the new shared helpers behave."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from bayes_dcpt import laws


def test_registry_still_exports_the_law_abstraction():
    from bayes_dcpt.laws import base
    from bayes_dcpt.laws.registry import BILLION, Law, Param, Prior, inputs_from_frame, prepare_inputs

    assert (Law, Param, Prior, BILLION) == (base.Law, base.Param, base.Prior, base.BILLION)
    assert (inputs_from_frame, prepare_inputs) == (base.inputs_from_frame, base.prepare_inputs)
    for name in laws.__all__:
        assert getattr(laws, name) is not None


def test_registry_order_and_families():
    names = laws.list_laws()
    assert names[:11] == ["L1", "L2", "L3", "L4", "L5", "L6", "L7", "cross-domain-K1", "cross-domain-K2",
                          "cross-domain-K3", "cross-domain-K4"]
    assert names[11] == "cpt"  # the base-anchored CPT law (fitted by `fit`)
    assert names[12:21] == ["chinchilla", "kaplan", "cross-lingual", "mixing", "bimix", "cmr-ratio", "cmr-critical",
                            "cmr-domain-delta", "cmr-general-delta"]
    assert set(laws.list_laws("cpt-dynamics")) <= set(names[21:])
    # the Cross-Domain laws share L3's parameters (one prior per idea)
    l3 = laws.get_law("L3")
    assert laws.get_law("cross-domain").params[: len(l3.params)] == l3.params


def test_power_helpers():
    x = np.array([0.5, 1.0, 4.0])
    assert np.allclose(laws.power(np, x, 0.5), np.sqrt(x))
    r = np.array([0.0, 0.25, 1.0])
    out = laws.ratio_power(np, r, 2.0)
    assert 0.0 <= out[0] < 1e-50 and np.allclose(out[1:], r[1:] ** 2)


def test_store_values_and_transactions(tmp_path):
    from bayes_dcpt.data.store_sql import StoreError, write_transaction
    from bayes_dcpt.data.store_values import int_or_none, parse_base_id, seed_value, sql_value

    assert sql_value(np.float64("nan")) is None and sql_value({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    assert seed_value("7") == 7 and seed_value(3.0) == 3 and seed_value("x") == "x"
    assert int_or_none("12.0") == 12 and int_or_none("nope") is None
    assert parse_base_id("base|code|N=1e+08") == ("code", 1e8)
    with pytest.raises(StoreError, match="not a base-model run id"):
        parse_base_id("base|code")
    con = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
    con.execute("CREATE TABLE t (x)")
    with pytest.raises(RuntimeError), write_transaction(con, tmp_path / "t.sqlite", 1.0):
        con.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    with write_transaction(con, tmp_path / "t.sqlite", 1.0):
        con.execute("INSERT INTO t VALUES (2)")
    assert [r[0] for r in con.execute("SELECT x FROM t")] == [2]
    con.close()
