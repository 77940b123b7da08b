"""Options of ``tbeqtl prepare``: the paper's feature selection, as one frozen dataclass.

Defaults follow the paper's Extended Methods ("Feature selection", "Ancestry structure"):
autosomal protein-coding and lincRNA genes (GENCODE >= 31 calls lincRNA ``lncRNA``: both are
accepted) with a median read count of at least five in at least one tissue; SNPs with imputed
genotypes removed, then LD-pruned with plink 1.9 so that no two SNPs within 200 kb have
``r^2 > 0.2``. The paper states no MAF or missingness cut (the GTEx v8 WGS release it used was
already filtered at MAF >= 1 %): ``maf=0.01`` and ``max_missing=0.05`` are GTEx's release filters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["PrepareOptions"]


@dataclass(frozen=True)
class PrepareOptions:
    """What ``tbeqtl prepare`` selects and computes.

    Attributes
    ----------
    gene_types : tuple of str
        Gene types kept (annotation ``gene_type``); empty keeps every type.
    autosomes_only : bool
        Keep genes and SNPs on chr1..chr22 only.
    min_median_count : float
        Keep genes whose median raw count (the paper's ``x``) over the samples of a tissue is at
        least this in at least one tissue.
    maf : float
        Keep SNPs whose minor allele frequency over the kept individuals is at least this.
    max_missing : float
        Keep SNPs whose fraction of missing calls over the kept individuals is at most this.
    drop_imputed : bool
        Remove SNPs the genotype input flags as imputed (VCF/pvar INFO ``IMP`` or ``IMPUTED``).
    ld_r2 : float
        plink 1.9 ``--indep-pairwise`` threshold on ``r^2``.
    ld_window_kb : int
        plink 1.9 ``--indep-pairwise`` window in kb.
    genotype_pcs : int
        Genotype principal components written to ``genotype_pcs.tsv``.
    n_ancestry : int
        Ancestral populations Q of the ancestry EM (``beta``, ``tau``).
    ancestry_snps : int
        SNPs in the ancestry EM's random subset (terastructure's ``-rfreq``; paper 40,222).
    seed : int
        Seed of the ancestry EM.
    tissue_column : str
        Tissue column of the sample attributes (GTEx ``SMTSD``); written as ``tissue``.
    individual_column : str or None
        Individual column of the sample attributes; ``None`` uses a column ``individual`` when
        there is one, else the GTEx donor rule on the sample IDs (``GTEX-1117F-0226-...`` ->
        ``GTEX-1117F``). For ``.h5ad`` counts it names the ``.obs`` donor column (default
        ``individual``).
    dosage_field : str
        ``"GT"`` (hard calls) or ``"DS"`` (dosages) of VCF/BCF and PLINK 2 inputs.
    """

    gene_types: tuple[str, ...] = ("protein_coding", "lincRNA", "lncRNA")
    autosomes_only: bool = True
    min_median_count: float = 5.0
    maf: float = 0.01
    max_missing: float = 0.05
    drop_imputed: bool = True
    ld_r2: float = 0.2
    ld_window_kb: int = 200
    genotype_pcs: int = 5
    n_ancestry: int = 3
    ancestry_snps: int = 40_000
    seed: int = 0
    tissue_column: str = "SMTSD"
    individual_column: str | None = None
    dosage_field: str = "GT"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gene_types", tuple(str(t) for t in self.gene_types))
        checks = (
            (0.0 <= self.maf <= 0.5, f"maf must be in [0, 0.5], got {self.maf}"),
            (0.0 <= self.max_missing <= 1.0, f"max_missing must be in [0, 1], got {self.max_missing}"),
            (0.0 < self.ld_r2 <= 1.0, f"ld_r2 must be in (0, 1], got {self.ld_r2}"),
            (self.ld_window_kb >= 1, f"ld_window_kb must be >= 1, got {self.ld_window_kb}"),
            (self.min_median_count >= 0, f"min_median_count must be >= 0, got {self.min_median_count}"),
            (self.genotype_pcs >= 0, f"genotype_pcs must be >= 0, got {self.genotype_pcs}"),
            (self.n_ancestry >= 1, f"n_ancestry must be >= 1, got {self.n_ancestry}"),
            (self.ancestry_snps >= 1, f"ancestry_snps must be >= 1, got {self.ancestry_snps}"),
            (self.dosage_field in {"GT", "DS"}, f"dosage_field must be GT or DS, got {self.dosage_field!r}"),
        )
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    def params(self) -> dict:
        """Return the options as a JSON-ready dict (what the manifest records and reruns compare)."""
        out = dataclasses.asdict(self)
        out["gene_types"] = list(self.gene_types)
        return out
