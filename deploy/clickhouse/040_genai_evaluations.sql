-- One row per evaluation result (gen_ai.evaluation.result span events and log records), with the evaluated
-- span's context when the result carried it. Source says which kind of record it came from; RowId tells
-- apart two copies of one record (see genai_evaluations_full, which adds the span's context and leaves
-- out copies of a result sent twice).
CREATE TABLE IF NOT EXISTS ${genai_evaluations_table} ${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Release LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    RequestModel LowCardinality(String) CODEC(ZSTD(1)),
    PromptName LowCardinality(String) CODEC(ZSTD(1)),
    PromptVersion LowCardinality(String) CODEC(ZSTD(1)),
    EvaluationName LowCardinality(String) CODEC(ZSTD(1)),
    ScoreValue Nullable(Float64) CODEC(ZSTD(1)),
    ScoreLabel LowCardinality(String) CODEC(ZSTD(1)),
    Explanation String CODEC(ZSTD(1)),
    ResponseId String CODEC(ZSTD(1)),
    Source LowCardinality(String) CODEC(ZSTD(1)),
    IdempotencyKey String CODEC(ZSTD(1)),
    RowId UInt64 CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, EvaluationName, toDateTime(Timestamp))
${ttl_genai_evaluations}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = ${ttl_only_drop_parts_genai_evaluations}, non_replicated_deduplication_window = 10000
