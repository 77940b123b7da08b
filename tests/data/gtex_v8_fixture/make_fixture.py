"""Write the small GTEx v8-format fixture used by tests/test_gtex*.py.

Run from anywhere: ``python tests/data/gtex_v8_fixture/make_fixture.py``. Deterministic
(numpy seed 8). The tables follow the published GTEx v8 column layouts; the values are made up.
See README.md for the designed overlaps that the tests check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(8)
GZ = {"compression": {"method": "gzip", "mtime": 0}}  # byte-stable gzip output

# 12 variants on chr1 / chr2 (b38) with rsIDs; v12 has no rsID ('.')
variants = [f"chr{1 + i // 6}_{1_000_000 + 1000 * i}_A_G_b38" for i in range(12)]
rsids = [f"rs{100 + i}" for i in range(11)] + ["."]
genes = [f"ENSG{i:011d}.{1 + i % 3}" for i in range(1, 9)]  # versioned GENCODE v26-style IDs

lookup = pd.DataFrame(
    {
        "chr": [v.split("_")[0] for v in variants],
        "variant_pos": [int(v.split("_")[1]) for v in variants],
        "variant_id": variants,
        "ref": "A",
        "alt": "G",
        "num_alt_per_site": 1,
        "rs_id_dbSNP151_GRCh38p7": rsids,
        "variant_id_b37": [v.replace("_b38", "_b37").replace("_1", "_9", 1) for v in variants],
    }
)

# Whole blood cis pairs: 8 pairs (variant index, gene index)
wb_pairs = [(0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (6, 4), (7, 5), (8, 5)]


def signif_pairs(pairs: list[tuple[int, int]]) -> pd.DataFrame:
    n = len(pairs)
    pvals = 10.0 ** -rng.uniform(5, 30, size=n)
    return pd.DataFrame(
        {
            "variant_id": [variants[v] for v, _ in pairs],
            "gene_id": [genes[g] for _, g in pairs],
            "tss_distance": rng.integers(-900_000, 900_000, size=n),
            "ma_samples": rng.integers(10, 300, size=n),
            "ma_count": rng.integers(10, 400, size=n),
            "maf": rng.uniform(0.01, 0.5, size=n).round(6),
            "pval_nominal": pvals,
            "slope": rng.normal(0, 0.5, size=n).round(6),
            "slope_se": rng.uniform(0.02, 0.1, size=n).round(6),
            "pval_nominal_threshold": 1e-4,
            "min_pval_nominal": pvals,
            "pval_beta": pvals * 10,
        }
    )


def egenes(pairs_df: pd.DataFrame) -> pd.DataFrame:
    top = pairs_df.sort_values("pval_nominal").drop_duplicates("gene_id")
    extra = pd.DataFrame({"gene_id": [genes[7]], "variant_id": [variants[11]], "pval_nominal": [0.2]})
    top = pd.concat([top, extra], ignore_index=True)  # one tested gene that is not an eGene (qval 0.6)
    n = len(top)
    pos = top["variant_id"].str.split("_").str[1].astype(int)
    return pd.DataFrame(
        {
            "gene_id": top["gene_id"],
            "gene_name": [f"GENE{i}" for i in range(n)],
            "gene_chr": top["variant_id"].str.split("_").str[0],
            "gene_start": pos + 5000,
            "gene_end": pos + 9000,
            "strand": "+",
            "num_var": 5000,
            "beta_shape1": 1.02,
            "beta_shape2": 900.0,
            "true_df": 600.0,
            "pval_true_df": top["pval_nominal"],
            "variant_id": top["variant_id"],
            "tss_distance": -5000,
            "chr": top["variant_id"].str.split("_").str[0],
            "variant_pos": pos,
            "ref": "A",
            "alt": "G",
            "num_alt_per_site": 1,
            "rs_id_dbSNP151_GRCh38p7": top["variant_id"].map(dict(zip(variants, rsids, strict=True))),
            "minor_allele_samples": 100,
            "minor_allele_count": 120,
            "maf": 0.1,
            "ref_factor": 1,
            "pval_nominal": top["pval_nominal"],
            "slope": 0.3,
            "slope_se": 0.05,
            "pval_perm": np.minimum(1.0, top["pval_nominal"] * 100),
            "pval_beta": np.minimum(1.0, top["pval_nominal"] * 50),
            "qval": [0.001] * (n - 1) + [0.6],
            "pval_nominal_threshold": 1e-4,
            "log2_aFC": 0.5,
            "log2_aFC_lower": 0.3,
            "log2_aFC_upper": 0.7,
        }
    )


wb = signif_pairs(wb_pairs)
wb.to_csv(HERE / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz", sep="\t", index=False, **GZ)
egenes(wb).to_csv(HERE / "Whole_Blood.v8.egenes.txt.gz", sep="\t", index=False, **GZ)
thyroid = signif_pairs([(9, 6), (10, 6), (0, 1)])
thyroid.to_parquet(HERE / "Thyroid.v8.signif_variant_gene_pairs.parquet", index=False)
lookup.to_csv(HERE / "lookup_table.txt.gz", sep="\t", index=False, **GZ)

# trans pairs (tissue_id, variant, gene, pval, fdr)
trans = pd.DataFrame(
    {
        "tissue_id": ["Whole_Blood", "Whole_Blood", "Thyroid"],
        "variant_id": [variants[5], variants[9], variants[2]],
        "gene_id": [genes[6], genes[7], genes[3]],
        "gene_name": ["GENE_T1", "GENE_T2", "GENE_T3"],
        "pval": [1e-12, 3e-11, 5e-13],
        "fdr": [0.01, 0.04, 0.02],
    }
)
trans.to_csv(HERE / "trans_eqtls.txt", sep="\t", index=False)

# our calls (eqtl_pairs rows) in whole blood, SNPs as rsIDs
calls = pd.DataFrame(
    {
        "snp": ["rs100", "rs102", "rs103", "rs105", "rs104", "rs111", "rs109", "rs105"],
        "gene": [genes[0], genes[1], genes[0], genes[4], genes[3], genes[2], genes[7], genes[6]],
        "kind": ["cis", "cis", "cis", "cis", "cis", "cis", "trans", "trans"],
        "p_value": [1e-8, 2e-6, 1e-4, 3e-3, 5e-7, 4e-3, 1e-9, 2e-8],
        "fdr": [1e-5, 1e-3, 0.02, 0.08, 1e-4, 0.09, 1e-6, 1e-5],
    }
)
calls.to_csv(HERE / "our_calls.tsv", sep="\t", index=False)
