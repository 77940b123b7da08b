"""Every reader on the real files in ../shared/data (skipped when that folder is absent)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pysam
import pytest

from tbeqtl.errors import InputError
from tbeqtl.io import (
    gtex_donor_ids,
    iter_plink_blocks,
    read_counts,
    read_covariates,
    read_dosage_tsv,
    read_expression_bed,
    read_gct,
    read_gene_annotation,
    read_gtex_sample_attributes,
    read_h5ad,
    read_matrixeqtl_geneloc,
    read_matrixeqtl_matrix,
    read_matrixeqtl_snpsloc,
    read_plink,
    read_snp_positions,
    read_vcf,
    write_gct,
    write_vcf,
)

N_SUBSET = 400
GEUV18 = "geuvadis_chr18/synthetic/SYNTH_GEUV.445_samples.chr18"


@pytest.fixture
def plink_subset(shared_data, tmp_path):
    """The first N_SUBSET SNPs of the real (gzipped) PLINK set, cut byte-exactly into plain files."""
    src = shared_data / GEUV18
    with gzip.open(f"{src}.bim.gz", "rt") as handle:
        lines = [next(handle) for _ in range(N_SUBSET)]
    n_ind = len(Path(f"{src}.fam").read_text().splitlines())
    with gzip.open(f"{src}.bed.gz", "rb") as handle:
        data = handle.read(3 + N_SUBSET * ((n_ind + 3) // 4))
    prefix = tmp_path / "sub"
    (tmp_path / "sub.bim").write_text("".join(lines))
    (tmp_path / "sub.bed").write_bytes(data)
    shutil.copy(f"{src}.fam", tmp_path / "sub.fam")
    return prefix


def test_gtex_lung_csv_and_gct_round_trip(shared_data, tmp_path):
    path = shared_data / "bulk_counts/gtex_lung_chr21/gtex_lung.first30.chr21.csv.gz"
    counts = read_counts(path, transpose=True)
    assert counts.shape == (818, 30)
    assert counts.index[0] == "ENSG00000141956.13"
    raw = pd.read_csv(path, index_col=0)
    assert (
        counts.loc["ENSG00000141959.16", "GTEX-111FC-1126-SM-5GZWU"]
        == raw.loc["GTEX-111FC-1126-SM-5GZWU", "ENSG00000141959.16"]
    )
    write_gct(counts, tmp_path / "lung.gct.gz")
    back = read_gct(tmp_path / "lung.gct.gz")
    pd.testing.assert_frame_equal(counts, back)
    donors = gtex_donor_ids(counts.columns)
    assert donors["GTEX-111CU-0326-SM-5GZXO"] == "GTEX-111CU"
    attrs = pd.DataFrame({"SAMPID": counts.columns, "SMTSD": "Lung", "SMRIN": 7.0})
    attrs.to_csv(tmp_path / "attrs.txt", sep="\t", index=False)
    table = read_gtex_sample_attributes(tmp_path / "attrs.txt", tissues=["Lung"])
    assert (table["individual"] == donors.reindex(table.index)).all()
    assert set(table["tissue"]) == {"Lung"}


def test_gencode_v26_gtf_chr21(shared_data):
    genes = read_gene_annotation(
        shared_data / "bulk_counts/gtex_lung_chr21/gencode.v26.annotation.chr21.gtf.gz"
    )
    assert genes.loc["ENSG00000279493.1", ["chrom", "start", "end", "strand"]].tolist() == [
        "chr21",
        5011799,
        5017145,
        "+",
    ]
    assert genes.loc["ENSG00000279493.1", "gene_name"] == "CH507-9B2.2"
    assert genes["gene_type"].isna().all()  # this GTF has no gene_type attribute
    counts = read_counts(
        shared_data / "bulk_counts/gtex_lung_chr21/gtex_lung.first30.chr21.csv.gz", transpose=True
    )
    assert counts.index.isin(genes.index).all()


def test_gencode_v36_table_and_lncrna_harmonising(shared_data):
    path = shared_data / "gene_annotation/gencode_v36_genes_GRCh38.tsv.gz"
    genes = read_gene_annotation(path)
    assert len(genes) == 60660
    assert genes.loc["ENSG00000223972.5", "gene_type"] == "transcribed_unprocessed_pseudogene"
    assert (genes["gene_type"] == "protein_coding").sum() == 19962
    assert (genes["gene_type"] == "lncRNA").sum() == 16901
    assert not (genes["gene_type"] == "lincRNA").any()
    assert genes.loc["ENSG00000227232.5", "strand"] == "-"
    stripped = read_gene_annotation(path, strip_versions=True, genes=["ENSG00000223972"])
    assert stripped.index.tolist() == ["ENSG00000223972"]


def test_ensembl_grch37_table(shared_data):
    genes = read_gene_annotation(
        shared_data / "gene_annotation/ensembl_gene_locations_GRCh37.tsv.gz", duplicates="first"
    )
    row = genes.loc["ENSG00000271782"]
    assert (row["chrom"], row["start"], row["end"], row["strand"]) == ("chr1", 50902700, 50902978, "-")
    assert row["gene_name"] == "RP5-850O15.4"
    assert set(genes["strand"]) <= {"+", "-"}


def test_airway_counts_and_h5ad(shared_data, tmp_path):
    from scipy import sparse

    counts = read_counts(shared_data / "bulk_counts/airway/counts.tsv.gz")
    assert counts.shape == (64102, 8)
    assert counts.loc["ENSG00000000003", "SRR1039508"] == 679
    two = read_counts(shared_data / "bulk_counts/airway/counts.tsv.gz", samples=["SRR1039512", "SRR1039508"])
    pd.testing.assert_frame_equal(two, counts[["SRR1039512", "SRR1039508"]])
    samples = pd.read_csv(shared_data / "bulk_counts/airway/samples.tsv", sep="\t", index_col=0)
    sub = counts.iloc[:500]
    obs = samples.loc[sub.columns, ["cell", "dex"]].astype(str)
    adata = anndata.AnnData(
        X=sparse.csr_matrix(sub.T.to_numpy().astype(np.float32)), obs=obs, var=pd.DataFrame(index=sub.index)
    )
    adata.write_h5ad(tmp_path / "airway.h5ad")
    sc = read_h5ad(tmp_path / "airway.h5ad", donor_column="cell")
    pd.testing.assert_frame_equal(sc.counts_df, sub, check_names=False)
    assert sc.sample_map_s["SRR1039508"] == "N61311"
    assert sc.sample_map_s.value_counts().tolist() == [2, 2, 2, 2]  # 4 donors x 2 conditions
    assert list(sc.cell_info_df.columns) == ["dex"]


def test_geuvadis_chr19_counts_genotypes_annotation(shared_data):
    folder = shared_data / "geuvadis_ceu_chr19"
    counts = read_counts(
        folder / "transcript_counts_CEU_chr19_subset.tsv.gz",
        id_column="TargetID",
        sum_by="Gene_Symbol",
        non_integer="round",
    )
    assert counts.shape == (50, 91)
    raw = pd.read_csv(folder / "transcript_counts_CEU_chr19_subset.tsv.gz", sep="\t")
    expected = raw[raw["Gene_Symbol"] == "ENSG00000221983.2"]["NA06984"].sum()
    assert counts.loc["ENSG00000221983.2", "NA06984"] == np.round(expected)
    geno = read_dosage_tsv(
        folder / "genotypes_CEU_chr19_subset.tsv.gz",
        id_column="snpId",
        info_columns=("chr", "start", "end"),
        na_values=("NA", "-1"),
    )
    assert geno.shape == (1330, 91)
    assert int(geno.isna().sum().sum()) == 1482
    assert list(geno.columns) == list(counts.columns)
    pos = read_snp_positions(
        folder / "genotypes_CEU_chr19_subset.tsv.gz", id_column="snpId", pos_column="start"
    )
    assert pos.loc["snp_19_1392636"].tolist() == ["chr19", 1392636]
    ranges = read_gene_annotation(folder / "gene_ranges_subset_hg19.tsv")
    assert set(counts.index) == set(ranges.index)
    bed = read_gene_annotation(folder / "genes_chr19_hg19.bed", zero_based=False)
    assert len(bed) == len(
        (folder / "genes_chr19_hg19.bed").read_text().splitlines()
    )  # 1,426 lines (README: 1,425)
    assert bed.loc["ENSG00000225373.1", ["chrom", "start", "end"]].tolist() == ["chr19", 65917, 70966]


def test_geuvadis_chr18_plink_subset(plink_subset):
    plink = read_plink(plink_subset)
    geno, info = plink.genotype_df, plink.snp_info_df
    assert geno.shape == (N_SUBSET, 445)
    assert set(np.unique(geno.to_numpy()[~np.isnan(geno.to_numpy())])) <= {0.0, 1.0, 2.0}
    # the README: bim column 5 (A1) is ALT, IDs are chr_pos_ref_alt_b38, so alt/ref agree with the ID
    parts = info.index.str.split("_")
    assert (info["alt"] == parts.str[3]).all() and (info["ref"] == parts.str[2]).all()
    assert (info["pos"].astype(str) == parts.str[1]).all()
    assert plink.fam_df.index[0] == "HG00096"
    blocks = list(iter_plink_blocks(plink_subset, block_size=150))
    assert [len(b) for b, _ in blocks] == [150, 150, 100]
    pd.testing.assert_frame_equal(pd.concat([b for b, _ in blocks]), geno)
    some = read_plink(plink_subset, snps=list(info.index[[5, 2]]), individuals=["HG00099", "HG00096"])
    np.testing.assert_array_equal(
        some.genotype_df.to_numpy(), geno.iloc[[5, 2]][["HG00099", "HG00096"]].to_numpy()
    )


def test_vcf_text_and_bcf_agree_with_plink(plink_subset, tmp_path):
    plink = read_plink(plink_subset, snps=slice(0, 60), individuals=None)
    geno, info = plink.genotype_df.iloc[:, :40], plink.snp_info_df
    write_vcf(geno, tmp_path / "g.vcf.gz", snp_info_df=info)
    text = read_vcf(tmp_path / "g.vcf.gz", field="GT")
    pd.testing.assert_frame_equal(text.genotype_df, geno, check_names=False)
    ds = read_vcf(tmp_path / "g.vcf.gz", field="DS")
    pd.testing.assert_frame_equal(ds.genotype_df, geno, check_names=False)
    with (
        pysam.VariantFile(str(tmp_path / "g.vcf.gz")) as src,
        pysam.VariantFile(str(tmp_path / "g.bcf"), "wb", header=src.header) as dst,
    ):
        for rec in src:
            dst.write(rec)
    bcf = read_vcf(tmp_path / "g.bcf", field="GT")
    pd.testing.assert_frame_equal(bcf.genotype_df, text.genotype_df)
    pd.testing.assert_frame_equal(bcf.snp_info_df, text.snp_info_df, check_dtype=False)
    region = read_vcf(tmp_path / "g.vcf.gz", region=f"18:{info['pos'].iloc[10]}-{info['pos'].iloc[19]}")
    assert list(region.genotype_df.index) == list(info.index[10:20])


def test_geuvadis_chr18_expression_bed_and_covariates(shared_data):
    folder = shared_data / "geuvadis_chr18"
    bed = read_expression_bed(folder / "synthetic/SYNTH_GEUV.445_samples.expression.bed.gz", chrom="18")
    assert bed.expression_df.shape == (301, 445)
    pos = bed.gene_pos_df
    assert (pos["start"] == pos["end"]).all()  # start = TSS - 1 in the BED, so 1-based start = end = TSS
    assert (pos["chrom"] == "chr18").all()
    covs = read_covariates(
        folder / "GEUVADIS.445_samples.covariates.txt", samples=list(bed.expression_df.columns)
    )
    assert covs.shape == (26, 445)
    assert list(covs.columns) == list(bed.expression_df.columns)
    assert set(covs.loc["sex"].unique()) == {1.0, 2.0}
    psam = pd.read_csv(
        folder / "GEUVADIS.445_samples.GRCh38.20170504.maf01.filtered.nodup.chr18.psam", sep="\t"
    )
    assert list(psam["#IID"]) == list(covs.columns)


def test_matrixeqtl_sample_inputs():
    folder = Path(__file__).resolve().parent / "data" / "matrixeqtl_sample" / "input"  # committed copy
    snps = read_matrixeqtl_matrix(folder / "SNP.txt")
    expr = read_matrixeqtl_matrix(folder / "GE.txt")
    covs = read_matrixeqtl_matrix(folder / "Covariates.txt")
    assert snps.shape == (15, 16) and expr.shape == (10, 16) and covs.shape == (2, 16)
    assert snps.loc["Snp_01", "Sam_01"] == 2.0 and expr.loc["Gene_01", "Sam_01"] == 4.91
    assert list(covs.index) == ["gender", "age"]
    auto = read_covariates(folder / "Covariates.txt", samples=list(expr.columns))
    pd.testing.assert_frame_equal(auto, covs, check_names=False)
    sloc = read_matrixeqtl_snpsloc(folder / "snpsloc.txt")
    gloc = read_matrixeqtl_geneloc(folder / "geneloc.txt")
    assert sloc.loc["Snp_01"].tolist() == ["chr1", 721289]
    assert gloc.loc["Gene_01", ["chrom", "start", "end"]].tolist() == ["chr1", 721289, 731289]
    assert set(sloc.index) == set(snps.index) and set(gloc.index) == set(expr.index)


@pytest.mark.slow
def test_geuvadis_chr18_full_plink_stream(shared_data):
    n_snps, n_missing = 0, 0
    for block, info in iter_plink_blocks(shared_data / GEUV18, block_size=50_000):
        n_snps += len(block)
        n_missing += int(np.isnan(block.to_numpy()).sum())
        assert (info["chrom"] == "chr18").all()
    assert n_snps == 367_759
    assert n_missing == 39_596  # README: 39,596 missing calls


def test_tsi85_and_gtex_brain_counts_with_sample_covariates(shared_data):
    folder = shared_data / "bulk_counts"
    tsi = read_counts(folder / "geuvadis_tsi85/counts.tsv.gz")
    assert tsi.shape == (10101, 85) and tsi.columns[0] == "NA20502"
    sexes = read_covariates(
        folder / "geuvadis_tsi85/samples.tsv", samples=list(tsi.columns), encode_categorical=True
    )
    assert list(sexes.index) == ["sex_Male"]  # Female is the reference level
    assert int(sexes.loc["sex_Male"].sum()) == 44  # README: 41 female, 44 male
    brain = read_counts(folder / "gtex_brain_acc_fc/counts.tsv.gz")
    assert brain.shape == (21363, 40)
    covs = read_covariates(
        folder / "gtex_brain_acc_fc/samples.tsv", samples=list(brain.columns), encode_categorical=True
    )  # samples x covariates on disk
    assert list(covs.columns) == list(brain.columns)
    assert "class_FC" in covs.index and covs.loc["class_FC"].sum() == 20
    assert set(np.unique(covs.to_numpy())) <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_polyfun_snp_positions(shared_data):
    path = shared_data / "gtex_eqtl_and_snp_annotations/polyfun_example_annotations_hg19.tsv.gz"
    with pytest.raises(InputError, match="duplicate SNP IDs: rs28643457"):  # one rsID, two ALT alleles
        read_snp_positions(path)
    pos = read_snp_positions(path, duplicates="first")
    assert len(pos) == 182_454 - 4
    assert pos.loc["rs201321709"].tolist() == ["chr1", 751580]
    assert pos.loc["rs28643457"].tolist() == ["chr4", 77246896]


def test_geuvadis_chr19_builds_an_eqtl_data_set(shared_data, caplog):
    from tbeqtl.data import EQTLData

    folder = shared_data / "geuvadis_ceu_chr19"
    counts = read_counts(
        folder / "transcript_counts_CEU_chr19_subset.tsv.gz",
        id_column="TargetID",
        sum_by="Gene_Symbol",
        non_integer="round",
    )
    geno = read_dosage_tsv(
        folder / "genotypes_CEU_chr19_subset.tsv.gz",
        id_column="snpId",
        info_columns=("chr", "start", "end"),
        na_values=("NA", "-1"),
    )
    snps = read_snp_positions(
        folder / "genotypes_CEU_chr19_subset.tsv.gz", id_column="snpId", pos_column="start"
    )
    genes = read_gene_annotation(folder / "gene_ranges_subset_hg19.tsv")
    with caplog.at_level("INFO", logger="tbeqtl"):
        data = EQTLData.from_frames(counts, geno, None, gene_info_df=genes, snp_info_df=snps)
    values = geno.to_numpy()
    lo = np.nanmin(np.where(np.isnan(values), np.inf, values), axis=1)
    hi = np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=1)
    n_monomorphic = int((lo == hi).sum())
    assert data.genotype_df.shape == (1330 - n_monomorphic, 91)
    assert data.counts_df.shape == (50, 91)
    assert (data.samples_per_individual == 1).all()
    assert data.snp_info_df["chrom"].eq("chr19").all() and data.gene_info_df["chrom"].eq("chr19").all()
    assert n_monomorphic == 404  # monomorphic in these 91 CEU individuals: dropped with a logged count
    assert "dropped 404 SNPs (0 all-missing, 404 monomorphic)" in caplog.text
