"""The torch path of the cis workflow (``backend=``) gives the numpy path's results, on CPU torch.

References: the numpy backend's tables (identical variant choice, ``num_var`` and ``pval_perm``;
float statistics to ``rtol=1e-12``), and for the permutation maxima the float64 loop of
``cis_cohort.r2_perm_reference`` (every vector residualised by ``numpy.linalg.lstsq``, no tbeqtl
code). On a machine with CUDA the same tests also run ``backend="torch"`` on the GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cis_cohort import imputed, make_cohort, r2_perm_reference

from tbeqtl.association import calculate_qvalues, map_cis, map_independent, map_nominal
from tbeqtl.association.cis import _Conditional, _window
from tbeqtl.association.cis_device import TorchDevice, cis_device
from tbeqtl.association.cis_inputs import prepare_cis
from tbeqtl.association.cis_kernels import WindowCache, load_chromosome, residual_unit, scan_permutations
from tbeqtl.association.permutation import canonical_permutations
from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.io import write_expression_bed
from tbeqtl.io.pgen import write_pgen

WINDOW = 150_000
NPERM = 200
#: torch backends checked against numpy: CPU torch always, the GPU where there is one
BACKENDS = ["torch-cpu"] + (["torch"] if torch.cuda.is_available() else [])
EXACT = ("num_var", "variant_id", "pval_perm", "start_distance", "end_distance", "ma_samples", "ma_count")


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(
        5, n=150, n_variants=900, n_phenotypes=10, chroms=("chr1", "chr2"), span=1_000_000, effect=0.4
    )


def _args(c):
    return (c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df, c.covariates_df)


def _map_cis(c, backend, nperm=NPERM):
    return map_cis(*_args(c), nperm=nperm, seed=3, window=WINDOW, backend=backend)


@pytest.fixture(scope="module")
def cis_numpy(cohort):
    return _map_cis(cohort, "numpy")


def assert_same_table(ref: pd.DataFrame, got: pd.DataFrame) -> None:
    """Equal columns, index and dtypes; exact IDs, counts and pval_perm; floats to rtol 1e-12."""
    assert list(got.columns) == list(ref.columns)
    assert got.index.equals(ref.index)
    assert (got.dtypes == ref.dtypes).all()
    for col in ref.columns:
        if col in EXACT or ref[col].dtype.kind not in "f":
            np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
        else:
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-12, atol=0, err_msg=col)


@pytest.mark.parametrize("backend", BACKENDS)
def test_permutation_table_equals_numpy(cohort, cis_numpy, backend):
    assert cis_numpy["num_var"].min() > 10  # real windows
    assert_same_table(cis_numpy, _map_cis(cohort, backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_adaptive_table_equals_numpy(backend):
    # weak effects: some p-values near the eGene threshold, rerun at 10,000 permutations
    c = make_cohort(2, n=120, n_variants=800, n_phenotypes=16, span=1_000_000, effect=0.2)
    ref, got = (
        map_cis(*_args(c), nperm="adaptive", seed=3, window=WINDOW, qvalue_lambda=0.5, backend=b)
        for b in ("numpy", backend)
    )
    assert got.attrs["nperm"] == ref.attrs["nperm"]
    assert 10_000 in ref.attrs["nperm"].values()  # the second stage ran
    assert_same_table(ref, got)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nominal_parquet_equals_numpy(cohort, tmp_path, backend):
    tables = {}
    for b in ("numpy", backend):
        files = map_nominal(
            *_args(cohort)[:4], "t", cohort.covariates_df, window=WINDOW, output_dir=tmp_path / b, backend=b
        )
        assert sorted(files) == ["chr1", "chr2"]
        tables[b] = pd.concat([pd.read_parquet(files[k]) for k in sorted(files)], ignore_index=True)
    ref, got = tables["numpy"], tables[backend]
    assert len(ref) > 1000 and ref["pval_nominal"].notna().sum() > 1000
    EXACT_PAIRS = (
        "phenotype_id",
        "variant_id",
        "start_distance",
        "end_distance",
        "af",
        "ma_samples",
        "ma_count",
    )
    assert list(got.columns) == list(ref.columns)
    for col in ref.columns:
        if col in EXACT_PAIRS:
            np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
        else:
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-12, atol=0, err_msg=col)


@pytest.mark.parametrize("backend", BACKENDS)
def test_independent_table_equals_numpy(cohort, cis_numpy, backend):
    cis_df = calculate_qvalues(cis_numpy.copy(), qvalue_lambda=0.5)
    assert (cis_df["qval"] <= 0.05).sum() >= 3
    kwargs = {"nperm": NPERM, "seed": 3, "window": WINDOW}
    ref = map_independent(*_args(cohort)[:2], cis_df, *_args(cohort)[2:], backend="numpy", **kwargs)
    got = map_independent(*_args(cohort)[:2], cis_df, *_args(cohort)[2:], backend=backend, **kwargs)
    assert len(ref) > (cis_df["qval"] <= 0.05).sum()  # conditional passes selected more variants
    assert_same_table(ref.set_index(["phenotype_id", "rank"]), got.set_index(["phenotype_id", "rank"]))


def _window_inputs(c, pid):
    inputs = prepare_cis(*_args(c)[:3], phenotype_pos_df=c.phenotype_pos_df, covariates_df=c.covariates_df)
    chrom = inputs.positions.loc[pid, "chrom"]
    chromg = load_chromosome(inputs.source, chrom, samples=inputs.cohort.genotype_ids, q=inputs.q)
    keep = np.flatnonzero(chromg.testable)
    vidx = _window(chromg, keep, *inputs.bounds(pid), WINDOW)
    return inputs, chromg, keep, vidx


@pytest.mark.parametrize("backend", BACKENDS)
def test_permutation_maxima_on_the_device_equal_a_float64_loop(cohort, backend):
    """r2_perm of the device scan = numpy's scan = the lstsq float64 loop; float32 maxima within the bound."""
    c = cohort
    dev = cis_device(backend)
    samples = sorted(c.phenotype_df.columns)
    cov = c.covariates_df.loc[samples].to_numpy()
    perms = canonical_permutations(samples, NPERM, seed=5)
    for pid in c.phenotype_df.index[:3]:
        inputs, chromg, keep, vidx = _window_inputs(c, pid)
        y = inputs.values[pid]
        u, _ = residual_unit(y, inputs.q)
        yp, _ = residual_unit(y[perms], inputs.q)
        ref = r2_perm_reference(c.phenotype_df.loc[pid, samples].to_numpy(), cov, chromg.rows64(vidx), perms)
        # cached device blocks not aligned with the window, and fresh blocks uploaded per scan
        for cache, block in ((WindowCache(chromg, keep, block=53, device=dev), 53), (None, 37)):
            kw = {"u": u[0], "yp": yp, "cache": cache, "block": block, "keep_float32": True}
            with dev.exact_float32():
                got = scan_permutations(chromg, vidx, device=dev, **kw)
            host = scan_permutations(
                chromg,
                vidx,
                **{**kw, "cache": None if cache is None else WindowCache(chromg, keep, block=53)},
            )
            np.testing.assert_allclose(got.r2_perm, ref, rtol=1e-11)
            np.testing.assert_allclose(got.r2_perm, host.r2_perm, rtol=1e-12, atol=0)
            np.testing.assert_array_equal(got.dots, host.dots)
            assert got.bound == host.bound and 0 < got.bound < 1e-3
            assert np.max(np.abs(np.sqrt(got.r2_perm_float32) - np.sqrt(ref))) <= got.bound
            assert 0 < got.n_candidates < vidx.size * NPERM / 4  # pruned, on the device


@pytest.mark.parametrize("backend", BACKENDS)
def test_conditional_maxima_on_the_device_equal_a_float64_loop(cohort, cis_numpy, backend):
    """Cached device rows rescaled for an added covariate (and fresh rows) vs lstsq with that covariate."""
    c = cohort
    dev = cis_device(backend)
    pid = cis_numpy["pval_beta"].idxmin()
    inputs, chromg, keep, vidx = _window_inputs(c, pid)
    samples = sorted(c.phenotype_df.columns)
    cov = c.covariates_df.loc[samples].to_numpy()
    perms = canonical_permutations(inputs.cohort.samples, NPERM, seed=2)
    top = cis_numpy.loc[pid, "variant_id"]
    sel = int(np.flatnonzero(chromg.ids == top)[0])
    others = np.array([v for v in vidx if v != sel])
    y = c.phenotype_df.loc[pid, samples].to_numpy()
    ref = r2_perm_reference(y, np.column_stack([cov, imputed(c, top, samples)]), chromg.rows64(others), perms)
    for cache in (WindowCache(chromg, keep, block=53, device=dev), None):
        cond = _Conditional(inputs, chromg, vidx, pid, perms, NPERM, cache, device=dev)
        with dev.exact_float32():
            res = cond.scan(cond.basis([sel]))
        host = _Conditional(inputs, chromg, vidx, pid, perms, NPERM, None).scan(cond.basis([sel]))
        assert res[1] == host[1] and res[0]["pval_perm"] == host[0]["pval_perm"]
        extra = cond.basis([sel])
        yp = cond.yp - (cond.yp @ extra) @ extra.T
        yp /= np.linalg.norm(yp, axis=1, keepdims=True)
        yv = cond.y_res - extra @ (extra.T @ cond.y_res)
        scan = scan_permutations(
            chromg, vidx, u=yv / np.linalg.norm(yv), yp=yp, extra=extra,
            q_full=np.column_stack([inputs.q, extra]), cache=cache, device=dev, keep_float32=True,
        )  # fmt: skip
        np.testing.assert_allclose(scan.r2_perm, ref, rtol=1e-10)
        assert np.max(np.abs(np.sqrt(scan.r2_perm_float32) - np.sqrt(ref))) <= scan.bound


def test_device_keeps_cached_rows_resident_and_disables_tf32(cohort):
    dev = TorchDevice("cpu")
    _, chromg, keep, vidx = _window_inputs(cohort, cohort.phenotype_df.index[0])
    cache = WindowCache(chromg, keep, block=64, device=dev)
    pieces = list(cache.pieces(vidx))
    assert all(isinstance(p[-1], torch.Tensor) and p[-1].dtype == torch.float32 for p in pieces)
    host = list(WindowCache(chromg, keep, block=64).pieces(vidx))
    for p, h in zip(pieces, host, strict=True):
        np.testing.assert_array_equal(p[-1].numpy(), h[-1])  # the same float32 rounding
    before = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with dev.exact_float32():
            assert torch.backends.cuda.matmul.allow_tf32 is False
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.backends.cuda.matmul.allow_tf32 is True  # restored
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])


@pytest.mark.parametrize("bad", ["gpu", "cuda:0", "Torch", ""])
def test_unknown_backend_is_an_input_error(cohort, cis_numpy, bad):
    c = cohort
    with pytest.raises(InputError, match="unknown backend"):
        map_cis(*_args(c), nperm=NPERM, backend=bad)
    with pytest.raises(InputError, match="unknown backend"):
        map_nominal(*_args(c)[:4], "x", c.covariates_df, output_dir=".", backend=bad)
    cis_df = calculate_qvalues(cis_numpy.copy(), qvalue_lambda=0.5)
    with pytest.raises(InputError, match="unknown backend"):
        map_independent(*_args(c)[:2], cis_df, *_args(c)[2:], nperm=NPERM, backend=bad)


def test_auto_backend_does_not_import_torch_without_a_gpu_driver(tmp_path):
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from cis_cohort import make_cohort\n"
        "from tbeqtl.association import map_cis, map_nominal\n"
        "c = make_cohort(1, n=80, n_variants=300, n_phenotypes=4, span=600_000)\n"
        "args = (c.genotype_df, c.variant_df, c.phenotype_df, c.phenotype_pos_df)\n"
        "t = map_cis(*args, c.covariates_df, nperm=20, window=100_000)\n"
        f"map_nominal(*args, 'x', c.covariates_df, window=100_000, output_dir={str(tmp_path)!r})\n"
        "print('ROWS', len(t), 'TORCH', 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    gpu_driver = os.path.exists("/proc/driver/nvidia")  # only then may "auto" look for CUDA
    assert f"ROWS 4 TORCH {gpu_driver}" in out


@pytest.fixture(scope="module")
def files(cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("backend_cohort")
    write_pgen(cohort.genotype_df, cohort.variant_df.assign(ref="A", alt="G"), root / "geno")
    pos = cohort.phenotype_pos_df.rename(columns={"chr": "chrom"})
    write_expression_bed(cohort.phenotype_df, pos, root / "expr.bed.gz")
    cohort.covariates_df.T.to_csv(root / "cov.txt", sep="\t")
    return root


def _cli(files, out, *extra):
    args = [
        "cis", "--genotypes", files / "geno", "--phenotypes", files / "expr.bed.gz", "--covariates",
        files / "cov.txt", "--out", out, "--permutations", NPERM, "--seed", 3, "--window", WINDOW,
        "--log-level", "WARNING", *extra,
    ]  # fmt: skip
    return main([str(a) for a in args])


def test_cli_backend_flag(files, tmp_path, cis_numpy):
    tables = {}
    for b in ("numpy", "torch-cpu"):
        assert _cli(files, tmp_path / b, "--mode", "permutations", "--backend", b) == 0
        tables[b] = pd.read_csv(tmp_path / b / "tbeqtl.cis_qtl.txt.gz", sep="\t", index_col=0)
        run = json.loads((tmp_path / b / "run.json").read_text())
        assert run["runs"]["cis_permutations"]["params"]["backend"] == b
    pd.testing.assert_frame_equal(tables["torch-cpu"], tables["numpy"])
    np.testing.assert_array_equal(tables["numpy"].loc[cis_numpy.index, "variant_id"], cis_numpy["variant_id"])
    with pytest.raises(SystemExit) as err:
        _cli(files, tmp_path / "bad", "--backend", "cuda")
    assert err.value.code == 2
