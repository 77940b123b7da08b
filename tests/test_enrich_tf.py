"""Tissue-specific TF recovery ("whole blood 10/12") and cross-tissue contamination."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tbeqtl.enrich.tf import tf_recovery
from tbeqtl.errors import InputError
from tbeqtl.io.tf import read_tf_table

ANALYSIS = [f"ENSG{i:011d}.1" for i in range(1, 41)]


def _g(i):
    return f"ENSG{i:011d}.1"


def test_hand_counted_recovery_and_contamination():
    tfs = {
        "Whole Blood": [_g(1), _g(2), _g(3), _g(4), "ENSG00000009999"],  # the last is not in the analysis
        "Thyroid": [_g(5), _g(6), _g(4)],  # _g(4) is specific to both tissues
        "Lung": [_g(7)],
    }
    sets = {
        "Whole Blood": [_g(1), _g(2), _g(3), _g(6), _g(20)],  # 3/4 own TFs; one thyroid TF
        "Thyroid": [_g(5), _g(4), _g(21)],  # 2/3 own TFs; _g(4) is its own, not blood contamination
    }
    res = tf_recovery(sets, tfs, ANALYSIS)
    own = res[res["own_tissue"]].set_index("set_tissue")
    assert own.loc["Whole Blood", "label"] == "3/4"
    assert own.loc["Whole Blood", "genes"] == "ENSG00000000001,ENSG00000000002,ENSG00000000003"
    assert own.loc["Thyroid", "label"] == "2/3"
    assert own.loc["Thyroid", "fraction"] == pytest.approx(2 / 3)
    cross = res[~res["own_tissue"]].set_index(["set_tissue", "tf_tissue"])
    assert cross.loc[("Whole Blood", "Thyroid"), "label"] == "1/2"  # _g(4) is blood's own TF: excluded
    assert cross.loc[("Whole Blood", "Thyroid"), "genes"] == "ENSG00000000006"
    assert cross.loc[("Thyroid", "Whole Blood"), "label"] == "0/3"
    assert cross.loc[("Thyroid", "Lung"), "label"] == "0/1"
    assert res.groupby("set_tissue").head(1)["own_tissue"].all()  # own-tissue rows first


def test_symbol_tfs_mapped_through_gene_table_and_table_reader(tmp_path):
    table = pd.DataFrame({"gene_id": [_g(1), _g(2), _g(3)], "gene_name": ["GATA1", "TAL1", "NKX2-1"]})
    (tmp_path / "tfs.tsv").write_text(
        "tissue\tgene\nWhole Blood\tGATA1\nWhole Blood\tTAL1\nLung\tNKX2-1\nLung\tNOTAGENE\n"
    )
    tfs = read_tf_table(tmp_path / "tfs.tsv")
    res = tf_recovery({"Whole Blood": [_g(1), _g(9)], "Lung": [_g(3)]}, tfs, ANALYSIS, gene_table=table)
    own = res[res["own_tissue"]].set_index("set_tissue")
    assert own.loc["Whole Blood", "label"] == "1/2" and own.loc["Whole Blood", "genes"] == "GATA1"
    assert own.loc["Lung", "label"] == "1/1"
    assert res.attrs["ids"]["n_unknown"] == 1
    assert res.attrs["ids"]["unknown_examples"] == ["NOTAGENE"]


def test_no_tf_of_a_tissue_gives_nan_fraction():
    res = tf_recovery({"Nerve": [_g(1)]}, {"Blood": [_g(2)]}, ANALYSIS)
    own = res[res["own_tissue"]].iloc[0]
    assert own["label"] == "0/0" and np.isnan(own["fraction"])


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="not in the background"):
        tf_recovery({"Blood": [_g(1), "ENSG00000000999"]}, {"Blood": [_g(1)]}, ANALYSIS)
    with pytest.raises(InputError, match="is empty"):
        tf_recovery({"Blood": []}, {"Blood": [_g(1)]}, ANALYSIS)
    with pytest.raises(InputError, match="TF table is empty"):
        tf_recovery({"Blood": [_g(1)]}, {}, ANALYSIS)
    with pytest.raises(InputError, match="pass a gene table"):
        tf_recovery({"Blood": [_g(1)]}, {"Blood": ["GATA1"]}, ANALYSIS)
    (tmp_path / "bad.tsv").write_text("organ\tgene\nx\ty\n")
    with pytest.raises(InputError, match="columns 'tissue' and 'gene'"):
        read_tf_table(tmp_path / "bad.tsv")


def test_real_tf_list_as_universe(shared_data):
    """The shared general TF list (GO:0003700) used as one pseudo-tissue: counts match set arithmetic."""
    tf = pd.read_csv(shared_data / "go_human" / "tf_go0003700.tsv", sep="\t", dtype=str)
    rng = np.random.default_rng(0)
    ens = sorted({e for ids in tf["ensembl_ids"].dropna() for e in ids.split(",")})
    analysis = sorted(set(rng.choice(ens, size=600, replace=False)) | {f"ENSG9{i:010d}" for i in range(400)})
    gene_set = list(rng.choice(analysis, size=300, replace=False))
    res = tf_recovery({"all": gene_set}, {"all": tf["symbol"].tolist()}, analysis, gene_table=tf)
    row = res.iloc[0]
    symbol_to_ens = {
        s: set(e.split(",")) for s, e in zip(tf["symbol"], tf["ensembl_ids"].fillna(""), strict=True)
    }
    present = {s for s, e in symbol_to_ens.items() if e & set(analysis)}
    found = {s for s in present if symbol_to_ens[s] & set(gene_set)}
    assert (row["n_tfs"], row["n_found"]) == (len(present), len(found))
