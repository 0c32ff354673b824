"""Prometheus in and out.

In: the PromQL that reads each serving engine's decode throughput, KV-cache-missed prefill
throughput and time between tokens (:mod:`.queries`, pure) and the client that runs it and maps
every odd answer to a defined outcome (:mod:`.reader`). Out: the operator's own ``heteroscale_*``
metrics (:mod:`.exported`). Nothing here decides anything; the policy does.
"""
