"""GO over-representation: rules, ID mapping, bad input, gseapy agreement, planted truth, real GO sets."""

from __future__ import annotations

import gzip
import logging
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from tbeqtl.cli import main
from tbeqtl.enrich import GeneIdTable, go_enrichment, read_gmt
from tbeqtl.enrich.gene_ids import normalize_gene_id
from tbeqtl.errors import InputError, MissingDependencyError


@pytest.fixture
def tbeqtl_log(caplog):
    """caplog that also sees records after the CLI made the ``tbeqtl`` logger non-propagating."""
    logger = logging.getLogger("tbeqtl")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


LIB = {
    "T1": ["g1", "g2", "g3", "g4"],
    "T2": ["g5", "g6", "g7"],
    "T3": ["g1", "g20"],  # only 2 genes in any background below: never tested (paper: >= 3)
    "T4": ["g2", "g8", "g9", "g10", "g11", "gX"],  # gX is outside the background
}
BG = [f"g{i}" for i in range(1, 21)]


def test_columns_rules_and_scipy_reference():
    genes = ["g1", "g2", "g3", "g8", "g12"]
    res = go_enrichment(genes, BG, LIB)
    assert list(res.columns[:6]) == ["term", "overlap", "set_size", "odds_ratio", "p_value", "fdr"]
    assert set(res["term"]) == {"T1", "T2", "T4"}  # T3 has < 3 background genes
    assert res["p_value"].is_monotonic_increasing
    row = res.set_index("term").loc["T4"]
    assert row["set_size"] == 5  # gX is not in the background
    assert row["overlap"] == 2
    ref = fisher_exact([[2, 3], [3, 12]], alternative="greater")
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert row["odds_ratio"] == pytest.approx(ref.statistic)
    assert res.set_index("term").loc["T1", "genes"] == "g1,g2,g3"
    assert res.attrs["n_set"] == {"set": 5}
    assert res.attrs["n_background"] == 20


def test_min_size_max_size_and_several_sets():
    res = go_enrichment({"b": ["g1", "g2"], "a": ["g5", "g6"]}, BG, LIB, min_size=4, max_size=4)
    assert list(res["set"].unique()) == ["a", "b"]
    assert set(res["term"]) == {"T1"}


def test_result_does_not_depend_on_input_order(rng):
    genes = ["g1", "g2", "g3", "g8", "g12"]
    a = go_enrichment(genes, BG, LIB)
    b = go_enrichment(list(rng.permutation(genes)), list(rng.permutation(BG)), dict(reversed(LIB.items())))
    pd.testing.assert_frame_equal(a, b)


def test_agrees_with_gseapy_offline(rng):
    import gseapy

    background = [f"G{i}" for i in range(400)]
    lib = {f"S{j}": list(rng.choice(background, size=rng.integers(3, 60), replace=False)) for j in range(40)}
    genes = list(rng.choice(background, size=50, replace=False)) + lib["S3"][:10]
    res = go_enrichment(genes, background, lib, check_gseapy=True).set_index("term")
    enr = gseapy.enrich(
        gene_list=sorted(set(genes)), gene_sets=lib, background=background, outdir=None, no_plot=True
    )
    theirs = enr.res2d.set_index("Term")["P-value"]
    np.testing.assert_allclose(res.loc[theirs.index, "p_value"], theirs, rtol=1e-9)
    # gseapy leaves zero-overlap terms out of its BH family; ours keeps every tested term
    assert len(res) >= len(theirs)


def test_gseapy_check_without_gseapy_is_a_clear_error(monkeypatch, tmp_path, capsys):
    """gseapy is optional (extra ``gsea``): asking for the cross-check without it names the fix."""
    monkeypatch.setitem(sys.modules, "gseapy", None)  # `import gseapy` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install \"tbeqtl\[gsea\]\""):
        go_enrichment(["g1", "g2", "g3"], BG, LIB, check_gseapy=True)
    # without the check, nothing needs gseapy
    pd.testing.assert_frame_equal(go_enrichment(["g1", "g2", "g3"], BG, LIB),
                                  go_enrichment(["g1", "g2", "g3"], BG, LIB, check_gseapy=False))
    (tmp_path / "genes.txt").write_text("g1\ng2\ng3\n")
    (tmp_path / "bg.txt").write_text("\n".join(BG) + "\n")
    with open(tmp_path / "lib.gmt", "w") as handle:
        for term, genes in LIB.items():
            handle.write("\t".join([term, term, *genes]) + "\n")
    rc = main(["enrich", "go", "--genes", str(tmp_path / "genes.txt"),
               "--background", str(tmp_path / "bg.txt"), "--gene-sets", str(tmp_path / "lib.gmt"),
               "--check-gseapy", "--out", str(tmp_path / "out"), "--log-level", "WARNING"])
    assert rc == 2
    assert "tbeqtl[gsea]" in capsys.readouterr().err
    assert not (tmp_path / "out" / "enrichment.tsv").exists()


def _planted(rng, *, n_bg=800, n_terms=100, planted=True):
    """Random library over a background; the query is 100 random genes, plus 20 of the 40 genes of
    GO:0000007 when ``planted``. The other terms avoid GO:0000007's genes, so they are true nulls."""
    genes = np.array([f"ENSG{i:011d}" for i in range(n_bg)])
    planted_term = rng.choice(genes, size=40, replace=False)
    others = np.setdiff1d(genes, planted_term)  # other terms are true nulls: disjoint from the planted one
    lib = {
        f"GO:{j:07d}": list(
            planted_term if j == 7 else rng.choice(others, size=int(rng.integers(3, 80)), replace=False)
        )
        for j in range(n_terms)
    }
    query = set(rng.choice(genes, size=100, replace=False))
    if planted:
        query |= set(rng.choice(lib["GO:0000007"], size=20, replace=False))
    return sorted(query), list(genes), lib


def _fdp_and_power(rng, n_rep):
    found, fdp, any_null = 0, [], 0
    for _ in range(n_rep):
        genes, background, lib = _planted(rng)
        sig = go_enrichment(genes, background, lib).query("fdr < 0.1")
        found += int("GO:0000007" in set(sig["term"]))
        fdp.append(float((sig["term"] != "GO:0000007").sum()) / max(len(sig), 1))
        null_genes, null_bg, null_lib = _planted(rng, planted=False)
        any_null += int((go_enrichment(null_genes, null_bg, null_lib)["fdr"] < 0.1).any())
    return found, float(np.mean(fdp)), any_null


def test_planted_term_is_found_and_fdr_is_held(rng):
    n_rep = 20
    found, fdr, any_null = _fdp_and_power(rng, n_rep)
    assert found >= 0.9 * n_rep
    # BH controls the FDR (expected false discovery proportion) at 0.1
    assert fdr <= 0.1
    # complete null: P(any discovery) = FDR <= 0.1 (binomial margin)
    assert any_null <= 0.1 * n_rep + 2 * np.sqrt(n_rep * 0.1 * 0.9)


@pytest.mark.slow
def test_planted_fdr_over_many_simulations():
    n_rep = 200
    found, fdr, any_null = _fdp_and_power(np.random.default_rng(99), n_rep)
    assert found >= 0.95 * n_rep
    assert fdr <= 0.1
    assert any_null <= 0.1 * n_rep + 2 * np.sqrt(n_rep * 0.1 * 0.9)


# --------------------------------------------------------------------------- identifiers
GENE_TABLE = pd.DataFrame(
    {
        "entrez_id": ["1", "2", "3", "4", "5"],
        "symbol": ["AAA", "BBB", "CCC", "DDD", "EEE"],
        "ensembl_ids": [
            "ENSG00000000001",
            "ENSG00000000002",
            "ENSG00000000003,ENSG00000000013",
            "ENSG00000000004",
            "",
        ],
    }
)
ENS_LIB = {
    "TA": ["ENSG00000000001", "ENSG00000000002", "ENSG00000000013"],
    "TB": ["ENSG00000000004", "ENSG00000000002", "ENSG00000000003"],
}


def test_versioned_ensembl_ids_are_matched_without_version():
    bg = [
        "ENSG00000000001.5",
        "ENSG00000000002.1",
        "ENSG00000000003.2",
        "ENSG00000000004.9_PAR_Y",
        "ENSG00000000099.1",
    ]
    res = go_enrichment(["ENSG00000000001.5", "ENSG00000000002.1"], bg, ENS_LIB, min_size=2).set_index("term")
    assert res.loc["TA", "overlap"] == 2
    assert res.loc["TB", "set_size"] == 3
    assert res.loc["TA", "genes"] == "ENSG00000000001,ENSG00000000002"


def test_symbols_are_mapped_through_the_gene_table_and_unknowns_reported(tbeqtl_log):
    bg = ["AAA", "BBB", "CCC", "DDD", "NOPE1", "NOPE2"]
    with tbeqtl_log.at_level("WARNING", logger="tbeqtl.enrich.go"):
        res = go_enrichment(["AAA", "BBB", "CCC"], bg, ENS_LIB, gene_table=GENE_TABLE)
    assert "2 of 6 background gene IDs are unknown" in tbeqtl_log.text
    assert res.attrs["ids"]["n_unknown"] == 2
    assert res.attrs["ids"]["unknown_examples"] == ["NOPE1", "NOPE2"]
    assert res.attrs["n_background"] == 6  # kept as genes without annotation (default policy)
    ta = res.set_index("term").loc["TA"]
    assert ta["overlap"] == 3 and ta["set_size"] == 3  # CCC counts once through either of its two ENSG IDs
    dropped = go_enrichment(["AAA", "BBB", "CCC"], bg, ENS_LIB, gene_table=GENE_TABLE, on_unknown="drop")
    assert dropped.attrs["n_background"] == 4
    with pytest.raises(InputError, match="unknown to the gene table.*NOPE1, NOPE2"):
        go_enrichment(["AAA"], bg, ENS_LIB, gene_table=GENE_TABLE, on_unknown="error")


def test_other_identifier_type_without_gene_table_is_an_error():
    with pytest.raises(InputError, match="pass a gene table.*AAA"):
        go_enrichment(["AAA"], ["AAA", "BBB", "CCC"], ENS_LIB)


def test_gene_table_layouts():
    gencode = pd.DataFrame(
        {"gene_id": ["ENSG00000000001.7"], "gene_name": ["AAA"], "gene_type": ["protein_coding"]}
    )
    assert GeneIdTable.from_frame(gencode).mapping("symbol", "ensembl") == {"AAA": {"ENSG00000000001"}}
    info = pd.DataFrame(
        {"gene_name": ["AAA"], "chrom": ["chr1"]}, index=pd.Index(["ENSG00000000001.2"], name="gene")
    )
    assert GeneIdTable.from_frame(info).mapping("ensembl", "symbol") == {"ENSG00000000001": {"AAA"}}
    with pytest.raises(InputError, match="two identifier columns"):
        GeneIdTable.from_frame(pd.DataFrame({"x": [1], "y": [2]}))


# --------------------------------------------------------------------------- bad input
def test_empty_sets_and_background():
    with pytest.raises(InputError, match="gene set 'set' is empty"):
        go_enrichment([], BG, LIB)
    with pytest.raises(InputError, match="background is empty"):
        go_enrichment(["g1"], [], LIB)
    with pytest.raises(InputError, match="not a single string"):
        go_enrichment("g1", BG, LIB)
    with pytest.raises(InputError, match="library is empty"):
        go_enrichment(["g1"], BG, {})


def test_set_not_contained_in_background():
    with pytest.raises(InputError, match=r"2 of 3 IDs are not in the background.*g98, g99"):
        go_enrichment(["g1", "g98", "g99"], BG, LIB)


def test_bad_gmt_lines(tmp_path):
    path = tmp_path / "bad.gmt"
    path.write_text("T1\tdesc\tA\tB\nT2\tonly-description\n")
    with pytest.raises(InputError, match="line 2"):
        read_gmt(path)
    with pytest.raises(InputError, match="not found"):
        read_gmt(tmp_path / "missing.gmt")


# --------------------------------------------------------------------------- CLI
def test_cli_go(tmp_path):
    (tmp_path / "genes.txt").write_text("g1\ng2\ng3\ng8\n")
    (tmp_path / "bg.txt").write_text("\n".join(BG) + "\n")
    with gzip.open(tmp_path / "lib.gmt.gz", "wt") as handle:
        for term, genes in LIB.items():
            handle.write("\t".join([term, f"{term} name", *genes]) + "\n")
    out = tmp_path / "out"
    rc = main(
        [
            "enrich",
            "go",
            "--genes",
            str(tmp_path / "genes.txt"),
            "--background",
            str(tmp_path / "bg.txt"),
            "--gene-sets",
            str(tmp_path / "lib.gmt.gz"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out / "enrichment.tsv", sep="\t")
    assert list(df.columns) == ["term", "overlap", "set_size", "odds_ratio", "p_value", "fdr"]
    assert df["p_value"].is_monotonic_increasing
    expected = go_enrichment(["g1", "g2", "g3", "g8"], BG, read_gmt(tmp_path / "lib.gmt.gz"))
    np.testing.assert_allclose(df["p_value"], expected["p_value"])
    assert (out / "id_mapping.tsv").is_file() and (out / "run.json").is_file()
    # bad input: a one-line error and exit status 2, nothing written
    (tmp_path / "bad.txt").write_text("g1\nzzz\n")
    rc = main(
        [
            "enrich",
            "go",
            "--genes",
            str(tmp_path / "bad.txt"),
            "--background",
            str(tmp_path / "bg.txt"),
            "--gene-sets",
            str(tmp_path / "lib.gmt.gz"),
            "--out",
            str(tmp_path / "out2"),
        ]
    )
    assert rc == 2
    assert not (tmp_path / "out2" / "enrichment.tsv").exists()


# --------------------------------------------------------------------------- real GO BP sets
@pytest.fixture(scope="module")
def go_ensembl():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "go_human" / "go_bp_propagated.ensembl.gmt.gz"
    if not path.is_file():
        pytest.skip("shared GO gene sets are not present")
    return read_gmt(path)


@pytest.fixture(scope="module")
def gencode_background():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "gene_annotation" / "gencode_v36_genes_GRCh38.tsv.gz"
    if not path.is_file():
        pytest.skip("shared gene annotation is not present")
    df = pd.read_csv(path, sep="\t", usecols=["gene_id", "gene_type"])
    return df.loc[df["gene_type"] == "protein_coding", "gene_id"].tolist()


def test_real_go_known_term_is_top_and_random_set_is_null(go_ensembl, gencode_background):
    bg = gencode_background  # versioned GENCODE v36 IDs; the GMT has unversioned IDs
    term = "GO:0006096"  # glycolytic process
    assert go_ensembl.descriptions_s[term] == "glycolytic process"
    members = set(go_ensembl.members(term))
    genes = [g for g in bg if normalize_gene_id(g) in members]
    assert 20 <= len(genes) <= 200
    res = go_enrichment(genes, bg, go_ensembl)
    assert res.iloc[0]["term"] == term
    assert res.iloc[0]["overlap"] == res.iloc[0]["set_size"] == len(genes)
    assert (res["set_size"] >= 3).all()

    rng = np.random.default_rng(7)
    null = go_enrichment(list(rng.choice(bg, size=300, replace=False)), bg, go_ensembl)
    assert not (null["fdr"] < 0.1).any()


def test_real_go_symbols_mapped_through_gene_info(go_ensembl, shared_data):
    """A known term's genes given as symbols, the background as symbols, the GMT in Ensembl IDs."""
    table = GeneIdTable.read(shared_data / "go_human" / "gene_info.tsv.gz")
    info = table.table_df.dropna(subset=["ensembl", "symbol"])
    term = "GO:0006096"  # glycolytic process
    members = set(go_ensembl.members(term))
    rng = np.random.default_rng(11)
    coding = pd.read_csv(
        shared_data / "go_human" / "gene_info.tsv.gz", sep="\t", usecols=["symbol", "ncbi_gene_type"]
    )
    symbols = sorted(set(coding.loc[coding["ncbi_gene_type"] == "protein-coding", "symbol"]))
    term_symbols = sorted(set(info.loc[info["ensembl"].isin(members), "symbol"]) & set(symbols))
    background = sorted(
        set(rng.choice(symbols, size=6000, replace=False)) | set(term_symbols) | {"NOT_A_GENE"}
    )
    res = go_enrichment(term_symbols, background, go_ensembl, gene_table=table)
    assert res.iloc[0]["term"] == term
    assert res.attrs["ids"]["n_unknown"] == 1 and res.attrs["ids"]["unknown_examples"] == ["NOT_A_GENE"]


def test_restrict_to_biological_process_terms(tmp_path):
    (tmp_path / "terms.tsv").write_text("go_id\tontology\tterm\nT1\tBP\tone\nT2\tMF\ttwo\nT4\tBP\tfour\n")
    from tbeqtl.enrich.go import GeneSetLibrary, read_go_terms

    library = GeneSetLibrary.from_dict(LIB).restrict(read_go_terms(tmp_path / "terms.tsv"))
    assert list(library.terms) == ["T1", "T4"]
    res = go_enrichment(["g1", "g2"], BG, library)
    assert set(res["term"]) == {"T1", "T4"}
    full = go_enrichment(["g1", "g2"], BG, LIB).set_index("term")
    # p-values do not depend on the tested family; the BH family is the restricted one
    np.testing.assert_allclose(
        res.set_index("term").loc[["T1", "T4"], "p_value"], full.loc[["T1", "T4"], "p_value"]
    )
    assert len(full) == 3 and len(res) == 2
    with pytest.raises(InputError, match="none of the library's terms"):
        library.restrict(["T9"])
