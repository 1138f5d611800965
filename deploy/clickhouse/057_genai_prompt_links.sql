-- One row per span that names a prompt (gen_ai.prompt.name), whatever its kind. A model call without a
-- prompt of its own takes, at read time, the prompt of its nearest ancestor here (genai_spans_by_prompt).
-- Most such ancestors are not GenAI spans (MLflow links a loaded prompt to the span active when it was
-- loaded: a CHAIN span or the root), so genai_spans does not hold them; this table does, narrowly. The
-- service, environment, feature and tenant are the span's, as genai_spans reads them, for the retention rules.
CREATE TABLE IF NOT EXISTS ${genai_prompt_links_table} ${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    PromptName LowCardinality(String) CODEC(ZSTD(1)),
    PromptVersion LowCardinality(String) CODEC(ZSTD(1))
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (TraceId, Timestamp)
${ttl_genai_prompt_links}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = ${ttl_only_drop_parts_genai_prompt_links}, non_replicated_deduplication_window = 10000
