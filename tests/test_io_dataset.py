"""write_dataset / read_dataset round trips (the simulator's on-disk layout)."""

from __future__ import annotations

import numpy as np
import pytest
from test_io_support import assert_dataset_equal, make_data

from tbeqtl.data import EQTLData
from tbeqtl.errors import InputError
from tbeqtl.io import DATASET_FILES, read_dataset, read_plink, write_dataset
from tbeqtl.simulate import simulate


def test_dataset_layout_has_every_file(tmp_path):
    write_dataset(make_data(), tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    expected = {
        "counts.gct.gz",
        "counts.tsv.gz",
        "sample_attributes.tsv",
        "subject_attributes.tsv",
        "sample_map.tsv",
        "genotypes.bed",
        "genotypes.bim",
        "genotypes.fam",
        "genotypes.dosage.tsv.gz",
        "genes.bed",
    }
    assert expected <= names
    assert set(DATASET_FILES.values()) - {"genotypes"} <= names


@pytest.mark.parametrize(("genotypes", "counts"), [("auto", "auto"), ("plink", "gct"), ("dosage", "tsv")])
def test_dataset_round_trip(tmp_path, genotypes, counts):
    data = make_data()
    write_dataset(data, tmp_path)
    back = read_dataset(tmp_path, genotypes=genotypes, counts=counts)
    assert_dataset_equal(data, back)


def test_missing_genotypes_survive_plink(tmp_path):
    data = make_data()
    assert np.isnan(data.genotype_df.to_numpy()).sum() == 2
    write_dataset(data, tmp_path)
    plink = read_plink(tmp_path / "genotypes")
    assert np.isnan(plink.genotype_df.to_numpy()).sum() == 2
    assert np.isnan(plink.genotype_df.loc["rs1000", "GTEX-IND4"])


def test_fractional_dosages_skip_plink_but_round_trip(tmp_path):
    data = make_data()
    geno = data.genotype_df.copy()
    geno.iloc[2, 3] = 0.37
    data = data.replace(genotype_df=geno)
    write_dataset(data, tmp_path)
    assert not (tmp_path / "genotypes.bed").exists()
    back = read_dataset(tmp_path)
    assert back.genotype_df.iloc[2, 3] == 0.37
    assert data.equals(back)


def test_read_dataset_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nope")


@pytest.mark.parametrize("genotypes", ["auto", "plink"])
def test_simulated_dataset_round_trip(tmp_path, genotypes):
    data = simulate(preset="tiny", seed=5, missing_rate=0.05).data
    assert np.isnan(data.genotype_df.to_numpy()).any()
    write_dataset(data, tmp_path)
    assert_dataset_equal(data, read_dataset(tmp_path, genotypes=genotypes))


def test_partially_annotated_round_trip(tmp_path):
    data = make_data()
    genes = data.gene_info_df.copy()
    genes.iloc[3] = np.nan  # a gene without annotation
    snps = data.snp_info_df.copy()
    snps.iloc[4] = np.nan  # a SNP without position or alleles
    data = data.replace(gene_info_df=genes, snp_info_df=snps)
    write_dataset(data, tmp_path)
    for genotypes in ("auto", "plink"):
        assert_dataset_equal(data, read_dataset(tmp_path, genotypes=genotypes))


def test_dataset_without_annotation_or_attributes(tmp_path):
    data = make_data()
    bare = EQTLData.from_frames(data.counts_df, data.genotype_df, data.sample_map_s)
    write_dataset(bare, tmp_path)
    assert not (tmp_path / "genes.bed").exists()
    back = read_dataset(tmp_path, genotypes="plink")
    assert_dataset_equal(bare, back)
    (tmp_path / "sample_map.tsv").unlink()  # GTEx-style IDs: the donor rule rebuilds the map
    assert read_dataset(tmp_path).equals(bare)
