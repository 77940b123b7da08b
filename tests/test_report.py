"""Report tests on a synthetic run folder written in the documented table formats (no fitted model).

The helper :func:`write_run_folder` writes every table a pipeline run leaves behind (layout of
tbeqtl.layout.RunLayout); tests then remove stages, break tables, and render the outputs with
headless Chromium and pdftoppm.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tbeqtl.atomic import write_json, write_table
from tbeqtl.cli import main
from tbeqtl.layout import RunLayout
from tbeqtl.pipeline.report_tables import write_report_tables
from tbeqtl.report import build_report, load_run
from tbeqtl.report.load import SECTIONS
from tbeqtl.schema import validate_table
from tbeqtl.simulate import simulate

PAIRS = (("chr1", "chr1"), ("chr1", "chr2"), ("chr2", "chr2"))
ALL_FIGURES = {
    "fig1_sample_topics", "elbo", "fig3_loading_correlation", "fig2_snp_classes", "fig2_genomic_bins",
    "fig4_permutation_qq", "fig4_eqtl_counts", "pvalue_histograms", "fig5_locus_heatmap",
}
LOCUS_TISSUE = "Whole Blood"


def _mlog10_sorted(p):
    return np.sort(-np.log10(p))[::-1]


def _write(df: pd.DataFrame, schema: str, path: Path) -> None:
    """Write a table after checking it against the registered schema (keeps the fixture honest)."""
    write_table(validate_table(df, schema), path)


def write_run_folder(root: Path, rng: np.random.Generator) -> RunLayout:
    """Write a complete synthetic run folder: the tiny simulation as input, 3 pairs, every stage done.

    Tables follow tbeqtl.schema (validated on writing) and the fit outputs of tbeqtl.tblda.io.
    """
    layout = RunLayout(root)
    sim = simulate(preset="tiny", seed=1)
    sim.write(layout.simulation)
    data = sim.data
    samples = list(data.samples)
    tissue_of = data.sample_info_df["tissue"].astype(str)
    tissues = sorted(tissue_of.unique())
    k = len(sim.truth.topic_tissue_s)
    by_ind = pd.Series(samples, index=data.sample_map_s.reindex(samples).to_numpy())
    held = set()
    for _, group in by_ind.groupby(level=0):
        if len(group) >= 3:
            held.update(sorted(group)[:2])
    genes = {c: list(data.gene_info_df.index[data.gene_info_df["chrom"] == c]) for c in ("chr1", "chr2")}
    snps = {c: list(data.snp_info_df.index[data.snp_info_df["chrom"] == c]) for c in ("chr1", "chr2")}
    gene_type = data.gene_info_df["gene_type"].astype(str)
    write_json({"config": {"data": {"path": "", "tissue_column": "tissue"},
                           "fit": {"n_topics": k, "max_steps": 300},
                           "mapping": {"fdr": 0.1, "cis_dist": 1e6}},
                "versions": {"tbeqtl": "0.1.0", "torch": "2.13.0", "pyro": "1.9.1"},
                "checksums": {"counts.gct.gz": "abc123"}}, layout.run_json)
    layout.config.write_text("[mapping]\nfdr = 0.1\n", encoding="utf-8")
    fit_samples = [s for s in samples if s not in held]
    calls = []
    for gene_chrom, snp_chrom in PAIRS:
        pair = layout.pair(gene_chrom, snp_chrom)
        write_json({"fit": "done", "rank": "done", "factors": "done", "eqtl": "done"}, pair.status)
        individuals = data.sample_map_s.reindex(samples).to_numpy()
        _write(pd.DataFrame({"sample": samples, "individual": individuals,
                             "held_out": [s in held for s in samples]}), "holdout", pair.holdout)
        phi = sim.truth.sample_topics_df.loc[fit_samples].to_numpy()
        phi = phi * rng.uniform(0.8, 1.2, size=phi.shape)
        phi /= phi.sum(axis=1, keepdims=True)
        cols = [str(j) for j in range(k)]
        write_table(pd.DataFrame(phi, index=pd.Index(fit_samples, name="sample"), columns=cols),
                    pair.fit / "sample_topics.tsv", index=True)
        write_table(pd.DataFrame(rng.dirichlet(np.ones(len(genes[gene_chrom])), size=k).T,
                                 index=pd.Index(genes[gene_chrom], name="gene"), columns=cols),
                    pair.fit / "gene_topics.tsv", index=True)
        write_table(pd.DataFrame(rng.beta(1, 1, size=(len(snps[snp_chrom]), k)),
                                 index=pd.Index(snps[snp_chrom], name="snp"), columns=cols),
                    pair.fit / "snp_topics.tsv", index=True)
        steps = np.arange(1, 301)
        elbo = -1e5 * (1 + 2 * np.exp(-steps / 40)) + rng.normal(0, 30, size=len(steps))
        stat = np.full(len(steps), np.nan)
        for s in range(100, 301, 25):
            x, y = elbo[s - 50:s].mean(), elbo[s - 100:s - 50].mean()
            stat[s - 1] = abs(y - x) / abs(y)
        write_table(pd.DataFrame({"step": steps, "elbo": elbo, "statistic": stat}), pair.fit / "elbo.tsv")
        write_json({"tool": "tbeqtl fit", "n_steps": 300, "stop_reason": "max_steps",
                    "params": {"tol": 1e-4, "window": 50}}, pair.fit / "run.json")
        rows = []
        for j in range(k):
            for tissue in tissues:
                in_t = [tissue_of[s] == tissue for s in fit_samples]
                ip = float(phi[in_t, j].sum())
                norm = float(phi[in_t, j].mean() / phi[[not v for v in in_t], j].mean())
                rows.append((j, tissue, int(sum(in_t)), ip, norm, norm > 2))
        columns = ["topic", "tissue", "n_samples", "inner_product", "normalized_score", "associated"]
        _write(pd.DataFrame(rows, columns=columns), "tissue_factors", pair.factors / "tissue_association.tsv")
        for tissue in tissues:
            folder = pair.eqtl("all", tissue)
            tests = {}
            for kind, n in (("cis", 60), ("trans", 120)):
                g = rng.choice(genes[gene_chrom], size=n)
                v = rng.choice(snps[snp_chrom], size=n)
                p = np.concatenate([rng.uniform(1e-9, 1e-4, size=n // 6), rng.uniform(0, 1, size=n - n // 6)])
                if kind == "trans" and (gene_chrom, snp_chrom) == ("chr1", "chr2") and tissue == LOCUS_TISSUE:
                    g[:8] = genes[gene_chrom][:8]
                    v[:8] = snps[snp_chrom][5]
                df = pd.DataFrame({"snp": v, "gene": g, "beta": rng.normal(0, 0.5, size=n),
                                   "t_stat": rng.normal(0, 3, size=n), "p_value": p})
                df = df.drop_duplicates(["snp", "gene"]).sort_values("p_value").reset_index(drop=True)
                df["fdr"] = np.minimum(1, df["p_value"] * n / np.arange(1, len(df) + 1))
                df["gene_type"] = df["gene"].map(gene_type)
                df["fdr_by_type"] = df["fdr"]
                tests[kind] = df
                _write(df, "eqtl_pairs", folder / f"{kind}.tsv")
                calls.append(df[df["fdr_by_type"] < 0.1].assign(pair=pair.name, factor_set="all",
                                                                tissue=tissue, **{"class": kind}))
            qq = [pd.DataFrame({"pool": kind, "rank": np.arange(1, len(tests[kind]) + 1),
                                "observed_log10p": _mlog10_sorted(tests[kind]["p_value"].to_numpy()),
                                "permuted_log10p": _mlog10_sorted(rng.uniform(0, 1, size=len(tests[kind])))})
                  for kind in ("cis", "trans")]
            qq = [q.assign(beyond_permuted=q["observed_log10p"] > q["permuted_log10p"].max()) for q in qq]
            _write(pd.concat(qq, ignore_index=True), "permutation_qq", folder / "qq.tsv")
            edges = np.linspace(0, 1, 21)
            hist = [pd.DataFrame({"pool": kind, "bin_lo": edges[:-1], "bin_hi": edges[1:],
                                  "count": np.histogram(tests[kind]["p_value"], bins=edges)[0]})
                    for kind in ("cis", "trans")]
            _write(pd.concat(hist, ignore_index=True), "pvalue_hist", folder / "hist.tsv")
            write_json({"tissue": tissue, "n_tests": {"cis": 60, "trans": 120}, "call_column": "fdr_by_type"},
                       folder / "run.json")
    go = pd.DataFrame({"set": ["Whole Blood"] * 5 + ["Muscle - Skeletal"] * 5,
                       "term": [f"GO:{i:07d}" for i in range(10)],
                       "overlap": rng.integers(3, 20, size=10), "set_size": rng.integers(20, 200, size=10),
                       "odds_ratio": rng.uniform(1, 5, size=10), "p_value": np.geomspace(1e-8, 0.5, 10),
                       "fdr": np.minimum(1, np.geomspace(1e-7, 1, 10)),
                       "description": [f"process {i}" for i in range(10)]})
    _write(go, "go_enrichment", layout.enrichment / "go.tsv")
    annots = ["TFBS_ENCODE", "SuperEnhancer_Hnisz", "H3K27ac_Hnisz", "H3K4me1_Trynka", "DGF_ENCODE",
              "Enhancer_Hoffman", "Coding_UCSC", "Promoter_UCSC"]
    rows = []
    for s in ("union", *tissues):
        for a, p in zip(annots, rng.uniform(0, 0.3, 8) ** 3, strict=True):
            rows.append((s, a, 10, 100, 40, 1000, rng.uniform(0.5, 4), p, min(1.0, p * 8)))
    _write(pd.DataFrame(rows, columns=["set", "annotation", "overlap", "class_size", "n_set", "n_background",
                                       "odds_ratio", "p_value", "fdr"]),
           "snp_annotation_enrichment", layout.enrichment / "snp_annot.tsv")
    bins, offset = [], 0
    for order, (chrom, length) in enumerate((("chr1", 5_000_000), ("chr2", 4_000_000)), start=1):
        starts = np.arange(0, length - 250_000, 100_000)
        for tissue in tissues:
            p = rng.uniform(0, 1, size=len(starts)) ** 2
            bins.append(pd.DataFrame({
                "set": tissue, "bin": [f"{chrom}:{s}-{s + 250_000}" for s in starts], "chrom": chrom,
                "start": starts, "end": starts + 250_000, "chrom_order": order,
                "cumulative_position": offset + starts + 125_000.0, "overlap": 1, "bin_size": 5, "n_set": 20,
                "n_background": 150, "odds_ratio": 1.5, "p_value": p, "fdr": np.minimum(1, p * 3),
                "neg_log10_p": -np.log10(p)}))
        offset += length
    _write(pd.concat(bins, ignore_index=True), "genomic_bin_enrichment", layout.enrichment / "bins.tsv")
    _write(pd.DataFrame({"set_tissue": tissues, "tf_tissue": tissues, "own_tissue": True,
                         "n_tfs": [12, 8, 5, 3], "n_found": [10, 3, 2, 0],
                         "fraction": [10 / 12, 3 / 8, 0.4, 0.0],
                         "label": ["10/12", "3/8", "2/5", "0/3"], "genes": ["TF1,TF2", "TF3", "", ""]}),
           "tf_recovery", layout.enrichment / "tf_recovery.tsv")
    _write(pd.DataFrame({"tissue": "all", "kind": ["cis", "trans"], "level": "pair", "n_ours": [300, 40],
                         "n_gtex": [1000, 50], "n_shared": [120, 3], "n_novel": [170, 37],
                         "n_unmapped": [10, 0], "fraction_shared": [120 / 290, 3 / 40]}),
           "gtex_comparison", layout.gtex / "comparison.tsv")
    _write(pd.DataFrame({"tissue": "all", "kind": ["cis", "trans"], "n_ours": [300, 40], "n_gtex": [1000, 50],
                         "statistic": [0.11, 0.3], "p_value": [0.003, 0.01], "median_ours": [1e-5, 1e-7],
                         "median_gtex": [1e-6, 1e-9]}), "gtex_ks", layout.gtex / "ks.tsv")
    # what the pipeline's gather step writes for the report from the inputs (Fig 1, Fig 3, Fig 5)
    write_report_tables(layout, data=data, calls_df=pd.concat(calls, ignore_index=True),
                        pair_names=[p.name for p in layout.pairs()])
    return layout


def _pngs_in_html(html: str) -> list[bytes]:
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)
    out = []
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), f"image is not an embedded PNG: {src[:60]}"
        out.append(base64.b64decode(src.split(",", 1)[1], validate=True))
    return out


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("run") / "run"
    write_run_folder(root, np.random.default_rng(7))
    start = time.perf_counter()
    html_path, pdf_path = build_report(root)
    return {"root": root, "html": html_path, "pdf": pdf_path, "seconds": time.perf_counter() - start}


def test_full_run_has_every_figure_and_section(full_report):
    html = full_report["html"].read_text(encoding="utf-8")
    info = json.loads((full_report["html"].parent / "report.json").read_text())
    assert info["absent"] == {}
    assert set(info["figures"]) == ALL_FIGURES
    assert set(info["sections"]) == {"findings", *SECTIONS, "appendix"}
    pngs = _pngs_in_html(html)
    assert len(pngs) == len(ALL_FIGURES)
    for png in pngs:
        image = Image.open(io.BytesIO(png))
        image.verify()
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels.std() > 10  # not a blank canvas
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "Section absent" not in html
    # Tables carry the values of the run: the planted locus is the top trans locus of Fig 5.
    data = load_run(full_report["root"])
    assert data.extras["locus"]["snp"] in html
    assert full_report["pdf"].read_bytes().startswith(b"%PDF")


def test_summary_counts_match_the_tables(full_report):
    data = load_run(full_report["root"])
    eqtls = data.tables["eqtls"]
    sig = eqtls[eqtls["fdr_by_type"] < 0.1]
    summary = data.tables["summary"]
    totals = summary[(summary["tissue"] == "all") & (summary["gene_type"] == "all")].set_index("kind")
    for kind in ("cis", "trans"):
        part = sig[sig["kind"] == kind]
        assert totals.loc[kind, "n_eqtls"] == len(part)
        assert totals.loc[kind, "n_egenes"] == part["gene"].nunique()
        assert totals.loc[kind, "n_evariants"] == part["snp"].nunique()
    by_tissue = summary[(summary["tissue"] != "all") & (summary["gene_type"] == "all")]
    assert by_tissue.groupby("kind")["n_eqtls"].sum().to_dict() == sig.groupby("kind").size().to_dict()
    # Fig 3: SNP loadings correlated after regressing out the coded MAF of the input genotypes
    assert any("residuals after coded MAF" in k for k in data.extras["robust"])
    locus = data.extras["locus"]
    assert (locus["pair"], locus["tissue"], len(locus["genes"])) == ("chr1__chr2", LOCUS_TISSUE, 8)
    assert locus["snp"] in set(data.tables["eqtls"]["snp"])
    # Fig 5 input: the held-out samples of the tissue, one per individual, inverse-normal expression
    expr = data.tables["locus_expression"]
    assert list(expr.index) == locus["genes"]
    assert np.allclose(expr.mean(axis=1), 0, atol=1e-9)
    assert set(data.tables["locus_genotype"]["dosage"].unique()) <= {0.0, 1.0, 2.0}
    counts = data.tables["counts"]
    assert counts["n_eqtls"].sum() == len(sig[sig["factor_set"] == "all"])


def test_rebuild_gives_identical_tables_and_figures(full_report, tmp_path):
    first = full_report["html"].parent
    start = time.perf_counter()
    build_report(full_report["root"], out_dir=tmp_path / "again")
    seconds = time.perf_counter() - start
    second = tmp_path / "again"
    tables = sorted(p.name for p in (first / "tables").glob("*.tsv"))
    assert tables and tables == sorted(p.name for p in (second / "tables").glob("*.tsv"))
    for name in tables:
        assert (first / "tables" / name).read_bytes() == (second / "tables" / name).read_bytes(), name
    for png in (first / "figures").glob("*.png"):
        assert png.read_bytes() == (second / "figures" / png.name).read_bytes(), png.name
    # the HTML differs only in where it was written? no: it names the run folder, not the output folder
    assert (first / "report.html").read_text() == (second / "report.html").read_text()
    print(f"report build {full_report['seconds']:.1f} s, rebuild {seconds:.1f} s")


def test_missing_and_failed_stages_are_reported(tmp_path):
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(3))
    shutil.rmtree(layout.enrichment)
    for pair in layout.pairs():
        shutil.rmtree(pair.root / "eqtl")
        write_json({"fit": "done", "rank": "done", "factors": "done",
                    "eqtl": "failed: InputError: tissue Thyroid has 3 held-out samples for 9 covariates"},
                   pair.status)
    (layout.gtex / "comparison.tsv").write_text("not\ta\ttable\n1\n", encoding="utf-8")
    html_path, pdf_path = build_report(layout.root)
    html = html_path.read_text(encoding="utf-8")
    info = json.loads((html_path.parent / "report.json").read_text())
    assert pdf_path.is_file()
    for key in ("qq", "counts", "locus", "hist", "summary", "top_eqtls"):
        assert "tissue Thyroid has 3 held-out samples" in info["absent"][key], key
    for key in ("go", "snp_enrichment", "bins", "tf"):
        assert "enrichment/" in info["absent"][key] and "not found" in info["absent"][key], key
    assert "topics" not in info["absent"] and "convergence" not in info["absent"]
    assert "Section absent" in html and "tissue Thyroid has 3 held-out samples" in html
    assert set(info["figures"]) == {"fig1_sample_topics", "elbo", "fig3_loading_correlation"}


def test_failed_pair_and_skipped_stage_reasons(tmp_path):
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(4))
    for pair in layout.pairs():
        shutil.rmtree(pair.fit)
        shutil.rmtree(pair.root / "eqtl")
        write_json({"holdout": "done", "pair": "failed: RuntimeError: SVI diverged (NaN loss)"}, pair.status)
    (layout.enrichment / "tf_recovery.tsv").unlink()
    write_json({"go": "done", "tf_recovery": "skipped: no tissue-specific TF list"},
               layout.enrichment / "status.json")
    data = load_run(layout.root)
    for key in ("topics", "convergence", "qq", "summary"):
        assert "failed: RuntimeError: SVI diverged (NaN loss)" in data.absent[key], key
        assert "(and 2 more pairs)" in data.absent[key]
    assert data.absent["tf"] == "stage 'tf_recovery' skipped: no tissue-specific TF list"
    status = data.status_df
    assert set(status["pair"]) == {"chr1__chr1", "chr1__chr2", "chr2__chr2", "(run)"}


def test_relabel_genes_keeps_the_simulation_consistent():
    from tbeqtl.pipeline.demo import relabel_genes

    sim = simulate(preset="tiny", seed=2)
    table = pd.DataFrame({"symbol": [f"SYM{i}" for i in range(300)],
                          "ncbi_gene_type": ["protein-coding"] * 200 + ["ncRNA"] * 100,
                          "ensembl_ids": [f"ENSG{i:011d}" + (",ENSG99" if i % 7 == 0 else "")
                                          for i in range(300)]})
    new = relabel_genes(sim, table, seed=5)
    again = relabel_genes(sim, table, seed=5)
    assert list(new.data.genes) == list(again.data.genes)
    old_info, new_info = sim.data.gene_info_df, new.data.gene_info_df
    assert len(set(new.data.genes)) == len(old_info)
    assert all(g.startswith("ENSG") and g.endswith(".1") for g in new.data.genes)
    mapping = dict(zip(old_info.index, new_info.index, strict=True))
    # gene types keep their pool: protein_coding genes got protein-coding IDs
    pc = {f"ENSG{i:011d}.1" for i in range(200)}
    assert all((mapping[g] in pc) == (old_info.loc[g, "gene_type"] == "protein_coding")
               for g in old_info.index)
    # counts and truth follow the same mapping
    assert np.array_equal(new.data.counts_df.loc[[mapping[g] for g in old_info.index]].to_numpy(),
                          sim.data.counts_df.loc[old_info.index].to_numpy())
    assert list(new.truth.eqtls_df["gene"]) == [mapping[g] for g in sim.truth.eqtls_df["gene"]]
    assert list(new.truth.gene_topics_df.index) == [mapping[g] for g in sim.truth.gene_topics_df.index]


def test_empty_folder_gives_a_report_of_absences(tmp_path):
    (tmp_path / "run").mkdir()
    html_path, pdf_path = build_report(tmp_path / "run", out_dir=tmp_path / "out")
    info = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(info["absent"]) == set(SECTIONS)
    assert "run.json is missing" in html_path.read_text(encoding="utf-8")
    assert pdf_path.is_file()


def test_malformed_table_marks_section_absent(tmp_path):
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(5))
    for pair in layout.pairs():
        (pair.fit / "elbo.tsv").write_text("foo\tbar\n1\t2\n", encoding="utf-8")
    data = load_run(layout.root)
    assert "neither an 'elbo' nor a 'loss' column" in data.absent["convergence"]
    assert "topics" not in data.absent


def test_convergence_statistic_matches_the_fit_rule(rng):
    from tbeqtl.report.load_fit import _convergence_statistic
    from tbeqtl.tblda.convergence import ConvergenceRule

    loss = 1e4 * (1 + np.exp(-np.arange(400) / 50)) + rng.normal(0, 5, size=400)
    for name in ("abs", "compat"):
        stat = _convergence_statistic(loss, 60, rule=name)
        rule = ConvergenceRule(rule=name, window=60)
        for t in (119, 120, 250, 399):
            assert stat[t] == pytest.approx(rule.statistic(loss[: t + 1]), rel=1e-10)
        assert np.isnan(stat[:119]).all()


def test_cli_report(tmp_path, capsys):
    run = tmp_path / "run"
    write_json({"config": {"mapping": {"fdr": 0.05}}}, RunLayout(run).run_json)
    assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "report.pdf").is_file()
    assert (tmp_path / "rep" / "tbeqtl.log").is_file()
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere")]) == 2


# --------------------------------------------------------------------------- rendering
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package `chromium`)")
def test_html_renders_in_headless_chromium(full_report, tmp_path):
    # A copy of the report with a probe script that records broken images in the DOM.
    html = full_report["html"].read_text(encoding="utf-8")
    probe = ("<script>window.addEventListener('load', function () {var imgs = document.images, bad = 0;"
             "for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) "
             "{ bad++; } }"
             # click the p_value header twice (descending) and read the column back
             "var tb = document.getElementById('table-top_eqtls');"
             "var ths = tb.tHead.rows[0].cells, col = -1;"
             "for (var j = 0; j < ths.length; j++) { if (ths[j].textContent === 'p_value') { col = j; } }"
             "ths[col].click(); ths[col].click(); var vals = [];"
             "for (var r = 0; r < tb.tBodies[0].rows.length; r++) "
             "{ vals.push(tb.tBodies[0].rows[r].cells[col].getAttribute('data-sort')); }"
             "var d = document.createElement('div'); d.id = 'probe'; d.setAttribute('data-n', "
             "imgs.length); d.setAttribute('data-bad', bad); d.setAttribute('data-sorted', vals.join(' '));"
             "document.body.appendChild(d);});</script>")
    probe_path = tmp_path / "probe.html"
    probe_path.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    result = _chromium(["--virtual-time-budget=5000", "--dump-dom", probe_path.as_uri()], tmp_path / "p1")
    match = re.search(r'id="probe" data-n="(\d+)" data-bad="(\d+)" data-sorted="([^"]*)"', result.stdout)
    assert match, f"probe not found in Chromium's DOM dump: {result.stderr[-500:]}"
    assert int(match.group(1)) == len(ALL_FIGURES)
    assert int(match.group(2)) == 0, "broken images in the rendered page"
    # the inline sort script sorted the p-value column numerically, descending after two clicks
    sorted_p = [float(v) for v in match.group(3).split()]
    assert len(sorted_p) > 10 and sorted_p == sorted(sorted_p, reverse=True)
    assert sorted_p != sorted(sorted_p)
    result = _chromium([f"--screenshot={shot}", "--window-size=1200,3000", full_report["html"].as_uri()],
                       tmp_path / "p2")
    assert shot.is_file(), result.stderr[-500:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (3000, 1200)
    grey = pixels.mean(axis=2)
    assert (grey < 250).mean() > 0.05  # a good part of the page is drawn, not blank
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 50  # figures' colours, not only text


@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdfinfo") is None,
                    reason="pdftoppm/pdfinfo are not installed (Debian package `poppler-utils`)")
def test_pdf_converts_to_expected_pages(full_report, tmp_path):
    info = json.loads((full_report["html"].parent / "report.json").read_text())
    expected = info["pdf_pages"]
    assert expected >= 5
    pdfinfo = subprocess.run(["pdfinfo", str(full_report["pdf"])], capture_output=True, text=True, check=True)
    assert int(re.search(r"Pages:\s+(\d+)", pdfinfo.stdout).group(1)) == expected
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(full_report["pdf"]), str(tmp_path / "page")],
                   check=True, timeout=120)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == expected
    inked = [(np.asarray(Image.open(p).convert("L"), dtype=float) < 200).mean() for p in pages]
    assert all(v > 0.002 for v in inked), inked


def test_figures_render_edge_cases_without_warnings():
    from tbeqtl.report import figures
    from tbeqtl.report.sections import figure_png

    elbo = pd.DataFrame({"run": "a", "step": np.arange(1, 31), "elbo": -np.linspace(100, 50, 30)})
    no_stat = pd.DataFrame({"run": [], "step": [], "statistic": []})
    qq = pd.DataFrame({"run": "a", "kind": "trans", "permuted": [3.0, 2.0, 1.0], "observed": [5.0, 2.5, 1.0],
                       "beyond": [True, False, False]})
    counts = pd.DataFrame({"tissue": ["T1"], "kind": ["cis"], "gene_type": ["protein_coding"],
                           "n_eqtls": [3]})
    hist = pd.DataFrame({"kind": "cis", "bin_start": [0.0, 0.5], "bin_end": [0.5, 1.0], "count": [7, 3]})
    corr = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=["r:0", "r:1"], columns=["r:0", "r:1"])
    made = [
        figures.elbo_figure(elbo, no_stat, tol=1e-4),
        figures.permutation_qq_figure(qq),
        figures.eqtl_count_figure(counts),
        figures.pvalue_histogram_figure(hist),
        figures.loading_correlation_figure({"gene loadings": corr}, pd.Series({"r:0": "T1", "r:1": ""})),
        figures.locus_expression_figure(pd.DataFrame([[0.1, -0.2, 0.3]], index=["g"],
                                                     columns=["s1", "s2", "s3"]),
                                        pd.Series({"s1": 0.0, "s2": 2.0, "s3": np.nan}), title="one gene"),
    ]
    for fig in made:
        png = figure_png(fig)
        assert png.startswith(b"\x89PNG") and fig.axes


def test_topic_colours_follow_tissue_families():
    from matplotlib.colors import to_rgb

    from tbeqtl.report.figures.topics import topic_colours

    colours = topic_colours(pd.Series({0: "Blood", 1: "Blood", 2: "", 3: "Liver", 4: ""}),
                            {"Blood": "#0072B2", "Liver": "#E69F00"})
    assert len(set(colours.values())) == 5
    grey = [to_rgb(colours[k]) for k in (2, 4)]
    assert all(abs(r - g) < 1e-9 and abs(g - b) < 1e-9 for r, g, b in grey)  # untied topics are grey
    blue = [to_rgb(colours[k]) for k in (0, 1)]
    assert all(b > r for r, _, b in blue)  # both Blood topics are shades of blue


def test_demo_cli_rejects_a_missing_gene_set_file(tmp_path):
    # fails before simulating anything
    assert main(["demo", "--out", str(tmp_path / "demo"), "--go-gmt", str(tmp_path / "none.gmt")]) == 2
    assert not (tmp_path / "demo" / "simulation").exists()


def _gather_like_the_pipeline(layout: RunLayout, *, keep_calls: bool) -> None:
    """Write summary/eqtls.parquet, qq.parquet and eqtl_counts.tsv from the mapping folders."""
    calls, qqs = [], []
    for pair in layout.pairs():
        for folder in sorted((pair.root / "eqtl" / "all").iterdir()):
            tissue = json.loads((folder / "run.json").read_text())["tissue"]
            for kind in ("cis", "trans"):
                df = pd.read_csv(folder / f"{kind}.tsv", sep="\t")
                df = df[df["fdr_by_type"] < 0.1]
                calls.append(df.assign(pair=pair.name, factor_set="all", tissue=tissue, **{"class": kind},
                                       topics="0"))
            qq = pd.read_csv(folder / "qq.tsv", sep="\t")
            qqs.append(qq.assign(pair=pair.name, factor_set="all", tissue=tissue))
    calls_df = pd.concat(calls, ignore_index=True)
    if not keep_calls:
        calls_df = calls_df.iloc[:0]
    write_table(calls_df, layout.summary / "eqtls.parquet")
    write_table(pd.concat(qqs, ignore_index=True), layout.summary / "qq.parquet")
    rows = []
    for (tissue, kind, gene_type), part in calls_df.groupby(["tissue", "class", "gene_type"]):
        rows.append(("all", tissue, kind, gene_type, 100, len(part), part["gene"].nunique(),
                     part["snp"].nunique()))
    counts = pd.DataFrame(rows or [("all", "all", "cis", "all", 100, 0, 0, 0)],
                          columns=["factor_set", "tissue", "class", "gene_type", "n_tests", "n_eqtls",
                                   "n_egenes", "n_evariants"])
    _write(counts, "eqtl_counts", layout.summary / "eqtl_counts.tsv")


def test_gathered_summary_tables_give_the_same_calls(tmp_path):
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(11))
    folders = load_run(layout.root)
    _gather_like_the_pipeline(layout, keep_calls=True)
    gathered = load_run(layout.root)
    assert gathered.extras["eqtl_source"].startswith("summary/eqtls.parquet")
    key = ["pair", "tissue", "kind", "snp", "gene"]
    sig = folders.tables["eqtls"]
    sig = sig[sig["significant"]].sort_values(key)[key].reset_index(drop=True)
    calls = gathered.tables["eqtls"].sort_values(key)[key].reset_index(drop=True)
    pd.testing.assert_frame_equal(sig, calls)
    assert gathered.extras["locus"] == folders.extras["locus"]
    assert len(gathered.tables["qq"]) == len(folders.tables["qq"])
    assert gathered.tables["qq"]["beyond"].sum() == folders.tables["qq"]["beyond"].sum()
    assert gathered.tables["counts"]["n_eqtls"].sum() == len(calls)


def test_no_called_eqtl_still_shows_the_count_table(tmp_path):
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(12))
    _gather_like_the_pipeline(layout, keep_calls=False)
    data = load_run(layout.root)
    assert "summary" in data.tables and "summary" not in data.absent
    assert "no eQTL at FDR < 0.1" in data.absent["top_eqtls"]
    assert "no eQTL at FDR < 0.1" in data.absent["counts"]
    assert "qq" in data.tables


def test_counted_calls_follow_the_fdr_scope(tmp_path):
    """The report's eQTL rows are the rows its counts count: fdr_all < level with fdr_scope "all"."""
    from tbeqtl.report.load_common import ReportData
    from tbeqtl.report.load_eqtl import _counted_calls

    calls = pd.DataFrame(
        {
            "snp": ["a", "b", "c", "d"],
            "called_run": [True, True, False, False],
            "fdr_all": [0.05, 0.3, 0.02, float("nan")],
        }
    )
    family = ReportData(run_dir=tmp_path, fdr=0.1, run_info={"config": {"mapping": {"fdr_scope": "family"}}})
    every = ReportData(run_dir=tmp_path, fdr=0.1, run_info={"config": {"mapping": {"fdr_scope": "all"}}})
    assert list(_counted_calls(family, calls)["snp"]) == ["a", "b"]
    assert list(_counted_calls(every, calls)["snp"]) == ["a", "c"]
    assert "called_run" not in _counted_calls(every, calls).columns
    assert list(_counted_calls(ReportData(run_dir=tmp_path), calls)["snp"]) == ["a", "b"]


def test_report_reads_no_input_data(full_report, tmp_path):
    """Without the input data set (simulation/) the report shows the same tables: it reads results only."""
    root = tmp_path / "run"
    shutil.copytree(full_report["root"], root, ignore=shutil.ignore_patterns("simulation", "report"))
    with_inputs, without = load_run(full_report["root"]), load_run(root)
    assert without.absent == with_inputs.absent == {}
    assert without.extras["locus"] == with_inputs.extras["locus"]
    assert sorted(without.tables) == sorted(with_inputs.tables)
    for key, table in with_inputs.tables.items():
        pd.testing.assert_frame_equal(without.tables[key], table, obj=key)
    for title, corr in with_inputs.extras["robust"].items():
        pd.testing.assert_frame_equal(without.extras["robust"][title], corr)
