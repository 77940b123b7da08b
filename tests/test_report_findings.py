"""The report opens with its findings and ends with the appendix (issue 15, item 6).

The findings' numbers are checked against counts made here with pandas straight from the run
folder's files (the mapping folders' cis.tsv / trans.tsv, the gathered summary/eqtls.parquet, the
pairs' tissue_association.tsv), not through the report's loader. The comparison list is named from
the provenance the writer records: the demo's GTEx comparison stage (simulated) and ``tbeqtl
compare-gtex`` (real GTEx files).
"""

from __future__ import annotations

import html as html_lib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report import _gather_like_the_pipeline, write_run_folder  # noqa: E402

from tbeqtl.atomic import write_json, write_table  # noqa: E402
from tbeqtl.cli import main  # noqa: E402
from tbeqtl.layout import RunLayout  # noqa: E402
from tbeqtl.report import build_report, load_run  # noqa: E402
from tbeqtl.report.appendix import APPENDIX_TITLE  # noqa: E402
from tbeqtl.report.findings import findings_section  # noqa: E402
from tbeqtl.report.html import render_html  # noqa: E402
from tbeqtl.report.load import SECTIONS  # noqa: E402
from tbeqtl.report.sections import build_sections  # noqa: E402

FDR = 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A synthetic run folder (mapping folders only, no gathered summary) and its report."""
    root = tmp_path_factory.mktemp("findings") / "run"
    layout = write_run_folder(root, np.random.default_rng(21))
    html_path, _ = build_report(root)
    return {"layout": layout, "html": html_path.read_text(encoding="utf-8"), "out": html_path.parent}


def _h2(html: str) -> list[str]:
    return [html_lib.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", html)]


def _section_html(html: str, key: str) -> str:
    start = html.index(f'<section id="{key}">')
    return html[start : html.index("</section>", start)]


def _folder_calls(layout: RunLayout) -> pd.DataFrame:
    """Every called row of the mapping folders, read directly (call column from each run.json)."""
    parts = []
    for pair_dir in sorted((layout.root / "pairs").iterdir()):
        for fs_dir in sorted((pair_dir / "eqtl").iterdir()):
            for folder in sorted(fs_dir.iterdir()):
                info = json.loads((folder / "run.json").read_text())
                for kind in ("cis", "trans"):
                    df = pd.read_csv(folder / f"{kind}.tsv", sep="\t", dtype={"snp": str, "gene": str})
                    df = df[df[info["call_column"]] < FDR]
                    parts.append(
                        df.assign(
                            pair=pair_dir.name, factor_set=fs_dir.name, tissue=info["tissue"], kind=kind
                        )
                    )
    return pd.concat(parts, ignore_index=True)


def _direct_counts(calls: pd.DataFrame) -> pd.DataFrame:
    """eQTLs (distinct tissue x SNP x gene) and unique eGenes per tissue and class, plus all tissues."""
    calls = calls.drop_duplicates(["tissue", "kind", "snp", "gene"])
    rows = {}
    for tissue, part in [*calls.groupby("tissue"), ("all tissues", calls)]:
        rows[tissue] = {
            f"{k} {w}": (len(sub) if w == "eQTLs" else sub["gene"].nunique())
            for k in ("cis", "trans")
            for w in ("eQTLs", "eGenes")
            for sub in [part[part["kind"] == k]]
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _table(section, key: str) -> pd.DataFrame:
    return next(t.df for t in section.tables if t.key == key)


def test_sections_in_order_findings_first_appendix_last(run):
    headings = _h2(run["html"])
    assert headings[0] == "Findings"
    assert headings[-1] == APPENDIX_TITLE
    # the analysis sections between, in their order; no provenance recorded: no GTEx in the title
    assert headings[1:-1] == list(SECTIONS.values())
    assert headings[-2] == "Comparison with an eQTL list"
    # the navigation lists the sections in the same order
    nav = re.search(r"<nav>(.*?)</nav>", run["html"], re.S).group(1)
    assert [html_lib.unescape(t) for t in re.findall(r'<a href="#[^"]+"[^>]*>(.*?)</a>', nav)] == headings
    info = json.loads((run["out"] / "report.json").read_text())
    assert info["sections"][0] == "findings" and info["sections"][-1] == "appendix"


def test_findings_counts_equal_a_direct_count_of_the_mapping_folders(run):
    direct = _direct_counts(_folder_calls(run["layout"]))
    shown = pd.read_csv(run["out"] / "tables" / "findings_counts.tsv", sep="\t").set_index("tissue")
    pd.testing.assert_frame_equal(
        shown.loc[direct.index, direct.columns], direct, check_dtype=False, check_names=False
    )
    assert direct.loc["all tissues", "cis eQTLs"] > 0 and direct.loc["all tissues", "trans eQTLs"] > 0
    total = direct.loc["all tissues"]
    text = html_lib.unescape(_section_html(run["html"], "findings"))
    assert (
        f"{total['cis eQTLs']:,} cis-eQTLs in {total['cis eGenes']:,} cis-eGenes and "
        f"{total['trans eQTLs']:,} trans-eQTLs in {total['trans eGenes']:,} trans-eGenes"
    ) in text
    # the FDR guarantee sentence is the per-family one, verbatim, under the counts
    assert (
        "Calls: Benjamini-Hochberg FDR < 0.1 per family, one family being one chromosome pair x "
        "factor set x tissue x cis/trans x gene-type group"
    ) in text


def test_findings_counts_follow_the_fdr_scope_of_the_gathered_calls(tmp_path):
    """summary/eqtls.parquet: per-run calls (called_run) by default, fdr_all < level with scope 'all'."""
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(22))
    _gather_like_the_pipeline(layout, keep_calls=True)
    path = layout.summary / "eqtls.parquet"
    calls = pd.read_parquet(path)
    rng = np.random.default_rng(5)
    extra = calls.assign(factor_set="exhaustive")  # never in the primary counts
    calls = pd.concat([calls, extra], ignore_index=True)
    calls["called_run"] = rng.random(len(calls)) < 0.7
    calls["fdr_all"] = rng.uniform(0, 0.25, size=len(calls))
    write_table(calls, path)
    info = json.loads(layout.run_json.read_text())
    for scope in ("family", "all"):
        info["config"]["mapping"]["fdr_scope"] = scope
        write_json(info, layout.run_json)
        raw = pd.read_parquet(path)
        counted = raw[raw["fdr_all"] < FDR] if scope == "all" else raw[raw["called_run"]]
        direct = _direct_counts(counted[counted["factor_set"] == "all"].rename(columns={"class": "kind"}))
        section = findings_section(load_run(layout.root))
        shown = _table(section, "findings_counts").set_index("tissue")
        pd.testing.assert_frame_equal(
            shown.loc[direct.index, direct.columns], direct, check_dtype=False, check_names=False, obj=scope
        )
        n_exhaustive = int(((counted["factor_set"] == "exhaustive") & (counted["class"] == "cis")).sum())
        assert f"factor set 'exhaustive' {n_exhaustive:,} cis" in " ".join(section.text)
        if scope == "all":
            assert any("Calls: fdr_all < 0.1" in t.caption for t in section.tables)


def test_tissue_factor_map_equals_a_direct_count(run):
    frames = [
        pd.read_csv(p / "factors" / "tissue_association.tsv", sep="\t").assign(pair=p.name)
        for p in sorted((run["layout"].root / "pairs").iterdir())
    ]
    tf = pd.concat(frames, ignore_index=True)
    tf["factor"] = tf["pair"] + ":" + tf["topic"].astype(str)
    shown = pd.read_csv(
        run["out"] / "tables" / "findings_tissue_factors.tsv", sep="\t", keep_default_na=False
    ).set_index("tissue")
    assoc = tf[tf["associated"]]
    for tissue, part in tf.groupby("tissue"):
        mine = assoc[assoc["tissue"] == tissue]
        row = shown.loc[tissue]
        assert int(row["runs"]) == part["pair"].nunique()
        assert int(row["runs with a factor"]) == mine["pair"].nunique()
        assert int(row["factors"]) == len(mine)
        if len(mine):
            assert row["strongest factor"] == mine.loc[mine["normalized_score"].idxmax(), "factor"]
    untied = set(tf["factor"]) - set(assoc["factor"])
    assert int(shown.loc["(no tissue)", "factors"]) == len(untied)


def test_strongest_loci_are_the_smallest_p_values(run):
    calls = _folder_calls(run["layout"])
    best = calls.sort_values("p_value").drop_duplicates(["snp", "gene"]).head(10)
    shown = pd.read_csv(
        run["out"] / "tables" / "findings_loci.tsv", sep="\t", dtype={"snp": str, "gene": str}
    )
    assert list(shown["snp"]) == list(best["snp"]) and list(shown["gene"]) == list(best["gene"])
    np.testing.assert_allclose(shown["p_value"], best["p_value"], rtol=1e-12)
    assert list(shown["tissue"]) == list(best["tissue"])
    n_tissues = calls.groupby(["snp", "gene"])["tissue"].nunique()
    assert list(shown["tissues called"]) == [
        n_tissues[(s, g)] for s, g in zip(best["snp"], best["gene"], strict=True)
    ]


def _html(root: Path) -> str:
    """The report HTML as build_report renders it (without printing the PDF)."""
    return html_lib.unescape(render_html(build_sections(load_run(root)), run_dir=root))


def _comparison_run(tmp_path: Path, seed: int) -> RunLayout:
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(seed))
    _gather_like_the_pipeline(layout, keep_calls=True)
    for name in ("comparison.tsv", "ks.tsv"):
        (layout.gtex / name).unlink()
    return layout


def test_demo_comparison_list_is_labelled_simulated(tmp_path):
    from tbeqtl.pipeline.demo import _gtex_stage

    layout = _comparison_run(tmp_path, 23)
    assert _gtex_stage(layout) is None
    source = json.loads((layout.gtex / "source.json").read_text())
    assert source["simulated"] is True and source["files"]
    html = _html(layout.root)
    findings, gtex = _section_html(html, "findings"), _section_html(html, "gtex")
    assert "Overlap with the simulated comparison list:" in findings
    assert "The simulated comparison list is not GTEx data" in findings
    assert "<h2>Comparison with the simulated comparison list</h2>" in gtex
    assert "GTEx list" not in html and "GTEx v8 list" not in html


def test_real_comparison_list_is_named_with_its_release_and_files(tmp_path):
    layout = _comparison_run(tmp_path, 24)
    calls = pd.read_parquet(layout.summary / "eqtls.parquet").rename(columns={"class": "kind"})
    calls_path = tmp_path / "calls.tsv"
    calls[["tissue", "kind", "snp", "gene", "p_value"]].to_csv(calls_path, sep="\t", index=False)
    lists = sorted((layout.simulation / "truth" / "gtex").glob("*.signif_variant_gene_pairs.txt.gz"))
    args = ["compare-gtex", "--calls", str(calls_path), "--out", str(layout.gtex)]
    for path in lists:
        args += ["--gtex-pairs", str(path)]
    assert main(args) == 0
    source = json.loads((layout.gtex / "source.json").read_text())
    assert source == {
        "simulated": False,
        "release": "v8",
        "files": [str(p.resolve()) for p in lists],
        "description": "GTEx eQTL lists given to tbeqtl compare-gtex",
    }
    html = _html(layout.root)
    findings, gtex = _section_html(html, "findings"), _section_html(html, "gtex")
    assert "Overlap with the GTEx v8 list:" in findings and lists[0].name in findings
    assert "<h2>Comparison with the GTEx v8 list</h2>" in gtex
    assert "simulated" not in findings.lower() and "simulated" not in gtex.lower()


def test_appendix_holds_parameters_versions_and_checksums(run, tmp_path):
    appendix = html_lib.unescape(_section_html(run["html"], "appendix"))
    for table in ("table-parameters", "table-checksums", "table-status"):
        assert f'id="{table}"' in appendix, table
    assert "config [mapping]" in appendix and "fdr=0.1" in appendix
    assert "torch=2.13.0" in appendix and "pyro=1.9.1" in appendix
    assert "counts.gct.gz" in appendix and "abc123" in appendix
    findings = _section_html(run["html"], "findings")
    assert "torch=2.13.0" not in findings and "abc123" not in findings
    # the prepared data folder's manifest adds its file checksums (full SHA-256)
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(25))
    digest = "f" * 64
    write_json(
        {
            "format": "tbeqtl-prepared",
            "files": {"counts/chr1.parquet": digest},
            "inputs": {"/data/GTEx_counts.gct.gz": "e" * 64},
        },
        layout.root / "data" / "manifest.json",
    )
    data = load_run(layout.root)
    from tbeqtl.report.appendix import checksum_table

    sums = checksum_table(data).set_index("file")["sha256"].to_dict()
    assert sums == {
        "counts.gct.gz": "abc123",
        "counts/chr1.parquet": digest,
        "/data/GTEx_counts.gct.gz": "e" * 64,
    }


def test_gathered_tissue_factors_and_a_malformed_provenance(tmp_path):
    """summary/tissue_factors.parquet gives the same map as the pairs' tables; a source.json without
    'simulated' is a note of the findings, and the list is then not called GTEx nor simulated."""
    layout = write_run_folder(tmp_path / "run", np.random.default_rng(26))
    before = _table(findings_section(load_run(layout.root)), "findings_tissue_factors")
    frames = [
        pd.read_csv(p.factors / "tissue_association.tsv", sep="\t").assign(pair=p.name)
        for p in layout.pairs()
    ]
    write_table(pd.concat(frames, ignore_index=True), layout.summary / "tissue_factors.parquet")
    write_json({"release": "v8"}, layout.gtex / "source.json")
    data = load_run(layout.root)
    assert data.extras["tissue_factors_source"] == "summary/tissue_factors.parquet"
    section = findings_section(data)
    pd.testing.assert_frame_equal(_table(section, "findings_tissue_factors"), before)
    assert any("gtex/source.json" in n and "'simulated'" in n for n in section.notes)
    overlap = next(t for t in section.text if t.startswith("Overlap"))
    assert overlap.startswith("Overlap with the comparison list:") and "not recorded" in overlap
