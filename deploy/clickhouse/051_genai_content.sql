-- GenAI content that arrived as log records, one row per piece, keyed by the span it belongs to.
-- `Complete` rows hold a whole array (gen_ai.client.inference.operation.details); the others hold one
-- message (or, for system instructions, the parts of one message) from a deprecated per-message
-- event, to be assembled in (Position, Timestamp, Seq) order by `genai_span_content`. Environment, Feature
-- and TenantId are the log record's, read as genai_spans reads a span's: the retention rules match them.
CREATE TABLE IF NOT EXISTS ${genai_content_table} ${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    EventName LowCardinality(String) CODEC(ZSTD(1)),
    Kind LowCardinality(String) CODEC(ZSTD(1)),
    Complete UInt8,
    Position UInt32 CODEC(ZSTD(1)),
    Seq UInt64 CODEC(ZSTD(1)),
    Content String CODEC(ZSTD(1))
) ENGINE = ${engine}
PARTITION BY toDate(Timestamp)
ORDER BY (TraceId, SpanId, Timestamp)
${ttl_genai_content}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = ${ttl_only_drop_parts_genai_content}, non_replicated_deduplication_window = 10000
