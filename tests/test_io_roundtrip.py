"""Written-then-read round trips for every writer."""

from __future__ import annotations

import gzip

import anndata
import numpy as np
import pandas as pd
import pysam
import pytest
from test_io_support import make_data

from tbeqtl.io import (
    harmonize_gene_types,
    iter_plink_blocks,
    iter_vcf_blocks,
    read_counts,
    read_covariates,
    read_dosage_tsv,
    read_expression_bed,
    read_gct,
    read_gct_descriptions,
    read_gene_annotation,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    read_matrixeqtl_geneloc,
    read_matrixeqtl_matrix,
    read_matrixeqtl_snpsloc,
    read_plink,
    read_sample_map,
    read_snp_positions,
    read_vcf,
    strip_version,
    write_counts,
    write_dosage_tsv,
    write_expression_bed,
    write_gct,
    write_gene_bed,
    write_gtex_sample_attributes,
    write_gtex_subject_phenotypes,
    write_matrixeqtl_geneloc,
    write_matrixeqtl_matrix,
    write_matrixeqtl_snpsloc,
    write_plink,
    write_sample_map,
    write_vcf,
)


@pytest.fixture
def data():
    return make_data(3)


@pytest.mark.parametrize("name", ["c.gct", "c.gct.gz"])
def test_gct_round_trip(tmp_path, data, name):
    write_gct(data.counts_df, tmp_path / name, description=data.gene_info_df["gene_name"])
    pd.testing.assert_frame_equal(read_gct(tmp_path / name), data.counts_df)
    assert read_gct_descriptions(tmp_path / name).to_dict() == data.gene_info_df["gene_name"].to_dict()
    with (gzip.open if name.endswith(".gz") else open)(tmp_path / name, "rt") as handle:
        text = handle.read().splitlines()
    assert text[0] == "#1.2"
    assert text[1] == f"{data.counts_df.shape[0]}\t{data.counts_df.shape[1]}"
    assert text[2].split("\t")[:2] == ["Name", "Description"]
    sub = read_gct(tmp_path / name, samples=list(data.samples[:3]), genes=list(data.genes[[4, 1]]))
    pd.testing.assert_frame_equal(sub, data.counts_df.iloc[[4, 1], :3])


def test_gct_writes_deterministic_gzip(tmp_path, data):
    write_gct(data.counts_df, tmp_path / "a.gct.gz")
    write_gct(data.counts_df, tmp_path / "b.gct.gz")
    assert (tmp_path / "a.gct.gz").read_bytes() == (tmp_path / "b.gct.gz").read_bytes()


@pytest.mark.parametrize("name", ["c.tsv", "c.tsv.gz", "c.parquet"])
def test_counts_round_trip(tmp_path, data, name):
    write_counts(data.counts_df, tmp_path / name)
    pd.testing.assert_frame_equal(read_counts(tmp_path / name), data.counts_df)


def test_counts_transposed_and_summed(tmp_path, data):
    data.counts_df.T.to_csv(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(
        read_counts(tmp_path / "t.csv", transpose=True), data.counts_df, check_names=False
    )
    tx = data.counts_df.iloc[:6].copy()
    tx.index = [f"ENST{i}" for i in range(6)]
    tx.insert(0, "gene", ["A", "A", "B", "C", "C", "C"])
    tx.to_csv(tmp_path / "tx.tsv", sep="\t", index_label="transcript")
    genes = read_counts(tmp_path / "tx.tsv", sum_by="gene")
    assert list(genes.index) == ["A", "B", "C"]
    np.testing.assert_array_equal(genes.loc["C"].to_numpy(), data.counts_df.iloc[3:6].sum().to_numpy())


def test_gtex_tables_round_trip(tmp_path, data):
    write_gtex_sample_attributes(data.sample_info_df, tmp_path / "s.tsv")
    header = (tmp_path / "s.tsv").read_text().splitlines()[0].split("\t")
    assert header[:2] == ["SAMPID", "SMTSD"]
    back = read_gtex_sample_attributes(tmp_path / "s.tsv")
    pd.testing.assert_series_equal(back["individual"], data.sample_map_s, check_names=False)
    pd.testing.assert_frame_equal(back.drop(columns="individual"), data.sample_info_df)
    write_gtex_subject_phenotypes(data.individual_info_df, tmp_path / "p.tsv")
    assert (tmp_path / "p.tsv").read_text().splitlines()[0].split("\t")[:2] == ["SUBJID", "SEX"]
    pd.testing.assert_frame_equal(read_gtex_subject_phenotypes(tmp_path / "p.tsv"), data.individual_info_df)


def test_sample_map_round_trip(tmp_path, data):
    write_sample_map(data.sample_map_s, tmp_path / "m.tsv")
    assert (tmp_path / "m.tsv").read_text().splitlines()[0] == "sample\tindividual"
    pd.testing.assert_series_equal(read_sample_map(tmp_path / "m.tsv"), data.sample_map_s)


@pytest.mark.parametrize("name", ["g.tsv", "g.tsv.gz"])
def test_dosage_round_trip_exact(tmp_path, data, name):
    geno = data.genotype_df.copy()
    geno.iloc[1, 1] = 1.0 / 3.0
    geno.iloc[2, 0] = 1.999999999
    write_dosage_tsv(geno, tmp_path / name)
    back = read_dosage_tsv(tmp_path / name)
    pd.testing.assert_frame_equal(back, geno, check_exact=True)
    with (gzip.open if name.endswith(".gz") else open)(tmp_path / name, "rt") as handle:
        lines = handle.read().splitlines()
    assert "NA" in lines[1].split("\t")  # rs1000 has a missing call, written as NA


def test_plink_round_trip_with_missing_and_alleles(tmp_path, data):
    write_plink(
        data.genotype_df,
        tmp_path / "g",
        snp_info_df=data.snp_info_df,
        individual_info_df=data.individual_info_df,
    )
    plink = read_plink(tmp_path / "g")
    pd.testing.assert_frame_equal(plink.genotype_df, data.genotype_df)
    pd.testing.assert_frame_equal(plink.snp_info_df.drop(columns="cm"), data.snp_info_df, check_dtype=False)
    assert plink.fam_df["sex"].tolist() == data.individual_info_df["sex"].tolist()
    bim = (tmp_path / "g.bim").read_text().splitlines()[0].split()
    assert bim[4] == data.snp_info_df["alt"].iloc[0]  # A1 = alt: the dosage counts A1
    # the bed file is raw PLINK: decode one SNP by hand (2 bits per individual, 01 = missing)
    raw = (tmp_path / "g.bed").read_bytes()
    assert raw[:3] == b"\x6c\x1b\x01"
    codes = [(raw[3 + j // 4] >> (2 * (j % 4))) & 3 for j in range(data.genotype_df.shape[1])]
    a1_counts = {0: 2.0, 1: np.nan, 2: 1.0, 3: 0.0}
    np.testing.assert_array_equal([a1_counts[c] for c in codes], data.genotype_df.iloc[0].to_numpy())


def test_plink_gzipped_and_blocks(tmp_path, data):
    write_plink(data.genotype_df, tmp_path / "g", snp_info_df=data.snp_info_df)
    for suffix in (".bed", ".bim"):
        with open(tmp_path / f"g{suffix}", "rb") as src, gzip.open(tmp_path / f"z{suffix}.gz", "wb") as dst:
            dst.write(src.read())
    (tmp_path / "z.fam").write_bytes((tmp_path / "g.fam").read_bytes())
    pd.testing.assert_frame_equal(read_plink(tmp_path / "z").genotype_df, data.genotype_df)
    blocks = list(iter_plink_blocks(tmp_path / "z", block_size=4, chrom="1"))
    on_chr1 = data.snp_info_df.index[data.snp_info_df["chrom"] == "chr1"]
    pd.testing.assert_frame_equal(pd.concat([b for b, _ in blocks]), data.genotype_df.loc[on_chr1])


def test_plink_rejects_fractional_dosages(tmp_path, data):
    from tbeqtl.errors import InputError

    geno = data.genotype_df.copy()
    geno.iloc[3, 2] = 0.5
    with pytest.raises(InputError, match=str(geno.index[3])):
        write_plink(geno, tmp_path / "g")
    assert not (tmp_path / "g.bed").exists()


@pytest.mark.parametrize("name", ["v.vcf", "v.vcf.gz"])
def test_vcf_round_trip(tmp_path, data, name):
    geno = data.genotype_df.copy()
    geno.iloc[2, 2] = 0.25
    write_vcf(geno, tmp_path / name, snp_info_df=data.snp_info_df)
    ds = read_vcf(tmp_path / name, field="DS")
    pd.testing.assert_frame_equal(ds.genotype_df, geno)
    pd.testing.assert_frame_equal(ds.snp_info_df, data.snp_info_df, check_dtype=False)
    gt = read_vcf(tmp_path / name, field="GT")
    pd.testing.assert_frame_equal(gt.genotype_df, geno.round())
    picked = read_vcf(tmp_path / name, snps=["rs1004", "rs1001"], samples=list(geno.columns[:2]))
    pd.testing.assert_frame_equal(
        picked.genotype_df, geno.round().loc[["rs1004", "rs1001"], geno.columns[:2]]
    )
    blocks = list(iter_vcf_blocks(tmp_path / name, chunk_size=4))
    assert [len(b) for b, _ in blocks] == [4, 4, 4, 3]


def test_vcf_gt_parsing_phased_haploid_missing_multiallelic(tmp_path):
    text = (
        "\n".join(
            [
                "##fileformat=VCFv4.2",
                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC",
                "1\t100\t.\tA\tG\t.\tPASS\t.\tGT:GQ\t0|1:30\t1|1:20\t.|.:0",
                "1\t200\trs2\tC\tT,G\t.\tPASS\t.\tGT\t0/1\t0/2\t1/1",
                "X\t300\trs3\tG\tA\t.\tPASS\t.\tGQ:GT\t9:1\t9:0\t9:./.",
            ]
        )
        + "\n"
    )
    (tmp_path / "x.vcf").write_text(text)
    out = read_vcf(tmp_path / "x.vcf")
    assert list(out.genotype_df.index) == ["chr1_100_A_G", "rs3"]  # "." IDs named, multi-allelic skipped
    np.testing.assert_array_equal(out.genotype_df.to_numpy(), [[1, 2, np.nan], [1, 0, np.nan]])
    assert out.snp_info_df.loc["rs3", "chrom"] == "chrX"


def test_expression_bed_round_trip_and_sorting(tmp_path, data):
    expr = np.log1p(data.counts_df.astype(float))
    pos = data.gene_info_df[["chrom", "start", "end", "strand"]]
    write_expression_bed(expr, pos, tmp_path / "e.bed.gz", tss=True)
    bed = read_expression_bed(tmp_path / "e.bed.gz")
    with pysam.TabixFile(str(tmp_path / "e.bed.gz")) as tabix:  # bgzip + .tbi, as FastQTL needs
        on_chr2 = [row.split("\t")[3] for row in tabix.fetch("chr2")]
    assert sorted(on_chr2) == sorted(pos.index[pos["chrom"] == "chr2"])
    tss = pos["start"].where(pos["strand"] == "+", pos["end"])
    assert (bed.gene_pos_df["start"] == tss.reindex(bed.gene_pos_df.index)).all()
    pd.testing.assert_frame_equal(
        bed.expression_df.loc[expr.index], expr, check_names=False, check_exact=True
    )
    order = bed.gene_pos_df
    assert order["chrom"].tolist() == sorted(order["chrom"], key=lambda c: int(c[3:]))
    write_expression_bed(expr, pos, tmp_path / "span.bed")
    span = read_expression_bed(tmp_path / "span.bed")
    pd.testing.assert_frame_equal(
        span.gene_pos_df.loc[pos.index, ["start", "end"]], pos[["start", "end"]], check_names=False
    )


def test_matrixeqtl_round_trip(tmp_path, data):
    geno = data.genotype_df.rename(columns=lambda c: c)  # SNPs x samples
    write_matrixeqtl_matrix(geno, tmp_path / "SNP.txt", id_header="snpid")
    assert (tmp_path / "SNP.txt").read_text().splitlines()[0].startswith("snpid\t")
    pd.testing.assert_frame_equal(read_matrixeqtl_matrix(tmp_path / "SNP.txt"), geno, check_names=False)
    write_matrixeqtl_snpsloc(data.snp_info_df, tmp_path / "snpsloc.txt")
    pd.testing.assert_frame_equal(
        read_matrixeqtl_snpsloc(tmp_path / "snpsloc.txt"),
        data.snp_info_df[["chrom", "pos"]],
        check_names=False,
    )
    write_matrixeqtl_geneloc(data.gene_info_df, tmp_path / "geneloc.txt")
    assert (tmp_path / "geneloc.txt").read_text().splitlines()[0] == "geneid\tchr\tleft\tright"
    gloc = read_matrixeqtl_geneloc(tmp_path / "geneloc.txt")
    pd.testing.assert_frame_equal(
        gloc[["chrom", "start", "end"]], data.gene_info_df[["chrom", "start", "end"]], check_names=False
    )


def test_covariates_either_orientation(tmp_path, data):
    covs = pd.DataFrame(
        {
            "pc1": np.linspace(-1, 1, len(data.samples)),
            "platform": data.sample_info_df["platform"],
            "batch": "b1",
        },
        index=data.samples,
    )
    covs.to_csv(tmp_path / "rows.tsv", sep="\t")
    covs.T.to_csv(tmp_path / "cols.tsv", sep="\t")
    order = list(data.samples[::-1])
    by_rows = read_covariates(tmp_path / "rows.tsv", samples=order)
    by_cols = read_covariates(tmp_path / "cols.tsv", samples=order)
    pd.testing.assert_frame_equal(by_rows, by_cols)
    assert list(by_rows.index) == ["pc1", "platform"]  # constant "batch" dropped
    assert list(by_rows.columns) == order
    covs["tissue"] = data.sample_info_df["tissue"]
    covs.to_csv(tmp_path / "cat.tsv", sep="\t")
    enc = read_covariates(tmp_path / "cat.tsv", samples=order, encode_categorical=True)
    levels = sorted(data.sample_info_df["tissue"].unique())
    assert [f"tissue_{lv}" for lv in levels[1:]] == [i for i in enc.index if i.startswith("tissue_")]


def test_gene_bed_round_trip_and_lncrna(tmp_path, data):
    write_gene_bed(data.gene_info_df, tmp_path / "genes.bed")
    first = (tmp_path / "genes.bed").read_text().splitlines()[1].split("\t")
    assert int(first[1]) == data.gene_info_df["start"].iloc[0] - 1  # 0-based BED start
    back = read_gene_annotation(tmp_path / "genes.bed")
    pd.testing.assert_frame_equal(back, data.gene_info_df, check_dtype=False)
    harmonised = read_gene_annotation(tmp_path / "genes.bed", harmonize_gene_types=True)
    assert "lincRNA" not in set(harmonised["gene_type"])
    assert (harmonised["gene_type_original"] == data.gene_info_df["gene_type"]).all()
    assert list(harmonize_gene_types(["lincRNA", "antisense", "protein_coding", "lncRNA"])) == [
        "lncRNA",
        "lncRNA",
        "protein_coding",
        "lncRNA",
    ]
    assert list(strip_version(["ENSG1.5", "ENSG2", "ENSG3.1_PAR_Y"])) == ["ENSG1", "ENSG2", "ENSG3_PAR_Y"]


def test_gtf_and_gff3_parsing(tmp_path):
    one = 'gene_id "G1.1"; gene_type "lincRNA"; gene_name "ONE";'
    two = 'gene_id "G2"; gene_biotype "protein_coding"; gene_name "TWO";'
    gtf = (
        "\n".join(
            [
                "##description: test",
                f"chr1\tHAVANA\tgene\t100\t900\t.\t-\t.\t{one}",
                f"chr1\tHAVANA\texon\t100\t200\t.\t-\t.\t{one}",
                f"2\tENSEMBL\tgene\t5\t50\t.\t+\t.\t{two}",
            ]
        )
        + "\n"
    )
    with gzip.open(tmp_path / "a.gtf.gz", "wt") as handle:
        handle.write(gtf)
    genes = read_gene_annotation(tmp_path / "a.gtf.gz")
    assert genes.loc["G1.1"].tolist() == ["chr1", 100, 900, "-", "lincRNA", "ONE"]
    assert genes.loc["G2", ["chrom", "gene_type"]].tolist() == ["chr2", "protein_coding"]
    gff = (
        "\n".join(
            [
                "##gff-version 3",
                "1\tEnsembl\tgene\t10\t20\t.\t+\t.\tID=gene:G9;Name=NINE;biotype=lincRNA",
                "1\tEnsembl\tmRNA\t10\t20\t.\t+\t.\tID=transcript:T9;Parent=gene:G9",
            ]
        )
        + "\n"
    )
    (tmp_path / "b.gff3").write_text(gff)
    gff_genes = read_gene_annotation(tmp_path / "b.gff3", harmonize_gene_types=True)
    assert gff_genes.loc["G9"].tolist()[:6] == ["chr1", 10, 20, "+", "lncRNA", "NINE"]
    exons_only = "".join(line + "\n" for line in gtf.splitlines() if "\texon\t" in line)
    (tmp_path / "c.gtf").write_text(exons_only)
    assert read_gene_annotation(tmp_path / "c.gtf").loc["G1.1", ["start", "end"]].tolist() == [100, 200]


def test_snp_positions_from_bim_pvar_and_tables(tmp_path, data):
    write_plink(data.genotype_df, tmp_path / "g", snp_info_df=data.snp_info_df)
    from_bim = read_snp_positions(tmp_path / "g.bim")
    pd.testing.assert_frame_equal(
        from_bim[["chrom", "pos"]], data.snp_info_df[["chrom", "pos"]], check_names=False
    )
    pvar = "##fileformat=PVARv1.0\n#CHROM\tPOS\tID\tREF\tALT\n" + "".join(
        f"{r.chrom[3:]}\t{r.pos}\t{i}\t{r.ref}\t{r.alt}\n" for i, r in data.snp_info_df.iterrows()
    )
    (tmp_path / "g.pvar").write_text(pvar)
    from_pvar = read_snp_positions(tmp_path / "g.pvar")
    pd.testing.assert_frame_equal(from_pvar, data.snp_info_df, check_names=False, check_dtype=False)


def test_dosage_blocks_stream_and_check(tmp_path, data):
    from tbeqtl.errors import InputError
    from tbeqtl.io import iter_dosage_tsv_blocks

    write_dosage_tsv(data.genotype_df, tmp_path / "g.tsv.gz")
    order = list(data.individuals[::-1])
    blocks = list(iter_dosage_tsv_blocks(tmp_path / "g.tsv.gz", block_size=4, individuals=order))
    assert [len(b) for b in blocks] == [4, 4, 4, 3]
    pd.testing.assert_frame_equal(pd.concat(blocks), data.genotype_df[order])
    text = (tmp_path / "g.tsv.gz").read_bytes()
    lines = gzip.decompress(text).decode().splitlines()
    (tmp_path / "dup.tsv").write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(InputError, match="duplicate SNP IDs: rs1000"):
        list(iter_dosage_tsv_blocks(tmp_path / "dup.tsv", block_size=4))


def test_bim_dot_ids_are_named(tmp_path):
    from tbeqtl.io import read_bim

    (tmp_path / "x.bim").write_text("18\t.\t0\t100\tG\tT\n18\trs2\t0\t200\tA\tC\n18\t.\t0\t300\tC\tA\n")
    assert list(read_bim(tmp_path / "x.bim").index) == ["chr18_100_T_G", "rs2", "chr18_300_A_C"]


def test_h5ad_layers_raw_and_gene_subset(tmp_path, data):
    from scipy import sparse

    from tbeqtl.io import read_h5ad

    counts = data.counts_df
    obs = pd.DataFrame(
        {"donor": data.sample_map_s.to_numpy(), "tissue": data.sample_info_df["tissue"].to_numpy()},
        index=counts.columns,
    )
    adata = anndata.AnnData(
        X=np.log1p(counts.T.to_numpy().astype(np.float32)),
        obs=obs,
        var=pd.DataFrame({"symbol": data.gene_info_df["gene_name"].to_numpy()}, index=counts.index),
    )
    adata.layers["counts"] = sparse.csc_matrix(counts.T.to_numpy())
    adata.raw = anndata.AnnData(
        X=sparse.csr_matrix(counts.T.to_numpy().astype(np.float32)),
        obs=obs,
        var=pd.DataFrame(index=counts.index),
    )
    adata.write_h5ad(tmp_path / "sc.h5ad")
    from_layer = read_h5ad(tmp_path / "sc.h5ad", donor_column="donor", layer="counts")
    pd.testing.assert_frame_equal(from_layer.counts_df, counts)
    pd.testing.assert_series_equal(from_layer.sample_map_s, data.sample_map_s)
    assert from_layer.gene_info_df["symbol"].tolist() == data.gene_info_df["gene_name"].tolist()
    picked = read_h5ad(
        tmp_path / "sc.h5ad", donor_column="donor", use_raw=True, genes=list(counts.index[[3, 1]])
    )
    pd.testing.assert_frame_equal(picked.counts_df, counts.iloc[[3, 1]])
    from tbeqtl.errors import InputError

    with pytest.raises(InputError, match="non-integer counts"):  # .X holds log-normalised values
        read_h5ad(tmp_path / "sc.h5ad", donor_column="donor")
    with pytest.raises(InputError, match="no layer 'spliced'"):
        read_h5ad(tmp_path / "sc.h5ad", donor_column="donor", layer="spliced")


def test_gct_float_values_and_explicit_covariate_orientation(tmp_path, data):
    tpm = data.counts_df / data.counts_df.sum() * 1e6
    write_gct(tpm, tmp_path / "tpm.gct")
    pd.testing.assert_frame_equal(read_gct(tmp_path / "tpm.gct", counts=False), tpm, check_exact=True)
    covs = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 5.0]}, index=["pc1", "pc2"])
    covs.to_csv(tmp_path / "c.tsv", sep="\t")
    out = read_covariates(tmp_path / "c.tsv", orientation="samples_by_covariates")
    assert list(out.index) == ["a", "b"] and list(out.columns) == ["pc1", "pc2"]


def test_vcf_indexed_region_fetch_matches_streaming(tmp_path, data, monkeypatch):
    geno = data.genotype_df
    info = data.snp_info_df.sort_values(["chrom", "pos"])
    write_vcf(geno.loc[info.index], tmp_path / "v.vcf.gz", snp_info_df=info)
    (tmp_path / "copy.vcf.gz").write_bytes((tmp_path / "v.vcf.gz").read_bytes())
    pysam.tabix_index(str(tmp_path / "v.vcf.gz"), preset="vcf", force=True)
    assert (tmp_path / "v.vcf.gz.tbi").exists()
    on_chr2 = info[info["chrom"] == "chr2"]
    region = f"2:{on_chr2['pos'].iloc[1]}-{on_chr2['pos'].iloc[-2]}"
    streamed = read_vcf(tmp_path / "copy.vcf.gz", region=region)
    import tbeqtl.io.vcf as vcf_module

    def no_scan(*args, **kwargs):
        raise AssertionError("an indexed region must not be read by scanning the text")

    monkeypatch.setattr(vcf_module, "_text_blocks", no_scan)
    fetched = read_vcf(tmp_path / "v.vcf.gz", region=region)
    pd.testing.assert_frame_equal(fetched.genotype_df, streamed.genotype_df)
    assert list(fetched.genotype_df.index) == list(on_chr2.index[1:-1])
