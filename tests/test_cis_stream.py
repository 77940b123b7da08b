"""The streamed nominal pass: bounded genotype memory, the PLINK 2 int8 path, imports of ``tbeqtl cis``.

Memory is tested structurally (what the pass holds), not by timing or RSS: every read is at most
one block, each variant is read once, and no more than ``workers + 1`` blocks of float64 rows are
alive at any time, whatever the number of variants. Statistics are checked against statsmodels OLS
(``cis_cohort.ols``) on a PLINK 2 file set read through pgenlib's int8 path.
"""

from __future__ import annotations

import functools
import gc
import subprocess
import sys
import threading
import weakref

import numpy as np
import pandas as pd
import pytest
from cis_cohort import imputed, make_cohort, ols, window_ids

from tbeqtl.association import cis_nominal, map_nominal
from tbeqtl.io.genotypes import FrameGenotypes
from tbeqtl.io.pgen import PgenSource, write_pgen

WINDOW = 60_000


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(23, n_variants=1200, n_phenotypes=10, chroms=("chr1", "chr2"), span=800_000)


class _CountingSource:
    """A genotype source that records every read (range and thread-safe live count)."""

    def __init__(self, inner):
        self.inner = inner
        self.samples, self.variant_df, self.chromosomes = inner.samples, inner.variant_df, inner.chromosomes
        self.reads: list[tuple[str, int, int]] = []

    def read_chrom(self, chrom, *, samples, start=0, stop=None):
        self.reads.append((chrom, start, stop))
        return self.inner.read_chrom(chrom, samples=samples, start=start, stop=stop)


def test_streamed_pass_holds_a_bounded_number_of_blocks(cohort, tmp_path, monkeypatch):
    c = cohort
    block, workers = 37, 2
    source = _CountingSource(FrameGenotypes(c.genotype_df, c.variant_df))
    alive: list[weakref.ref] = []
    peak = [0]
    lock = threading.Lock()
    real = cis_nominal.block_statistics

    def spy(raw, codes, q, **kwargs):
        stats, centred, products = real(raw, codes, q, **kwargs)
        with lock:
            gc.collect()
            alive.append(weakref.ref(centred))
            peak[0] = max(peak[0], sum(r() is not None for r in alive))
        return stats, centred, products

    monkeypatch.setattr(cis_nominal, "block_statistics", spy)
    monkeypatch.setattr(cis_nominal, "STREAM_BLOCK", block)
    monkeypatch.setattr(cis_nominal, "worker_count", lambda: workers)
    files = map_nominal(
        source,
        None,
        c.phenotype_df,
        c.phenotype_pos_df,
        "b",
        c.covariates_df,
        window=WINDOW,
        output_dir=tmp_path,
    )
    n_var = c.variant_df["chrom"].value_counts()
    assert max(stop - start for _, start, stop in source.reads) <= block
    for chrom in ("chr1", "chr2"):  # every variant read exactly once, in order
        ranges = sorted((a, b) for ch, a, b in source.reads if ch == chrom)
        assert ranges[0][0] == 0 and ranges[-1][1] == n_var[chrom]
        assert all(b0 == a1 for (_, b0), (a1, _) in zip(ranges, ranges[1:], strict=False))
    assert len(alive) == sum(-(-int(v) // block) for v in n_var)  # one float64 buffer per block
    assert peak[0] <= workers + 1
    assert all(r().shape[0] <= block for r in alive if r() is not None)
    # small blocks give the pairs of the default pass
    monkeypatch.undo()
    ref = map_nominal(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        "r",
        c.covariates_df,
        window=WINDOW,
        output_dir=tmp_path / "ref",
    )
    for chrom, path in ref.items():
        pd.testing.assert_frame_equal(
            pd.read_parquet(files[chrom]), pd.read_parquet(path), check_exact=False, rtol=1e-10, atol=1e-15
        )


def test_plink2_int8_path_equals_statsmodels(cohort, tmp_path):
    c = cohort
    vdf = c.variant_df.assign(ref="A", alt="C")
    write_pgen(c.genotype_df, vdf, tmp_path / "g")
    with PgenSource(tmp_path / "g") as source:
        codes = source.read_chrom_codes("chr1", samples=list(source.samples[::-1]), start=3, stop=9)
        want = c.genotype_df.loc[source.variant_df.index[3:9], list(source.samples[::-1])].to_numpy()
        np.testing.assert_array_equal(codes, np.where(want < 0, -9, want))
        files = map_nominal(
            source,
            None,
            c.phenotype_df,
            c.phenotype_pos_df,
            "p",
            c.covariates_df,
            window=WINDOW,
            output_dir=tmp_path / "out",
        )
        df = pd.concat([pd.read_parquet(f) for f in files.values()], ignore_index=True)
    samples = c.phenotype_df.columns
    cov = c.covariates_df.loc[samples].to_numpy()
    missing = c.genotype_df.index[(c.genotype_df[samples] < 0).any(axis=1)]
    checked = 0
    for pid in c.phenotype_df.index[:3]:
        sub = df[df["phenotype_id"] == pid].set_index("variant_id")
        assert list(sub.index) == window_ids(c, pid, WINDOW)
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        for vid in [*sub.index[sub.index.isin(missing)][:5], *sub.index[::17]]:
            g = imputed(c, vid, samples)
            if np.ptp(g) == 0:
                assert sub.loc[vid, ["pval_nominal", "slope", "slope_se"]].isna().all()
                continue
            slope, se, p, _ = ols(y, cov, g)
            np.testing.assert_allclose(
                sub.loc[vid, ["slope", "slope_se", "pval_nominal"]].to_numpy(float), [slope, se, p], rtol=1e-8
            )
            checked += 1
    assert checked > 20


def test_cis_nominal_command_does_not_import_torch(cohort, tmp_path):
    c = cohort
    vdf = c.variant_df.assign(ref="A", alt="C")
    write_pgen(c.genotype_df, vdf, tmp_path / "g")
    from tbeqtl.io.expression_bed import write_expression_bed

    pos = c.phenotype_pos_df.rename(columns={"chr": "chrom"})
    write_expression_bed(c.phenotype_df, pos, tmp_path / "e.bed.gz")
    c.covariates_df.T.to_csv(tmp_path / "cov.txt", sep="\t")
    args = [
        "cis", "--mode", "nominal", "--genotypes", str(tmp_path / "g"), "--phenotypes",
        str(tmp_path / "e.bed.gz"), "--covariates", str(tmp_path / "cov.txt"), "--out",
        str(tmp_path / "out"), "--threads", "1", "--window", str(WINDOW),
    ]  # fmt: skip
    code = (
        "import sys\nfrom tbeqtl.cli import main\n"
        f"assert main({args!r}) == 0\n"
        "heavy = sorted(m for m in ('torch', 'pyro', 'statsmodels', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert list((tmp_path / "out").glob("tbeqtl.cis_qtl_pairs.chr*.parquet"))


def test_permutation_and_conditional_passes_hold_only_the_blocks_under_the_windows(cohort, monkeypatch):
    """map_cis / map_independent read genotype blocks on demand and drop those left of the windows."""
    from tbeqtl.association import calculate_qvalues, cis, map_cis, map_independent
    from tbeqtl.association.cis_kernels import BlockStore, WindowCache, load_chromosome, open_chromosome

    c = cohort
    block = 20
    opened = []

    def spy(source, chrom, *, samples, q):
        chromg = open_chromosome(source, chrom, samples=samples, q=q, block=block)
        opened.append(chromg)
        return chromg

    kwargs = {"nperm": 100, "seed": 3, "window": WINDOW}
    monkeypatch.setattr(cis, "open_chromosome", spy)
    monkeypatch.setattr(cis, "WindowCache", functools.partial(WindowCache, block=block))
    got = map_cis(c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df, c.covariates_df, **kwargs)
    got = calculate_qvalues(got, qvalue_lambda=0.5)
    ind = map_independent(
        c.genotype_df,
        c.variant_df,
        got,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        fdr=0.5,
        **kwargs,
    )
    pos = c.variant_df["pos"]
    span = max(
        int(((pos >= s - WINDOW) & (pos <= e + WINDOW) & (c.variant_df["chrom"] == ch)).sum())
        for ch, s, e in c.phenotype_pos_df[["chr", "start", "end"]].itertuples(index=False)
    )
    assert len(opened) == 4  # two chromosomes, two passes
    for chromg in opened:
        assert isinstance(chromg.store, BlockStore)
        # a window, plus the cache block and a genotype block at each end
        assert chromg.store.peak_blocks * block <= span + 3 * block < chromg.n_variants
        assert chromg.store.reads >= chromg.n_variants // block // 2  # blocks were read, then dropped
    # the same tables with the chromosomes loaded whole (same blocks: the same statistics)
    monkeypatch.setattr(cis, "open_chromosome", functools.partial(load_chromosome, block=block))
    ref = map_cis(c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df, c.covariates_df, **kwargs)
    ref = calculate_qvalues(ref, qvalue_lambda=0.5)
    pd.testing.assert_frame_equal(got, ref, check_exact=False, rtol=1e-12, atol=0)
    ref_ind = map_independent(
        c.genotype_df,
        c.variant_df,
        ref,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        fdr=0.5,
        **kwargs,
    )
    pd.testing.assert_frame_equal(ind, ref_ind, check_exact=False, rtol=1e-12, atol=0)
