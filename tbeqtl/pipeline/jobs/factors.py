"""The factor job of a pair: tissue, ancestry, cell-type and covariate association of the topics."""

from __future__ import annotations

import pandas as pd

from ...atomic import write_table
from ...data import EQTLData
from ...errors import InputError
from ...layout import PairLayout
from ...schema import validate_table
from .. import factors as fac
from .common import PairContext, _tissue_s

__all__ = []


def _factors_stage(ctx: PairContext, layout: PairLayout, model, sub: EQTLData) -> dict[str, pd.DataFrame]:
    config = ctx.config
    data = ctx.prepared  # the small tables: samples, individuals, sample map
    fcfg = config.factors
    tissue_s = _tissue_s(data, config.data.tissue_column)
    tissue_df = fac.tissue_factor_association(
        model.sample_topics_,
        tissue_s,
        score=fcfg.tissue_score,
        threshold=fcfg.tissue_threshold,
        normalized_threshold=fcfg.normalized_threshold,
    )
    out = {"tissue_association": tissue_df}
    if config.data.ancestry_column in data.individual_info_df.columns:
        ancestry_s = data.individual_info_df[config.data.ancestry_column]
        private = getattr(model, "ancestry_tau_", None)
        out["ancestry"] = fac.ancestry_association(model.individual_topics_, ancestry_s, private_df=private)
    cell_cols = list(config.data.cell_type_columns) or [
        c for c in data.sample_info_df.columns if str(c).lower().startswith(("celltype_", "cell_type_"))
    ]
    if cell_cols:
        missing = [c for c in cell_cols if c not in data.sample_info_df.columns]
        if missing:
            raise InputError("cell-type score columns not in the sample attributes", ids=missing)
        out["cell_types"] = fac.cell_type_association(
            model.sample_topics_,
            data.sample_info_df[cell_cols].apply(pd.to_numeric, errors="coerce"),
            tissue_s,
            threshold=fcfg.cell_type_tau,
        )
    cov_cols = list(config.data.covariate_columns) or ["sex", "pcr", "platform", "batch"]
    attrs = fac.sample_attributes(
        model.sample_topics_.index,
        columns=cov_cols,
        sample_info_df=data.sample_info_df,
        individual_info_df=data.individual_info_df,
        sample_map_s=data.sample_map_s,
    )
    out["covariate_factors"] = fac.covariate_association(
        model.sample_topics_, attrs, fdr_level=fcfg.covariate_fdr, min_effect=fcfg.covariate_min_effect
    )
    schemas = {
        "tissue_association": "tissue_factors",
        "ancestry": "ancestry_factors",
        "cell_types": "cell_type_factors",
        "covariate_factors": "covariate_factors",
    }
    for name, table in out.items():
        write_table(validate_table(table, schemas[name]), layout.factors / f"{name}.tsv")
    return out


def _read_factor_tables(layout: PairLayout) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("tissue_association", "ancestry", "cell_types", "covariate_factors"):
        path = layout.factors / f"{name}.tsv"
        if path.exists():
            out[name] = pd.read_csv(path, sep="\t")
    return out
