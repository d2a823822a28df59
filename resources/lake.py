"""The lake root as a resource, so tests and deployments point the same assets at another place."""

import dagster as dg

from maestro_pipeline.lake import Lake


class LakeResource(dg.ConfigurableResource):
    """Root directory of the Parquet lake (``data_lake/`` by default, from ``maestro.yaml``)."""

    root: str

    def lake(self) -> Lake:
        return Lake(self.root)
