"""The failure lifecycle: stage records, video states, how a per-video job ends, and the adapter
from Snakemake's script object."""
