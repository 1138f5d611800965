"""Datasets: curated examples (an input, maybe an expected output, tags, the production span they came
from), stored in `genai_dataset_examples` and read from `genai_dataset_examples_current`.

Examples travel to the store as `spanhouse.dataset.example` OTLP log records through the service's logs
pipeline (`send`), so authentication, tenant stamping, redaction, queueing and a ClickHouse server
work as for any log record; the newest record of an example id wins. `select` finds failed production
model calls, `read` lists and exports what is stored, `examples` reads and writes JSON lines.
"""
