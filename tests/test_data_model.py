"""The EQTLData model: alignment by ID, errors naming IDs, repr, subset, replace, equality."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest
from test_io_support import make_data

from tbeqtl.data import EQTLData, harmonize_chrom, validate_counts, validate_genotypes
from tbeqtl.errors import InputError


def frames():
    counts = pd.DataFrame(
        [[1, 2, 3, 4], [0, 5, 1, 2], [3, 3, 3, 3]], index=["G1", "G2", "G3"], columns=["s1", "s2", "s3", "s4"]
    )
    geno = pd.DataFrame(
        [[0, 1, 2], [2, np.nan, 0], [1, 1, 0]], index=["r1", "r2", "r3"], columns=["A", "B", "C"], dtype=float
    )
    smap = {"s1": "A", "s2": "A", "s3": "B", "s4": "C"}
    return counts, geno, smap


def test_alignment_orders_and_indexes():
    counts, geno, smap = frames()
    # the map lists extra samples and comes in another order: only the counted samples are kept
    shuffled = dict(reversed(list({**smap, "s9": "C"}.items())))
    data = EQTLData.from_frames(counts[["s3", "s1", "s4", "s2"]], geno[["C", "A", "B"]], shuffled)
    assert list(data.samples) == ["s3", "s1", "s4", "s2"]
    assert list(data.individuals) == ["C", "A", "B"]
    assert list(data.sample_map_s) == ["B", "A", "C", "A"]
    np.testing.assert_array_equal(data.sample_individual_index, [2, 1, 0, 1])
    assert data.samples_per_individual.to_dict() == {"C": 1, "A": 2, "B": 1}
    assert data.counts_df.dtypes.unique().tolist() == [np.dtype("int64")]
    assert data.genotype_df.dtypes.unique().tolist() == [np.dtype("float64")]
    assert (data.counts_df.index.name, data.counts_df.columns.name) == ("gene", "sample")
    assert (data.genotype_df.index.name, data.genotype_df.columns.name) == ("snp", "individual")


def test_one_sample_per_individual_without_map():
    counts, geno, _ = frames()
    counts = counts[["s1", "s2", "s3"]].set_axis(["A", "B", "C"], axis=1)
    data = EQTLData.from_frames(counts, geno)
    assert (data.sample_map_s.index == data.sample_map_s.to_numpy()).all()


def test_sample_not_in_map_and_drop_unmatched(caplog):
    counts, geno, smap = frames()
    del smap["s2"]
    with pytest.raises(InputError, match="not in the sample map: s2"):
        EQTLData.from_frames(counts, geno, smap)
    with caplog.at_level(logging.WARNING):
        data = EQTLData.from_frames(counts, geno, smap, drop_unmatched=True)
    assert "s2" not in data.samples
    assert "dropped 1 samples without a genotyped individual: s2" in caplog.text


def test_individual_without_genotypes():
    counts, geno, smap = frames()
    smap["s4"] = "Z"
    with pytest.raises(InputError, match="no genotypes: Z"):
        EQTLData.from_frames(counts, geno, smap)


def test_genotyped_individual_without_samples(caplog):
    counts, geno, smap = frames()
    geno["D"] = [0.0, 1.0, 2.0]
    with pytest.raises(InputError, match="no expression samples.*: D"):
        EQTLData.from_frames(counts, geno, smap)
    with caplog.at_level(logging.WARNING):
        data = EQTLData.from_frames(counts, geno, smap, drop_unmatched=True)
    assert list(data.individuals) == ["A", "B", "C"]
    assert "without samples: D" in caplog.text


def test_nothing_left_after_matching():
    counts, geno, _ = frames()
    with pytest.raises(InputError, match="no sample is left"):
        EQTLData.from_frames(counts, geno, {"x": "A"}, drop_unmatched=True)


def test_duplicate_ids_named():
    counts, geno, smap = frames()
    with pytest.raises(InputError, match="duplicate gene IDs: G1"):
        EQTLData.from_frames(counts.set_axis(["G1", "G1", "G3"], axis=0), geno, smap)
    with pytest.raises(InputError, match="duplicate SNP IDs: r2"):
        EQTLData.from_frames(counts, geno.set_axis(["r1", "r2", "r2"], axis=0), smap)
    with pytest.raises(InputError, match="duplicate sample.*s1"):
        EQTLData.from_frames(counts, geno, pd.Series(["A", "B"], index=["s1", "s1"]))


def test_counts_and_dosage_checks_name_ids(caplog):
    counts, geno, smap = frames()
    bad = counts.astype(float)
    bad.loc["G2", "s3"] = -1
    with pytest.raises(InputError, match="negative counts in genes: G2"):
        EQTLData.from_frames(bad, geno, smap)
    bad.loc["G2", "s3"] = 1.5
    with pytest.raises(InputError, match="non-integer counts .* G2"):
        EQTLData.from_frames(bad, geno, smap)
    with caplog.at_level(logging.WARNING):
        data = EQTLData.from_frames(bad, geno, smap, non_integer="round")
    assert data.counts_df.loc["G2", "s3"] == 2
    bad.loc["G2", "s3"] = np.nan
    with pytest.raises(InputError, match="missing values in genes: G2"):
        validate_counts(bad)
    with pytest.raises(InputError, match="non-numeric values in samples: s2"):
        validate_counts(counts.astype(object).assign(s2=["a", "b", "c"]))
    with pytest.raises(InputError, match="outside \\[0, 2\\] in SNPs: r3"):
        validate_genotypes(geno.assign(C=[0.0, 0.0, 2.5]))
    with pytest.raises(InputError, match="empty"):
        validate_genotypes(geno.iloc[:0])
    with pytest.raises(InputError, match="empty"):
        validate_counts(counts.iloc[:, :0], path="x.tsv")


def test_uninformative_features_dropped_with_count(caplog):
    counts, geno, smap = frames()
    counts.loc["G0"] = 0
    geno.loc["mono"] = [1.0, 1.0, np.nan]
    geno.loc["gone"] = np.nan
    with caplog.at_level(logging.INFO):
        data = EQTLData.from_frames(counts, geno, smap)
    assert "G0" not in data.genes
    assert {"mono", "gone"}.isdisjoint(data.snps)
    assert "dropped 1 genes with zero counts" in caplog.text
    assert "dropped 2 SNPs (1 all-missing, 1 monomorphic)" in caplog.text
    kept = EQTLData.from_frames(counts, geno, smap, drop_uninformative=False)
    assert "G0" in kept.genes and "mono" in kept.snps


def test_annotation_alignment_and_chrom_harmonising(caplog):
    counts, geno, smap = frames()
    genes = pd.DataFrame({"chrom": ["1", "chrX", "MT"], "start": [1, 2, 3]}, index=["G3", "G1", "G2"])
    snps = pd.DataFrame({"chrom": ["chr1"] * 2, "pos": [10, 20]}, index=["r1", "r2"])
    with caplog.at_level(logging.WARNING):
        data = EQTLData.from_frames(counts, geno, smap, gene_info_df=genes, snp_info_df=snps)
    assert data.gene_info_df["chrom"].tolist() == ["chrX", "chrM", "chr1"]  # reordered to the counts
    assert data.snp_info_df.loc["r3"].isna().all()
    assert "1 SNPs have no annotation (never cis): r3" in caplog.text
    with pytest.raises(InputError, match="annotation lacks columns: pos"):
        EQTLData.from_frames(counts, geno, smap, snp_info_df=snps.drop(columns="pos"))
    with pytest.raises(InputError, match="sample attribute table lacks samples: s4"):
        EQTLData.from_frames(
            counts, geno, smap, sample_info_df=pd.DataFrame({"t": [1, 2, 3]}, index=["s1", "s2", "s3"])
        )


def test_harmonize_chrom_styles():
    assert list(harmonize_chrom(["1", "chr01", "CHRx", "MT", "chrM", "y", 7])) == [
        "chr1",
        "chr1",
        "chrX",
        "chrM",
        "chrM",
        "chrY",
        "chr7",
    ]
    assert list(harmonize_chrom(["chr1", "chrM", "X"], style="bare")) == ["1", "MT", "X"]
    assert harmonize_chrom([np.nan, None, "2"]).isna().tolist() == [True, True, False]  # unknown: missing


def test_repr_summarises():
    data = make_data()
    text = repr(data)
    assert text.startswith(f"EQTLData: 20 genes x {data.counts_df.shape[1]} samples; 15 SNPs x 6 individuals")
    assert "samples per individual: min 1" in text
    assert "missing genotypes: 2.22%" in text  # 2 of 90 calls
    assert "tissues: " in text and "gene_info_df: chrom, start, end" in text


def test_subset_keeps_alignment():
    data = make_data()
    samples = [s for s in data.samples if data.sample_map_s[s] != "GTEX-IND1"][:5]
    sub = data.subset(genes=list(data.genes[:4]), samples=samples, snps=list(data.snps[::2]))
    assert list(sub.samples) == samples and list(sub.genes) == list(data.genes[:4])
    assert set(sub.individuals) == set(data.sample_map_s[samples])
    assert list(sub.individual_info_df.index) == list(sub.individuals)
    assert list(sub.sample_info_df.index) == samples
    assert list(sub.gene_info_df.index) == list(sub.genes)
    assert list(sub.snp_info_df.index) == list(sub.snps)
    np.testing.assert_array_equal(sub.individuals[sub.sample_individual_index], sub.sample_map_s.to_numpy())
    with pytest.raises(InputError, match="unknown gene IDs: nope"):
        data.subset(genes=["nope"])


def test_replace_revalidates_and_equals():
    data = make_data()
    assert data.equals(make_data())
    other = data.replace(counts_df=data.counts_df + 1)
    assert not data.equals(other)
    bad = data.genotype_df.copy()
    bad.iloc[0, 0] = 3
    with pytest.raises(InputError, match="outside"):
        data.replace(genotype_df=bad)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.counts_df = data.counts_df  # type: ignore[misc]


def test_sample_map_with_missing_individual():
    counts, geno, smap = frames()
    smap["s3"] = None
    with pytest.raises(InputError, match="no individual for samples: s3"):
        EQTLData.from_frames(counts, geno, smap)
