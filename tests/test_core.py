"""Tests of the core helpers: errors, atomic writes, schema validation, seeded RNG, layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tbeqtl.atomic import atomic_write, write_json, write_table
from tbeqtl.errors import InputError, format_ids
from tbeqtl.layout import RunLayout
from tbeqtl.rng import as_generator, torch_generator
from tbeqtl.schema import TABLES, validate_table


def test_input_error_names_path_and_ids():
    err = InputError("bad rows", path="x.tsv", ids=[f"g{i}" for i in range(15)])
    text = str(err)
    assert text.startswith("x.tsv: bad rows: g0, g1")
    assert "and 5 more (15 in total)" in text
    assert err.ids[-1] == "g14"
    assert isinstance(err, ValueError)


def test_format_ids_short():
    assert format_ids(["a", "b"]) == "a, b"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_and_table_round_trip(tmp_path):
    write_json({"a": np.int64(3), "b": np.arange(2)}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 3, "b": [0, 1]}
    df = pd.DataFrame({"x": [1.5, np.nan], "y": ["u", "v"]})
    write_table(df, tmp_path / "t.tsv")
    back = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    pd.testing.assert_frame_equal(back, df)
    write_table(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), df)


def test_validate_table_orders_and_rejects():
    df = pd.DataFrame({"p_value": [0.1], "gene": ["g"], "snp": ["s"], "beta": [0.2], "fdr": [0.3]})
    out = validate_table(df, "eqtl_pairs")
    assert list(out.columns) == ["snp", "gene", "beta", "p_value", "fdr"]
    with pytest.raises(InputError, match="lacks required columns: fdr"):
        validate_table(df.drop(columns="fdr"), "eqtl_pairs")
    with pytest.raises(InputError, match="not in its schema: extra"):
        validate_table(df.assign(extra=1), "eqtl_pairs")
    with pytest.raises(InputError, match="wrong type"):
        validate_table(df.assign(p_value=["x"]), "eqtl_pairs")


def test_every_schema_documents_every_column():
    for schema in TABLES.values():
        assert schema.description
        names = schema.column_names
        assert len(names) == len(set(names)), schema.name
        for column in schema.columns:
            assert column.dtype in {"str", "int", "float", "bool"}
            assert column.description, (schema.name, column.name)


def test_rng_is_local_and_seeded():
    a = as_generator(5).normal(size=3)
    b = as_generator(5).normal(size=3)
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(1)
    assert as_generator(gen) is gen
    import torch

    x = torch.rand(3, generator=torch_generator(7))
    y = torch.rand(3, generator=torch_generator(7))
    assert torch.equal(x, y)


def test_layout_paths(tmp_path):
    layout = RunLayout(tmp_path)
    pair = layout.pair("chr1", "chr2")
    assert pair.name == "chr1__chr2"
    assert pair.eqtl("all", "Whole Blood").name == "Whole_Blood"
    assert layout.pairs() == []
    pair.fit.mkdir(parents=True)
    assert [p.name for p in layout.pairs()] == ["chr1__chr2"]
