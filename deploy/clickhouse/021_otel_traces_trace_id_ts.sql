-- Trace id → time window, so a trace lookup reads a small slice of otel_traces (Grafana uses it too).
CREATE TABLE IF NOT EXISTS ${traces_lookup_table} ${on_cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = ${aggregating_engine}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
${ttl_traces_lookup}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = ${ttl_only_drop_parts_traces_lookup}, non_replicated_deduplication_window = 10000
