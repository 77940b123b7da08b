"""Where every stage writes inside a run folder.

The pipeline writes, the report and enrichment layers read; both go through
:class:`RunLayout` so that the paths are defined once::

    RUN_DIR/
      run.json, config.toml, tbeqtl.log
      simulation/                       (demo only: the simulated inputs and truth/)
      data/                             the prepared folder (tbeqtl.pipeline.prepared) when the run
                                        partitioned its inputs itself; ancestry/ when it estimated them
      context.pkl                       the pairs' shared context (small tables), read by Dask workers
      pairs/<gene_chrom>__<snp_chrom>/  one (gene chromosome, SNP chromosome) run
        status.json                     stage -> "done" / "failed: <error>"
        holdout.tsv                     sample, individual, held_out
        fit/                            `tbeqtl fit` outputs: run.json, gene_topics.tsv,
                                        sample_topics.tsv, snp_topics.tsv, elbo.tsv, model/
        ranking/feature_ranking.tsv
        factors/                        tissue_association.tsv, ancestry.tsv, cell_types.tsv,
                                        covariate_factors.tsv
        eqtl/<factor_set>/<tissue>/     cis.tsv, trans.tsv, qq.tsv, hist.tsv, run.json
      summary/                          genome-wide tables (parquet) gathered from every pair, and
                                        what the report draws from the inputs: sample_tissues.tsv,
                                        maf_residuals/<pair>.parquet, locus.json, locus_expression.parquet,
                                        locus_genotype.tsv
      robust/                           robust components across runs
      enrichment/                       go.tsv, snp_annot.tsv, bins.tsv, tf_recovery.tsv
      gtex/                             comparison.tsv, ks.json, source.json (the list's provenance:
                                        simulated or a GTEx release, read by the report)
      report/                           report.html, report.pdf, figures/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["PairLayout", "RunLayout"]

FACTOR_SETS = ("all", "tissue", "general")


@dataclass(frozen=True)
class PairLayout:
    """Paths of one (gene chromosome, SNP chromosome) run.

    Parameters
    ----------
    root
        The pair's folder, ``RUN_DIR/pairs/<gene_chrom>__<snp_chrom>``.
    """

    root: Path

    @property
    def name(self) -> str:
        """``<gene_chrom>__<snp_chrom>``."""
        return self.root.name

    @property
    def status(self) -> Path:
        """JSON map of stage -> status."""
        return self.root / "status.json"

    @property
    def holdout(self) -> Path:
        """Held-out design table."""
        return self.root / "holdout.tsv"

    @property
    def fit(self) -> Path:
        """Folder of the TBLDA fit (same layout as ``tbeqtl fit --out``)."""
        return self.root / "fit"

    @property
    def ranking(self) -> Path:
        """Feature ranking table."""
        return self.root / "ranking" / "feature_ranking.tsv"

    @property
    def factors(self) -> Path:
        """Folder of factor-interpretation tables."""
        return self.root / "factors"

    def eqtl(self, factor_set: str, tissue: str) -> Path:
        """Folder of the factor-restricted mapping of one factor set in one tissue.

        Parameters
        ----------
        factor_set
            ``"all"``, ``"tissue"`` or ``"general"``.
        tissue
            Tissue name (used as a folder name with ``/`` and spaces replaced).

        Returns
        -------
        pathlib.Path
            The folder.
        """
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in tissue)
        return self.root / "eqtl" / factor_set / safe


@dataclass(frozen=True)
class RunLayout:
    """Paths of a pipeline run folder.

    Parameters
    ----------
    root
        The run folder.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_json(self) -> Path:
        """Run metadata: config, versions, input checksums, per-pair status."""
        return self.root / "run.json"

    @property
    def config(self) -> Path:
        """The TOML config the run used, written back."""
        return self.root / "config.toml"

    @property
    def simulation(self) -> Path:
        """Simulated inputs (demo runs)."""
        return self.root / "simulation"

    @property
    def summary(self) -> Path:
        """Genome-wide tables gathered from every pair."""
        return self.root / "summary"

    @property
    def sample_tissues(self) -> Path:
        """Sample -> tissue of every sample (``summary/sample_tissues.tsv``, schema ``sample_tissues``)."""
        return self.summary / "sample_tissues.tsv"

    def maf_residuals(self, pair_name: str) -> Path:
        """SNP loadings E[lambda] of one pair after regressing out the coded MAF.

        Parameters
        ----------
        pair_name
            ``<gene_chrom>__<snp_chrom>``.

        Returns
        -------
        pathlib.Path
            ``summary/maf_residuals/<pair_name>.parquet`` (SNPs x topics ``"0" .. "K-1"``).
        """
        return self.summary / "maf_residuals" / f"{pair_name}.parquet"

    @property
    def locus(self) -> Path:
        """The Fig 5 locus (``summary/locus.json``: pair, factor_set, tissue, snp, genes; or null)."""
        return self.summary / "locus.json"

    @property
    def locus_expression(self) -> Path:
        """Inverse-normal held-out expression of the locus' trans-eGenes (genes x samples)."""
        return self.summary / "locus_expression.parquet"

    @property
    def locus_genotype(self) -> Path:
        """Dosages of the locus SNP in the same samples (schema ``locus_genotype``)."""
        return self.summary / "locus_genotype.tsv"

    @property
    def robust(self) -> Path:
        """Robust components across runs."""
        return self.root / "robust"

    @property
    def enrichment(self) -> Path:
        """Enrichment tables."""
        return self.root / "enrichment"

    @property
    def gtex(self) -> Path:
        """GTEx comparison tables."""
        return self.root / "gtex"

    @property
    def report(self) -> Path:
        """Report outputs."""
        return self.root / "report"

    def pair(self, gene_chrom: str, snp_chrom: str) -> PairLayout:
        """Layout of one chromosome-pair run.

        Parameters
        ----------
        gene_chrom, snp_chrom
            Chromosome names (harmonised, e.g. ``chr1``).

        Returns
        -------
        PairLayout
            Its paths.
        """
        return PairLayout(self.root / "pairs" / f"{gene_chrom}__{snp_chrom}")

    def pairs(self) -> list[PairLayout]:
        """Every pair folder present, sorted by name.

        Returns
        -------
        list of PairLayout
            The pairs found on disk.
        """
        base = self.root / "pairs"
        if not base.is_dir():
            return []
        return [PairLayout(p) for p in sorted(base.iterdir()) if p.is_dir()]
