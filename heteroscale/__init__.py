"""HeteroScale: coordinated prefill/decode autoscaling for disaggregated LLM serving."""

__version__ = "0.1.0"
