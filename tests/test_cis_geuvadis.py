"""The cis workflow on the GEUVADIS-shaped chr18 cohort (slow): peak memory of each mode, pair count,
and the top variants against statsmodels OLS.

Each mode runs in a fresh Python process that reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), reading the PLINK 2 files through
``tbeqtl.io.genotypes.open_genotypes``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import pandas as pd
    from tbeqtl.association import calculate_qvalues, map_cis, map_independent, map_nominal
    from tbeqtl.io.expression_bed import read_expression_bed
    from tbeqtl.io.genotypes import open_genotypes

    data, out, mode, n_phen = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    src = open_genotypes(f"{data}/SYNTH_GEUV.445_samples.chr18")
    expr, pos = read_expression_bed(f"{data}/SYNTH_GEUV.445_samples.expression.bed.gz", chrom="chr18")
    expr, pos = expr.iloc[:n_phen], pos.iloc[:n_phen]
    cov = pd.read_csv(f"{data}/SYNTH_GEUV.445_samples.covariates.txt", sep="\\t", index_col=0).T
    t = time.perf_counter()
    if mode == "nominal":
        files = map_nominal(src, None, expr, pos, "geu", cov, output_dir=out)
        result = {"n_pairs": sum(pd.read_parquet(f, columns=["slope"]).shape[0] for f in files.values())}
    elif mode == "cis":
        cis = map_cis(src, None, expr, pos, cov, nperm=1000, seed=1)
        cis.to_parquet(f"{out}/cis.parquet")
        result = {"n": len(cis)}
    else:
        cis = calculate_qvalues(pd.read_parquet(f"{out}/cis.parquet"), qvalue_lambda=0.5)
        ind = map_independent(src, None, cis, expr, pos, cov, nperm=1000, seed=1)
        ind.to_parquet(f"{out}/independent.parquet")
        result = {"n": len(ind), "n_egenes": int((cis["qval"] <= 0.05).sum())}
    result["seconds"] = time.perf_counter() - t
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    """
)


def _run(data, out, mode, n_phen):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(out), mode, str(n_phen)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def geuvadis(shared_data):
    folder = shared_data / "geuvadis_chr18" / "synthetic"
    if not (folder / "SYNTH_GEUV.445_samples.chr18.pgen").is_file():
        pytest.skip("GEUVADIS-shaped synthetic cohort not present")
    return folder


def test_every_mode_stays_under_2_gb(geuvadis, tmp_path):
    nominal = _run(geuvadis, tmp_path, "nominal", 301)
    assert nominal["n_pairs"] == 2_728_421  # tensorQTL's count for this cohort (1 Mb window)
    cis = _run(geuvadis, tmp_path, "cis", 30)
    assert cis["n"] == 30
    independent = _run(geuvadis, tmp_path, "independent", 30)
    assert independent["n"] >= independent["n_egenes"] > 0
    for result in (nominal, cis, independent):
        assert result["maxrss_mb"] < 2048, result


def test_top_variants_equal_statsmodels_on_chr18(geuvadis, tmp_path):
    import statsmodels.api as sm

    from tbeqtl.association import map_cis
    from tbeqtl.io.expression_bed import read_expression_bed
    from tbeqtl.io.genotypes import open_genotypes

    src = open_genotypes(geuvadis / "SYNTH_GEUV.445_samples.chr18")
    expr, pos = read_expression_bed(geuvadis / "SYNTH_GEUV.445_samples.expression.bed.gz", chrom="chr18")
    expr, pos = expr.iloc[100:104], pos.iloc[100:104]
    cov = pd.read_csv(geuvadis / "SYNTH_GEUV.445_samples.covariates.txt", sep="\t", index_col=0).T
    cis = map_cis(src, None, expr, pos, cov, nperm=100)
    samples = sorted(expr.columns)
    design = sm.add_constant(cov.loc[samples].to_numpy())
    rows = {v: i for i, v in enumerate(src.variant_df.index[src.variant_df["chrom"] == "chr18"])}
    for pid, row in cis.iterrows():
        k = rows[row["variant_id"]]
        g = src.read_chrom("chr18", samples=samples, start=k, stop=k + 1)[0].astype(float)
        g[np.isnan(g)] = np.nanmean(g)
        fit = sm.OLS(expr.loc[pid, samples].to_numpy(), np.column_stack([design, g])).fit()
        np.testing.assert_allclose(
            row[["slope", "slope_se", "pval_nominal"]].to_numpy(float),
            [fit.params[-1], fit.bse[-1], fit.pvalues[-1]],
            rtol=1e-8,
        )
        assert row["num_var"] > 1000
