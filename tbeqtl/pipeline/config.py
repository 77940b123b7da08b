"""Every choice of a pipeline run, in one frozen dataclass that round-trips through TOML.

A :class:`PipelineConfig` has one section per stage (``[data]``, ``[prepare]``, ``[holdout]``, ``[fit]``,
``[factors]``, ``[robust]``, ``[covariates]``, ``[mapping]``, ``[run]``). It is read with the
standard library's :mod:`tomllib` (:meth:`PipelineConfig.from_toml`) and written back by a small
writer (:meth:`PipelineConfig.to_toml`) into the run folder, together with a ``[provenance]``
table (package versions and input checksums) that is ignored when the file is read again.

Example
-------
.. code-block:: toml

    [data]
    path = "sim/"
    pairs = ["chr1:chr1", "chr1:chr2"]

    [fit]
    n_topics = 10
    max_steps = 2000

    [mapping]
    fdr = 0.1
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..errors import InputError
from ..tblda.choices import LEARNING_RATE, MAX_STEPS

__all__ = [
    "CovariateConfig",
    "DataConfig",
    "FactorConfig",
    "FitConfig",
    "HoldoutConfig",
    "MappingConfig",
    "PipelineConfig",
    "RobustConfig",
    "RunConfig",
    "parse_pair",
    "toml_dumps",
]


@dataclass(frozen=True)
class DataConfig:
    """Inputs and which (gene chromosome, SNP chromosome) pairs to run.

    Parameters
    ----------
    path
        A prepared data folder (``tbeqtl prepare``, :mod:`tbeqtl.pipeline.prepared`; read in
        place) or a data set folder in the :func:`tbeqtl.io.read_dataset` layout (the
        simulator's; partitioned once into ``RUN/data/``). Empty: the raw inputs below.
    counts, sample_attributes, subject_attributes, genotypes, genes, cell_types, covariates
        Raw inputs (used when ``path`` is empty): a counts GCT/TSV/parquet/h5ad, the sample and
        individual attribute tables (GTEx SampleAttributesDS / SubjectPhenotypesDS or any TSV),
        genotypes (PLINK 1/2 or VCF/BCF), a gene annotation (GTF/BED), and optional cell-type
        scores and covariates. The run calls :func:`tbeqtl.prepare.prepare` on them with the
        ``[prepare]`` options and writes the prepared folder into ``RUN/data/`` (reused when
        rerun with the same inputs and options).
    ancestry_beta, ancestry_tau
        Optional precomputed ancestry (the paper's terastructure output): TSV files of SNPs x Q
        allele frequencies (beta) and individuals x Q admixture (tau), first column the IDs.
        Relative paths are relative to ``path``. Empty: the fit's own treatment of ancestry.
    pairs
        Chromosome pairs ``"<gene_chrom>:<snp_chrom>"`` to run.
    all_pairs
        Run every pair of chromosomes present in the gene and SNP annotations (``pairs`` ignored).
    tissue_column
        Sample attribute holding the tissue.
    ancestry_column
        Individual attribute holding the reported ancestry group.
    cell_type_columns
        Sample attributes holding per-sample cell-type enrichment scores; empty: every column
        whose name starts with ``celltype_`` or ``cell_type_``.
    covariate_columns
        Sample or individual attributes tested for factor association (batch checks); empty:
        those among ``sex``, ``pcr``, ``platform``, ``batch`` (case-insensitive) that exist.
    """

    path: str = ""
    counts: str = ""
    sample_attributes: str = ""
    subject_attributes: str = ""
    genotypes: str = ""
    genes: str = ""
    cell_types: str = ""
    covariates: str = ""
    ancestry_beta: str = ""
    ancestry_tau: str = ""
    pairs: tuple[str, ...] = ()
    all_pairs: bool = False
    tissue_column: str = "tissue"
    ancestry_column: str = "ancestry"
    cell_type_columns: tuple[str, ...] = ()
    covariate_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class HoldoutConfig:
    """Held-out design (paper: 2 samples from each individual with at least 4).

    Parameters
    ----------
    min_samples
        Individuals with at least this many samples contribute held-out samples
        (``unit = "samples"``).
    n_holdout
        Samples held out per such individual (``unit = "samples"``).
    seed
        Seed of the random choice.
    unit
        ``"samples"`` (the paper's design) or ``"individuals"``: all samples of a ``fraction`` of
        the individuals are held out, and the fit sees neither their expression nor their
        genotypes (:func:`tbeqtl.pipeline.holdout.holdout_design`). The ancestry subspace
        estimated when no ``data.ancestry_*`` files are given and the genotype PCs of the tests
        still use every individual's genotypes (as the paper's terastructure and PCs did).
    fraction
        Fraction of the individuals held out when ``unit = "individuals"``.
    """

    min_samples: int = 4
    n_holdout: int = 2
    seed: int = 0
    unit: str = "samples"
    fraction: float = 0.25


@dataclass(frozen=True)
class FitConfig:
    """TBLDA fit of each pair.

    Parameters
    ----------
    n_topics
        Number of topics K.
    max_steps
        Maximum number of SVI steps (published 65,100; the fit stops earlier when the ELBO
        converges; small values for tests and demos).
    learning_rate
        Adam learning rate (paper 0.05).
    seed
        Seed of the fit.
    top_fraction
        Fraction of genes and SNPs per topic taken as top-ranked (paper 0.1).
    n_ancestry
        Ancestral populations Q of the ancestry subspace estimated from all SNPs when no
        ``data.ancestry_beta``/``ancestry_tau`` files are given (paper: terastructure, Q = 5).
    options
        Further keyword arguments of :class:`tbeqtl.tblda.TBLDA` (e.g. ``tol``), passed as is.
    """

    n_topics: int = 10
    max_steps: int = MAX_STEPS
    learning_rate: float = LEARNING_RATE
    seed: int = 0
    top_fraction: float = 0.1
    n_ancestry: int = 3
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FactorConfig:
    """Factor interpretation thresholds.

    Parameters
    ----------
    tissue_score
        ``"inner_product"`` (paper: sum of E[phi_lk] over the tissue's samples) or
        ``"normalized"`` (mean E[phi_lk] within the tissue divided by its mean over the samples
        of the other tissues; 1 = no enrichment; does not grow with tissue size).
    tissue_threshold
        A factor is tissue-associated when its inner product exceeds this (paper 40).
    normalized_threshold
        Threshold of the normalised score when ``tissue_score = "normalized"``.
    cell_type_tau
        |Kendall tau| above which a factor captures a cell-type score (paper 0.5).
    covariate_fdr, covariate_min_effect
        A factor is flagged as covariate-associated when the BH FDR of its test is below
        ``covariate_fdr`` and the effect size (epsilon^2 of Kruskal-Wallis, or Spearman rho^2)
        is at least ``covariate_min_effect``.
    drop_covariate_factors
        Leave covariate-associated factors out of the eQTL mapping (the paper's advice for batch).
    """

    tissue_score: str = "inner_product"
    tissue_threshold: float = 40.0
    normalized_threshold: float = 2.0
    cell_type_tau: float = 0.5
    covariate_fdr: float = 0.05
    covariate_min_effect: float = 0.1
    drop_covariate_factors: bool = False


@dataclass(frozen=True)
class RobustConfig:
    """Robust components across runs sharing a chromosome (paper's Extended Methods).

    Parameters
    ----------
    snp_tau, snp_min_partners
        A factor is flagged when at least ``snp_min_partners`` factors of other runs have a
        Kendall tau above ``snp_tau`` with its MAF-residualised SNP loadings (paper: > 2 at 0.15).
    gene_r2, gene_min_partners
        The same with the Pearson r^2 of expected gene loadings E[psi] (paper: 3 at 0.95).
    merge_r2
        Representatives whose loadings have r^2 above this are merged (paper 0.95).
    snp_percentile
        Robust tissue SNP sets keep SNPs top-ranked in at least this percentile of the tissue's
        associated-factor counts (paper 75).
    """

    snp_tau: float = 0.15
    snp_min_partners: int = 3
    gene_r2: float = 0.95
    gene_min_partners: int = 3
    merge_r2: float = 0.95
    snp_percentile: float = 75.0


@dataclass(frozen=True)
class CovariateConfig:
    """Covariates of the eQTL tests.

    Parameters
    ----------
    known
        Sample or individual attributes used as covariates (paper: sex, PCR, platform); missing
        ones are skipped with a log message; categorical ones become 0/1 dummies.
    genotype_pcs
        Number of genotype principal components (paper 5).
    hidden
        Hidden expression factors: ``"pca"`` (default), ``"factor_analysis"`` (a documented
        PEER-like ARD factor model, see :mod:`tbeqtl.pipeline.covariates`) or ``"none"``.
    n_hidden
        Number of hidden factors requested (paper 60 PEER factors).
    hidden_max_fraction
        The count is capped at this fraction of a tissue's held-out samples.
    """

    known: tuple[str, ...] = ("sex", "pcr", "platform")
    genotype_pcs: int = 5
    hidden: str = "pca"
    n_hidden: int = 60
    hidden_max_fraction: float = 0.25


@dataclass(frozen=True)
class MappingConfig:
    """Factor-restricted eQTL mapping.

    Parameters
    ----------
    fdr
        BH FDR level at which an eQTL is called (paper 0.1), per run and family; the tests with p
        at or below it are kept as candidates for the genome-wide FDR (``fdr_genome``) computed
        when the runs are gathered.
    cis_dist
        cis window in bp (MatrixEQTL default 1e6).
    output_pvalue
        Tests with a p-value at or below this are written to ``cis.tsv`` / ``trans.tsv`` (the FDR
        still counts every test; every test with p at or below ``fdr`` is kept as a candidate
        whatever this is). Default 0.1, the default ``fdr``: 1.0 writes every test, which at GTEx
        scale is tens of millions of rows per tissue and chromosome pair.
    factor_sets
        Which of ``"all"``, ``"tissue"``, ``"general"`` to map.
    exhaustive
        Also test every SNP x gene pair of the pair on the same held-out samples.
    tissues
        Tissues to map (empty: all with enough held-out samples).
    min_samples
        Tissues with fewer held-out samples are skipped (reported). Every other tissue with
        fewer held-out samples than its covariates + 3 is an input error naming the tissue,
        raised before any pair is fitted.
    n_permutations
        Permutations of expression and covariates for the QQ plot.
    fdr_scope
        Which tests one BH covers, and so what the FDR guarantee is about (expected false
        discovery proportion at most ``fdr`` for the list BH is applied to). ``"family"`` (the
        paper): BH per run family, factor set x tissue x cis/trans x gene-type group of one
        chromosome pair (the calls), plus ``fdr_genome``, BH per such family pooled over the
        chromosome pairs. ``"all"``: also ``fdr_all``, one BH over every test of a factor set
        (all tissues, classes, gene types and pairs), and the summary counts are the tests with
        ``fdr_all`` below ``fdr``: one list with one guarantee. It only changes the gather, so a
        finished run folder can be gathered again with the other scope.
    """

    fdr: float = 0.1
    cis_dist: float = 1e6
    output_pvalue: float = 0.1
    factor_sets: tuple[str, ...] = ("all", "tissue", "general")
    exhaustive: bool = True
    tissues: tuple[str, ...] = ()
    min_samples: int = 0
    n_permutations: int = 1
    fdr_scope: str = "family"


@dataclass(frozen=True)
class RunConfig:
    """Execution.

    Parameters
    ----------
    workers
        Dask worker processes of the local cluster; 0 runs the pairs in this process.
    scheduler
        Address of an existing Dask scheduler (empty: start a local cluster).
    connect_timeout
        Seconds to wait for an existing scheduler.
    threads_per_worker
        Torch/BLAS threads per worker.
    allowed_failures
        Dask's ``distributed.scheduler.allowed-failures`` for the run's scheduler (set on the
        local cluster and on an existing scheduler): how many times a pair may be rescheduled
        after the worker running it died. Dask's default 3 lets a pair that runs out of memory
        kill up to four workers in turn; at 0 its first death records it as failed ("worker
        lost"), the others go on and a rerun retries it.
    """

    workers: int = 2
    scheduler: str = ""
    connect_timeout: float = 10.0
    threads_per_worker: int = 1
    allowed_failures: int = 0


_SECTIONS = {
    "data": DataConfig,
    "holdout": HoldoutConfig,
    "fit": FitConfig,
    "factors": FactorConfig,
    "robust": RobustConfig,
    "covariates": CovariateConfig,
    "mapping": MappingConfig,
    "run": RunConfig,
}


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline run's configuration.

    Parameters
    ----------
    data, holdout, fit, factors, robust, covariates, mapping, run
        The sections; see their classes.
    prepare
        Options of :class:`tbeqtl.prepare.PrepareOptions` (feature selection of raw inputs,
        ``data.counts`` etc.), checked against its fields; only ``ancestry_snps`` is also used
        when the run partitions a data set folder or an in-memory data set itself.
    """

    data: DataConfig = field(default_factory=DataConfig)
    prepare: dict[str, Any] = field(default_factory=dict)
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    factors: FactorConfig = field(default_factory=FactorConfig)
    robust: RobustConfig = field(default_factory=RobustConfig)
    covariates: CovariateConfig = field(default_factory=CovariateConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    run: RunConfig = field(default_factory=RunConfig)

    # ---------------------------------------------------------------- build
    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str | None = None) -> PipelineConfig:
        """Build a config from nested dicts (TOML tables); unknown keys are an error.

        Parameters
        ----------
        values
            ``{section: {option: value}}``; a ``provenance`` table is ignored.
        source
            File name for error messages.

        Returns
        -------
        PipelineConfig
            The config.
        """
        unknown = [k for k in values if k not in _SECTIONS and k not in ("provenance", "prepare")]
        if unknown:
            raise InputError(
                f"unknown config sections (known: {', '.join(_SECTIONS)})", path=source, ids=unknown
            )
        sections: dict[str, Any] = {"prepare": _prepare_section(values.get("prepare", {}), source)}
        for name, klass in _SECTIONS.items():
            given = values.get(name, {})
            if not isinstance(given, dict):
                raise InputError(f"config section [{name}] must be a table", path=source)
            sections[name] = _build_section(klass, given, name, source)
        return cls(**sections)

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read a config from a TOML file.

        Parameters
        ----------
        path
            The file.

        Returns
        -------
        PipelineConfig
            The config.
        """
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                values = tomllib.load(handle)
        except FileNotFoundError:
            raise InputError("config file not found", path=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"invalid TOML: {exc}", path=str(path)) from None
        return cls.from_dict(values, source=str(path))

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the config as nested dicts (tuples become lists).

        Returns
        -------
        dict
            ``{section: {option: value}}``.
        """
        out = {}
        for name in _SECTIONS:
            section = getattr(self, name)
            out[name] = {f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)}
            if name == "data":
                out["prepare"] = _plain(dict(self.prepare))
        return out

    def to_toml(self, *, provenance: dict[str, Any] | None = None) -> str:
        """Render the config as TOML text.

        Parameters
        ----------
        provenance
            Optional ``[provenance]`` table (versions, checksums) appended at the end.

        Returns
        -------
        str
            TOML text that :meth:`from_toml` reads back to an equal config.
        """
        values: dict[str, Any] = dict(self.to_dict())
        if provenance:
            values["provenance"] = provenance
        return toml_dumps(values)

    def write(self, path: str | Path, *, provenance: dict[str, Any] | None = None) -> None:
        """Write the config (and provenance) atomically as TOML.

        Parameters
        ----------
        path
            Destination file.
        provenance
            Optional versions and checksums, see :meth:`to_toml`.
        """
        with atomic_write(path) as handle:
            handle.write(self.to_toml(provenance=provenance))

    def replace(self, **sections: dict[str, Any]) -> PipelineConfig:
        """Return a copy with some options of some sections changed.

        Parameters
        ----------
        **sections
            ``section={option: value}``, e.g. ``fit={"max_steps": 100}``.

        Returns
        -------
        PipelineConfig
            The new config (validated like :meth:`from_dict`).
        """
        values = self.to_dict()
        for name, changes in sections.items():
            if name not in _SECTIONS and name != "prepare":
                raise InputError("unknown config section", ids=[name])
            values[name] = {**values[name], **changes}
        return PipelineConfig.from_dict(values)

    @classmethod
    def preset(cls, name: str, **sections: dict[str, Any]) -> PipelineConfig:
        """Return a named starting configuration, optionally changed like :meth:`replace`.

        Parameters
        ----------
        name
            ``"paper"`` (the defaults: the paper's choices), ``"demo"`` (the simulator's
            ``demo`` preset in a few minutes on 2 cores: the simulation's ``truth/`` ancestry
            files as the precomputed ancestry subspace, 400 SVI steps, the size-normalised tissue
            score, 3 hidden factors, 2 partners for robust components since a 3 x 3 grid has 3 runs
            per chromosome and SNP partners at Kendall tau > 0.4 (on simulated data, MAF residuals
            of unrelated factors have tau ~0.1-0.17 and matched factors ~0.75, so 0.15 chains
            every factor into one component), tissues with < 12 held-out samples skipped, all
            pairs, 2 workers) or
            ``"test"`` (like demo with 6 topics, 60 steps, fewer covariates and no worker
            processes).
        **sections
            Changes, ``section={option: value}``.

        Returns
        -------
        PipelineConfig
            The config.
        """
        if name not in _PRESETS:
            raise InputError(f"unknown pipeline preset (known: {', '.join(_PRESETS)})", ids=[name])
        base = cls().replace(**_PRESETS[name])
        return base.replace(**sections) if sections else base

    @property
    def pair_list(self) -> list[tuple[str, str]]:
        """The configured pairs as (gene chromosome, SNP chromosome) tuples."""
        return [parse_pair(p) for p in self.data.pairs]


_DEMO: dict[str, dict[str, Any]] = {
    "data": {
        "all_pairs": True,
        "ancestry_beta": "truth/ancestry_beta.tsv",
        "ancestry_tau": "truth/ancestry_tau.tsv",
    },
    "fit": {"n_topics": 12, "max_steps": 400, "options": {"init_jitter": 0.1}},
    "factors": {"tissue_score": "normalized", "normalized_threshold": 2.0},
    "robust": {"snp_min_partners": 2, "gene_min_partners": 2, "gene_r2": 0.9, "snp_tau": 0.4},
    "covariates": {"n_hidden": 3},
    "mapping": {"output_pvalue": 0.05, "min_samples": 12},
    "run": {"workers": 2},
}
_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {},
    "demo": _DEMO,
    "test": {
        **_DEMO,
        "fit": {"n_topics": 6, "max_steps": 60, "options": {"init_jitter": 0.1}},
        "covariates": {"n_hidden": 2, "genotype_pcs": 3},
        "run": {"workers": 0},
    },
}


def parse_pair(text: str) -> tuple[str, str]:
    """Parse ``"chr1:chr2"`` (or ``"1:2"``) into harmonised chromosome names.

    Parameters
    ----------
    text
        ``<gene_chrom>:<snp_chrom>``.

    Returns
    -------
    tuple of str
        ``(gene_chrom, snp_chrom)`` in ``chr`` style.
    """
    from ..data import harmonize_chrom

    parts = str(text).split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise InputError("a chromosome pair must look like GENE_CHROM:SNP_CHROM (e.g. chr1:chr2)", ids=[text])
    gene, snp = harmonize_chrom([p.strip() for p in parts])
    return str(gene), str(snp)


# --------------------------------------------------------------------------- helpers
def _prepare_section(given: Any, source: str | None) -> dict[str, Any]:
    """Check the ``[prepare]`` table against the fields of ``PrepareOptions`` (when importable)."""
    if not isinstance(given, dict):
        raise InputError("config section [prepare] must be a table", path=source)
    try:
        from ..prepare.options import PrepareOptions
    except ImportError:  # tbeqtl.prepare not installed in this build: checked when used
        return dict(given)
    fields = {f.name: f for f in dataclasses.fields(PrepareOptions)}
    unknown = [k for k in given if k not in fields]
    if unknown:
        raise InputError(
            f"unknown options in config section [prepare] (known: {', '.join(fields)})",
            path=source,
            ids=unknown,
        )
    defaults = PrepareOptions()
    out = {}
    for key, value in given.items():
        default = getattr(defaults, key)
        out[key] = value if default is None else _coerce(value, default, f"prepare.{key}", source)
    return out


_CHOICES = {
    ("holdout", "unit"): ("samples", "individuals"),
    ("factors", "tissue_score"): ("inner_product", "normalized"),
    ("covariates", "hidden"): ("pca", "factor_analysis", "none"),
    ("mapping", "fdr_scope"): ("family", "all"),
}


def _build_section(klass: type, given: dict[str, Any], name: str, source: str | None) -> Any:
    fields = {f.name: f for f in dataclasses.fields(klass)}
    unknown = [k for k in given if k not in fields]
    if unknown:
        raise InputError(
            f"unknown options in config section [{name}] (known: {', '.join(fields)})",
            path=source,
            ids=unknown,
        )
    kwargs = {}
    defaults = klass()
    for key, value in given.items():
        default = getattr(defaults, key)
        kwargs[key] = _coerce(value, default, f"{name}.{key}", source)
        choices = _CHOICES.get((name, key))
        if choices and kwargs[key] not in choices:
            raise InputError(
                f"config option {name}.{key} must be one of {', '.join(choices)}",
                path=source,
                ids=[kwargs[key]],
            )
    if name == "holdout" and not 0.0 < kwargs.get("fraction", 0.25) < 1.0:
        raise InputError(
            "config option holdout.fraction must be in (0, 1)", path=source, ids=[repr(kwargs["fraction"])]
        )
    if name == "mapping":
        bad = [s for s in kwargs.get("factor_sets", ()) if s not in ("all", "tissue", "general")]
        if bad:
            raise InputError("mapping.factor_sets must be among all, tissue, general", path=source, ids=bad)
    return klass(**kwargs)


def _coerce(value: Any, default: Any, key: str, source: str | None) -> Any:
    def fail() -> None:
        raise InputError(
            f"config option {key} must be of type {type(default).__name__}", path=source, ids=[repr(value)]
        )

    if isinstance(default, bool):
        if not isinstance(value, bool):
            fail()
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            fail()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail()
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            fail()
        return value
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            fail()
        return tuple(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            fail()
        return dict(value)
    return value  # pragma: no cover - every field has one of the types above


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        raise TypeError("TOML has no null value")
    if hasattr(value, "item"):
        return _toml_value(value.item())
    return _toml_value(str(value))


def _toml_key(key: str) -> str:
    key = str(key)
    if key and all(ch.isalnum() or ch in "-_" for ch in key):
        return key
    return _toml_value(key)


def toml_dumps(values: dict[str, Any]) -> str:
    """Render nested dicts as TOML (tables of scalars, lists and nested tables).

    Parameters
    ----------
    values
        ``{table: {key: value}}``; a dict value inside a table becomes a sub-table
        ``[table.key]``. ``None`` values are left out.

    Returns
    -------
    str
        The TOML text.
    """
    lines: list[str] = []

    def emit(prefix: str, table: dict[str, Any]) -> None:
        lines.append(f"[{prefix}]")
        subtables = []
        for key, value in table.items():
            if value is None:
                continue
            if isinstance(value, dict):
                subtables.append((key, value))
                continue
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        lines.append("")
        for key, value in subtables:
            emit(f"{prefix}.{_toml_key(key)}", value)

    for name, table in values.items():
        emit(_toml_key(name), table)
    return "\n".join(lines)
