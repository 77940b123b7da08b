"""Genomic-bin localisation: windows, counts and Fisher/BH against direct computation, builds, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests

from tbeqtl.cli import main
from tbeqtl.enrich import CHROM_SIZES, genomic_bin_enrichment, make_bins, read_genome_file
from tbeqtl.errors import InputError, MissingDependencyError

GENOME = {"chr1": 2_000_000, "chr2": 1_050_000, "chr3": 600_000}


def test_builtin_chromosome_sizes_match_pybedtools_registry():
    import pybedtools.genome_registry as registry

    for build in ("hg19", "hg38"):
        reference = getattr(registry, build)
        for chrom, length in CHROM_SIZES[build].items():
            assert reference[chrom] == (0, length), (build, chrom)


def test_make_bins_matches_sliding_window_arithmetic():
    bins = make_bins(GENOME, size=250_000, step=100_000)
    expected = [(c, s, min(s + 250_000, n)) for c, n in GENOME.items() for s in range(0, n, 100_000)]
    assert list(zip(bins["chrom"], bins["start"], bins["end"], strict=True)) == expected
    assert bins["bin"].iloc[0] == "chr1:0-250000"
    assert bins["cumulative_start"].is_monotonic_increasing
    chr2 = bins[bins["chrom"] == "chr2"]
    assert chr2["cumulative_start"].iloc[0] == GENOME["chr1"]
    assert bins["chrom_order"].tolist() == sorted(bins["chrom_order"])


def test_genome_file_and_hg38_default(tmp_path):
    (tmp_path / "g.genome").write_text("1\t1000\nchr2\t500\n")
    assert read_genome_file(tmp_path / "g.genome") == {"chr1": 1000, "chr2": 500}
    bins = make_bins(tmp_path / "g.genome", size=250, step=100)
    assert len(bins) == 10 + 5
    hg38 = make_bins(size=250_000, step=100_000, chroms=["chr21"])
    assert len(hg38) == -(-CHROM_SIZES["hg38"]["chr21"] // 100_000)
    (tmp_path / "bad.genome").write_text("chr1\tlong\n")
    with pytest.raises(InputError, match="line 1"):
        read_genome_file(tmp_path / "bad.genome")
    with pytest.raises(InputError, match="unknown genome"):
        make_bins("hg17")


def _positions(rng, n=3000):
    chroms = rng.choice(list(GENOME), size=n, p=np.array(list(GENOME.values())) / sum(GENOME.values()))
    pos = np.array([rng.integers(1, GENOME[c] + 1) for c in chroms])
    return pd.DataFrame({"chrom": chroms, "pos": pos}, index=[f"rs{i}" for i in range(n)])


def test_counts_fisher_and_bh_match_direct_computation(rng):
    positions = _positions(rng)
    snps = list(rng.choice(positions.index, size=150, replace=False))
    res = genomic_bin_enrichment({"lung": snps}, positions, genome=GENOME)
    bins = make_bins(GENOME)
    zero_based = positions["pos"].to_numpy() - 1
    in_set = positions.index.isin(snps)
    n_tested = 0
    for b in bins.itertuples():
        inside = (positions["chrom"].to_numpy() == b.chrom) & (zero_based >= b.start) & (zero_based < b.end)
        k, a = int(inside.sum()), int((inside & in_set).sum())
        if k == 0:
            assert b.bin not in set(res["bin"])
            continue
        n_tested += 1
        row = res.set_index("bin").loc[b.bin]
        assert (row["bin_size"], row["overlap"]) == (k, a)
        if n_tested % 7 == 0:
            ref = fisher_exact([[a, 150 - a], [k - a, 3000 - 150 - k + a]], alternative="greater")
            assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert len(res) == n_tested
    np.testing.assert_allclose(res["fdr"], multipletests(res["p_value"], method="fdr_bh")[1], rtol=1e-12)
    np.testing.assert_allclose(res["neg_log10_p"], -np.log10(res["p_value"]))
    # Manhattan product: genome order, cumulative position at the bin centre
    assert res["cumulative_position"].is_monotonic_increasing
    first_chr2 = res[res["chrom"] == "chr2"].iloc[0]
    assert first_chr2["cumulative_position"] == GENOME["chr1"] + (first_chr2["start"] + first_chr2["end"]) / 2


def test_planted_cluster_found_and_null_sets_clean(rng):
    n_rep, found, false_bins, any_null = 8, 0, [], 0
    for _ in range(n_rep):
        positions = _positions(rng)
        in_region = positions.index[
            (positions["chrom"] == "chr2") & positions["pos"].between(400_001, 600_000)
        ]
        planted = list(rng.choice(in_region, size=min(30, len(in_region)), replace=False))
        snps = sorted(set(planted) | set(rng.choice(positions.index, size=70, replace=False)))
        null = list(rng.choice(positions.index, size=100, replace=False))
        res = genomic_bin_enrichment({"planted": snps, "null": null}, positions, genome=GENOME)
        sig = res[(res["fdr"] < 0.1) & (res["set"] == "planted")]
        # bins overlapping the planted region [400000, 600000) hold planted SNPs
        true_bin = (sig["chrom"] == "chr2") & (sig["end"] > 400_000) & (sig["start"] < 600_000)
        found += int(true_bin.any())
        false_bins.append(float((~true_bin).sum()) / max(len(sig), 1))
        any_null += int((res.loc[res["set"] == "null", "fdr"] < 0.1).any())
    assert found == n_rep
    assert np.mean(false_bins) <= 0.1
    assert any_null <= 2


def test_mismatched_build_is_named(rng):
    # hg38 positions on chr17 beyond the hg19 chromosome end
    positions = pd.DataFrame(
        {"chrom": ["17", "17", "1"], "pos": [82_000_000, 1_000, 5_000]}, index=["rsA", "rsB", "rsC"]
    )
    with pytest.raises(
        InputError, match=r"build hg19 \(mismatched genome build\?; all positions fit hg38.*rsA"
    ):
        genomic_bin_enrichment(["rsB"], positions, genome="hg19")
    off = pd.DataFrame({"chrom": ["chrUn_gl000220"], "pos": [10]}, index=["rsU"])
    with pytest.raises(InputError, match="absent from genome hg38.*rsU"):
        genomic_bin_enrichment(["rsU"], off)


def test_bad_sets(rng):
    positions = _positions(rng, n=100)
    with pytest.raises(InputError, match="is empty"):
        genomic_bin_enrichment([], positions, genome=GENOME)
    with pytest.raises(InputError, match="not in the background.*rs_missing"):
        genomic_bin_enrichment(["rs1", "rs_missing"], positions, genome=GENOME)
    with pytest.raises(InputError, match="positive"):
        make_bins(GENOME, size=0)


def test_missing_bedtools_binary(monkeypatch, tmp_path, rng):
    positions = _positions(rng, n=50)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="apt-get install bedtools"):
        genomic_bin_enrichment(["rs1"], positions, genome=GENOME)


def test_cli_bins(tmp_path, rng):
    positions = _positions(rng, n=400)
    positions.rename_axis("SNP").reset_index().rename(columns={"chrom": "CHR", "pos": "BP"}).to_csv(
        tmp_path / "pos.tsv", sep="\t", index=False
    )
    (tmp_path / "g.genome").write_text("".join(f"{c}\t{n}\n" for c, n in GENOME.items()))
    (tmp_path / "skin.txt").write_text("\n".join(positions.index[:40]) + "\n")
    out = tmp_path / "out"
    rc = main(
        [
            "enrich",
            "bins",
            "--snps",
            str(tmp_path / "skin.txt"),
            "--positions",
            str(tmp_path / "pos.tsv"),
            "--genome",
            str(tmp_path / "g.genome"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out / "enrichment.tsv", sep="\t")
    expected = genomic_bin_enrichment({"skin": list(positions.index[:40])}, positions, genome=GENOME)
    np.testing.assert_allclose(df["p_value"], expected["p_value"])
    assert list(df["bin"]) == list(expected["bin"])
