"""``tbeqtl.prepare`` selection steps, each against a direct pandas/numpy computation.

The cohort is built in the real formats inside the tests (GTEx GCT of three tissues,
SampleAttributesDS, SubjectPhenotypesDS, a GTF, a VCF and a PLINK 2 set whose donors are a
superset of the RNA donors); see :func:`build_cohort`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tbeqtl.errors import InputError
from tbeqtl.io import (
    open_genotypes,
    read_gene_annotation,
    write_gct,
    write_gtex_sample_attributes,
    write_gtex_subject_phenotypes,
    write_pgen,
    write_vcf,
)
from tbeqtl.prepare import PrepareOptions
from tbeqtl.prepare.genes import annotate_genes, expressed_genes, select_gene_types
from tbeqtl.prepare.genotype_pass import select_variants
from tbeqtl.prepare.inputs import count_matrix_samples, read_sample_attributes, read_subject_attributes
from tbeqtl.prepare.ld import ld_prune
from tbeqtl.prepare.samples import select_samples
from tbeqtl.prepare.variants import allele_stats, imputed_flags

TISSUES = ("Lung", "Whole Blood", "Thyroid")
GENE_TYPES = ("protein_coding", "lincRNA", "miRNA", "processed_pseudogene")


def _donor(i: int) -> str:
    return f"GTEX-{1000 + i:X}"


def _write_gtf(gene_info: pd.DataFrame, path: Path) -> None:
    lines = []
    for gene, row in gene_info.iterrows():
        attrs = f'gene_id "{gene}"; gene_type "{row.gene_type}"; gene_name "{row.gene_name}";'
        lines.append(f"{row.chrom}\tHAVANA\tgene\t{row.start}\t{row.end}\t.\t+\t.\t{attrs}")
        lines.append(f"{row.chrom}\tHAVANA\ttranscript\t{row.start}\t{row.end}\t.\t+\t.\t{attrs}")
    path.write_text("##description: test annotation\n" + "\n".join(lines) + "\n")


def _genotypes(rng: np.random.Generator, individuals: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """LD blocks on chr1, chr2 and chrX: each SNP copies the previous one for ~70 % of people."""
    rows, info = [], []
    n = len(individuals)
    for chrom, n_snps in (("chr1", 90), ("chr2", 70), ("chrX", 15)):
        pos = np.sort(rng.choice(np.arange(10_000, 3_000_000, 7), n_snps, replace=False))
        prev = rng.binomial(2, 0.4, n).astype(float)
        for k in range(n_snps):
            p = rng.choice([0.02, 0.1, 0.3, 0.5])
            fresh = rng.binomial(2, p, n).astype(float)
            prev = np.where(rng.random(n) < 0.7, prev, fresh)
            g = prev.copy()
            g[rng.random(n) < rng.choice([0.0, 0.0, 0.05, 0.2])] = np.nan
            rows.append(g)
            info.append((f"{chrom}_{pos[k]}_A_G_b38", chrom, int(pos[k]), "A", "G"))
    idx = [i[0] for i in info]
    geno = pd.DataFrame(np.array(rows), index=idx, columns=individuals)
    snp_info = pd.DataFrame(info, columns=["snp", "chrom", "pos", "ref", "alt"]).set_index("snp")
    return geno, snp_info


def _add_info_flags(vcf: Path, pvar_prefix: Path, imputed: set[str]) -> None:
    lines = vcf.read_text().splitlines()
    out = []
    for line in lines:
        if line.startswith("#CHROM"):
            out.append('##INFO=<ID=IMP,Number=0,Type=Flag,Description="Imputed">')
        if not line.startswith("#"):
            fields = line.split("\t")
            fields[7] = "AF=0.3;IMP" if fields[2] in imputed else "AF=0.3"
            line = "\t".join(fields)
        out.append(line)
    vcf.write_text("\n".join(out) + "\n")
    pvar = Path(f"{pvar_prefix}.pvar")
    plines = pvar.read_text().splitlines()
    new = [plines[0] + "\tINFO"]
    for line in plines[1:]:
        new.append(line + ("\tTYPED=0;IMP" if line.split("\t")[2] in imputed else "\tTYPED"))
    pvar.write_text("\n".join(new) + "\n")


def build_cohort(folder: Path, seed: int = 7) -> dict:
    """Write a small GTEx-shaped cohort; return the paths and the frames written."""
    rng = np.random.default_rng(seed)
    rna_donors = [_donor(i) for i in range(14)]  # the last two have no genotypes
    geno_donors = [_donor(i) for i in range(12)] + [_donor(i) for i in range(20, 23)]  # 3 extra donors
    samples, tissue_of = [], {}
    for d, donor in enumerate(rna_donors):
        for t, tissue in enumerate(TISSUES):
            if (d + t) % 4 != 3:
                sample = f"{donor}-{d:02d}{t}6-SM-{d}X{t}"
                samples.append(sample)
                tissue_of[sample] = tissue
    n_genes = 48
    genes = [f"ENSG{i:011d}.{1 + i % 3}" for i in range(n_genes)]
    gene_info = pd.DataFrame(
        {
            "chrom": [("chr1", "chr2", "chrX")[i % 3] for i in range(n_genes)],
            "start": [10_000 + 50_000 * i for i in range(n_genes)],
            "gene_type": [GENE_TYPES[(i // 3) % 4] for i in range(n_genes)],
            "gene_name": [f"G{i}" for i in range(n_genes)],
        },
        index=genes,
    )
    gene_info["end"] = gene_info["start"] + 5_000
    means = rng.choice([0.5, 2.0, 5.0, 9.0, 30.0], size=(n_genes, len(TISSUES)))
    tix = np.array([TISSUES.index(tissue_of[s]) for s in samples])
    counts = pd.DataFrame(rng.poisson(means[:, tix]), index=genes, columns=samples)
    extra = f"{_donor(30)}-0016-SM-ZZZ"  # a sample without attributes
    counts[extra] = rng.poisson(5.0, n_genes)
    # genes absent from the annotation, and a GTF gene absent from the counts
    gtf_info = gene_info.drop(index=genes[-3:])
    gtf_info.loc["ENSG99999999999.1"] = ("chr1", 5, "protein_coding", "GX", 50)
    paths = {
        k: folder / v
        for k, v in {
            "counts": "GTEx_gene_reads.gct.gz",
            "sample_attributes": "SampleAttributesDS.txt",
            "subject_attributes": "SubjectPhenotypesDS.txt",
            "genes": "gencode.v26.genes.gtf",
            "vcf": "GTEx_WGS.vcf",
            "pgen": "GTEx_WGS",
        }.items()
    }
    write_gct(counts, paths["counts"], description=gene_info["gene_name"])
    attrs = pd.DataFrame(
        {"tissue": [tissue_of[s] for s in samples], "SMRIN": rng.uniform(6, 9, len(samples))}, index=samples
    )
    attrs.loc["GTEX-1999-0001-SM-NOT"] = ("Lung", 7.0)  # attributes of a sample not in the counts
    write_gtex_sample_attributes(attrs, paths["sample_attributes"])
    subjects = pd.DataFrame(
        {"sex": rng.integers(1, 3, len(rna_donors) + 3), "AGE": "50-59"}, index=rna_donors + geno_donors[-3:]
    )
    write_gtex_subject_phenotypes(subjects, paths["subject_attributes"])
    _write_gtf(gtf_info, paths["genes"])
    geno, snp_info = _genotypes(rng, geno_donors)
    write_vcf(geno, paths["vcf"], snp_info_df=snp_info)
    write_pgen(geno, snp_info, paths["pgen"])
    imputed = set(rng.choice(geno.index, 12, replace=False))
    _add_info_flags(paths["vcf"], paths["pgen"], imputed)
    return {
        "paths": paths,
        "counts": counts,
        "attrs": attrs,
        "subjects": subjects,
        "gene_info": gtf_info,
        "geno": geno,
        "snp_info": snp_info,
        "imputed": imputed,
        "tissue_of": tissue_of,
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    return build_cohort(tmp_path_factory.mktemp("cohort"))


def _kept_samples(c: dict) -> list[str]:
    """Direct: count samples with attributes whose donor (first two dash fields) is genotyped."""
    donors = {s: "-".join(s.split("-")[:2]) for s in c["counts"].columns}
    return sorted(s for s in c["counts"].columns if s in c["attrs"].index and donors[s] in c["geno"].columns)


def _selection(c: dict):
    attrs = read_sample_attributes(c["paths"]["sample_attributes"], tissue_column="SMTSD")
    with open_genotypes(c["paths"]["vcf"]) as source:
        return select_samples(
            count_matrix_samples(c["paths"]["counts"]),
            attrs,
            source.samples,
            counts_path="c",
            attributes_path="a",
            genotypes_path="g",
        )


def test_samples_match_direct(cohort):
    sel = _selection(cohort)
    kept = _kept_samples(cohort)
    assert list(sel.sample_df.index) == kept
    assert list(sel.individuals) == sorted({"-".join(s.split("-")[:2]) for s in kept})
    assert (sel.sample_df["tissue"] == pd.Series(cohort["tissue_of"]).loc[kept]).all()
    assert sel.counts["samples_input"] == cohort["counts"].shape[1]
    assert sel.counts["n_individuals"] == 12 and sel.counts["individuals_genotyped_input"] == 15
    assert sel.counts["n_tissues"] == 3


def test_genes_match_direct(cohort):
    sel = _selection(cohort)
    counts = cohort["counts"][list(sel.sample_df.index)]
    annotation = read_gene_annotation(cohort["paths"]["genes"])
    typed = select_gene_types(
        annotate_genes(counts.index, annotation), gene_types=PrepareOptions().gene_types, autosomes_only=True
    )
    kept = expressed_genes(counts.loc[typed.index], sel.sample_df["tissue"], min_median_count=5)
    # direct: pandas groupby median per tissue over the kept samples
    info = cohort["gene_info"]
    ok_type = info.index[
        info["gene_type"].isin(["protein_coding", "lincRNA"]) & info["chrom"].isin(["chr1", "chr2"])
    ]
    ok_type = ok_type.intersection(counts.index)
    medians = counts.loc[ok_type].T.groupby(sel.sample_df["tissue"]).median().T
    direct = medians.index[(medians >= 5).any(axis=1)]
    assert set(typed.index) == set(ok_type)
    assert set(kept) == set(direct)
    assert 0 < len(kept) < len(ok_type)


def test_gene_ids_match_without_version(cohort):
    annotation = read_gene_annotation(cohort["paths"]["genes"])
    ids = pd.Index(["ENSG00000000000.9", "ENSG00000000001.2", "ENSG77777777777.1"])
    found = annotate_genes(ids, annotation)
    assert list(found.index) == ["ENSG00000000000.9", "ENSG00000000001.2"]
    assert found.loc["ENSG00000000001.2", "gene_name"] == "G1"


def test_imputed_flags_vcf_and_pvar(cohort):
    for key, fmt in (("vcf", "vcf"), ("pgen", "pgen")):
        with open_genotypes(cohort["paths"][key]) as source:
            flags = imputed_flags(cohort["paths"][key], fmt, source.variant_df)
        assert set(flags.index[flags]) == cohort["imputed"], key


def test_allele_stats_by_hand():
    d = np.array([[0, 1, 2, np.nan], [2, 2, 2, 2], [np.nan] * 4, [0, 0, 0, 1]], dtype=np.float32)
    maf, missing = allele_stats(d)
    np.testing.assert_allclose(maf, [0.5, 0.0, 0.0, 1 / 8])
    np.testing.assert_allclose(missing, [0.25, 0.0, 1.0, 0.0])


def _r2(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~np.isnan(a) & ~np.isnan(b)
    x, y = a[ok], b[ok]
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def check_pruning(
    dosages: pd.DataFrame, pos: pd.Series, kept: pd.Index, *, r2: float = 0.2, window: int = 200_000
) -> None:
    """What plink 1.9 guarantees, checked with numpy Pearson r^2 over pairwise-complete calls."""
    kept_set = set(kept)
    values = dosages.to_numpy(dtype=float)
    p = pos.reindex(dosages.index).to_numpy()
    ids = list(dosages.index)
    for i in range(len(ids)):
        near = [j for j in range(len(ids)) if j != i and abs(p[i] - p[j]) < window]
        if ids[i] in kept_set:
            worst = max([_r2(values[i], values[j]) for j in near if ids[j] in kept_set], default=0.0)
            assert worst <= r2 + 1e-6, (ids[i], worst)
        elif np.nanstd(values[i]) > 0:
            best = max([_r2(values[i], values[j]) for j in near], default=0.0)
            assert best > r2 - 1e-6, (ids[i], best)


def test_ld_prune_against_direct_r2(cohort, tmp_path):
    geno = cohort["geno"].loc[cohort["snp_info"]["chrom"] == "chr1"]
    kept = ld_prune(geno, cohort["snp_info"]["pos"], r2=0.2, window_kb=200, workdir=tmp_path)
    assert 5 < len(kept) < len(geno)
    monomorphic = geno.index[(geno.nunique(axis=1) <= 1).to_numpy()]
    assert len(monomorphic) and not set(monomorphic) & set(kept)  # plink drops them (r^2 undefined)
    check_pruning(geno, cohort["snp_info"]["pos"], kept)
    assert list(tmp_path.iterdir())  # plink wrote into the given folder (the caller removes it)


def test_ld_window_is_in_kb(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.binomial(2, 0.4, 40).astype(float)
    b = rng.binomial(2, 0.4, 40).astype(float)
    dos = pd.DataFrame([a, a, a, b], index=["s1", "s2", "s3", "s4"])
    pos = pd.Series([1_000_000, 1_150_000, 1_400_000, 1_450_000], index=dos.index)
    kept = ld_prune(dos, pos, r2=0.2, window_kb=200, workdir=tmp_path)
    # s1/s2 are 150 kb apart and identical: one goes; s3 is 250 kb from s2: kept; s4 is independent
    assert len(set(kept) & {"s1", "s2"}) == 1 and {"s3", "s4"} <= set(kept)


def test_variant_pass_counts_match_direct(cohort, tmp_path):
    sel = _selection(cohort)
    options = PrepareOptions(maf=0.1, max_missing=0.1)
    emitted = {}
    with open_genotypes(cohort["paths"]["pgen"]) as source:
        flags = imputed_flags(cohort["paths"]["pgen"], "pgen", source.variant_df)
        info, counts = select_variants(
            source,
            sel.individuals,
            imputed=flags,
            options=options,
            workdir=tmp_path,
            emit=lambda chrom, df: emitted.__setitem__(chrom, df),
        )
    geno = cohort["geno"][list(sel.individuals)]
    snp_info = cohort["snp_info"]
    auto = snp_info.index[snp_info["chrom"].isin(["chr1", "chr2"])]
    not_imp = auto.difference(pd.Index(sorted(cohort["imputed"])), sort=False)
    missing = geno.loc[not_imp].isna().mean(axis=1)
    miss_ok = not_imp[(missing <= 0.1).to_numpy()]
    p = geno.loc[miss_ok].mean(axis=1) / 2
    maf_ok = miss_ok[(np.minimum(p, 1 - p) >= 0.1).to_numpy()]
    assert counts["snps_input"] == len(snp_info)
    assert counts["snps_autosomal"] == len(auto)
    assert counts["snps_not_imputed"] == len(not_imp)
    assert counts["snps_missing_ok"] == len(miss_ok)
    assert counts["snps_maf_ok"] == len(maf_ok)
    assert counts["snps_ld_pruned"] == len(info) == sum(len(df) for df in emitted.values())
    assert list(emitted) == ["chr1", "chr2"]
    for chrom, df in emitted.items():
        assert df.dtypes.eq(np.float32).all() and list(df.columns) == list(sel.individuals)
        candidates = maf_ok[snp_info.loc[maf_ok, "chrom"].to_numpy() == chrom]
        assert set(df.index) <= set(candidates)
        check_pruning(geno.loc[candidates], snp_info["pos"], df.index)
        np.testing.assert_array_equal(df.to_numpy(), geno.loc[df.index].to_numpy(dtype=np.float32))


def test_tissue_column_absent(cohort):
    with pytest.raises(InputError, match="no tissue column 'SMTISSUE'"):
        read_sample_attributes(cohort["paths"]["sample_attributes"], tissue_column="SMTISSUE")


def test_no_individual_in_common(cohort):
    attrs = read_sample_attributes(cohort["paths"]["sample_attributes"], tissue_column="SMTSD")
    with pytest.raises(InputError, match="no individual in common.*GTEX-"):
        select_samples(
            count_matrix_samples(cohort["paths"]["counts"]),
            attrs,
            pd.Index(["NA1", "NA2"]),
            counts_path="c.gct",
            attributes_path="a",
            genotypes_path="g.vcf",
        )


def test_subject_attributes_read(cohort):
    subjects = read_subject_attributes(cohort["paths"]["subject_attributes"])
    assert subjects.index.name == "individual" and "sex" in subjects.columns
    assert len(subjects) == 17


def test_generic_attribute_tables(tmp_path):
    path = tmp_path / "samples.tsv"
    pd.DataFrame(
        {"sample": ["s1", "s2", "s3"], "donor": ["d1", "d1", "d2"], "body_site": ["liver", "lung", "liver"]}
    ).to_csv(path, sep="\t", index=False)
    df = read_sample_attributes(path, tissue_column="body_site", individual_column="donor")
    assert list(df.columns[:2]) == ["individual", "tissue"]
    assert df["individual"].to_dict() == {"s1": "d1", "s2": "d1", "s3": "d2"}
    assert df["tissue"].to_dict() == {"s1": "liver", "s2": "lung", "s3": "liver"}
    with pytest.raises(InputError, match="no individual column 'subject'"):
        read_sample_attributes(path, tissue_column="body_site", individual_column="subject")
    with pytest.raises(InputError, match="GTEx pattern.*--individual-column"):
        read_sample_attributes(path, tissue_column="body_site")
    subjects = tmp_path / "subjects.tsv"
    pd.DataFrame({"individual": ["d1", "d2"], "sex": ["1", "2"], "age": ["50", "x"]}).to_csv(
        subjects, sep="\t", index=False
    )
    table = read_subject_attributes(subjects)
    assert table["sex"].tolist() == [1, 2] and table["age"].tolist() == ["50", "x"]


def test_annotation_without_gene_types(tmp_path):
    gtf = tmp_path / "no_types.gtf"
    gtf.write_text('chr1\tX\tgene\t10\t100\t.\t+\t.\tgene_id "ENSG1.1"; gene_name "A";\n')
    annotation = read_gene_annotation(gtf)
    found = annotate_genes(pd.Index(["ENSG1.1"]), annotation)
    with pytest.raises(InputError, match="no gene_type"):
        select_gene_types(found, gene_types=("protein_coding",), autosomes_only=True)
    assert list(select_gene_types(found, gene_types=(), autosomes_only=True).index) == ["ENSG1.1"]
