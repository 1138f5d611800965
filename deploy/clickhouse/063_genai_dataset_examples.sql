-- Dataset examples (`spanhouse dataset`): one row per spanhouse.dataset.example log record, the newest
-- version of an example (by Version, the record's time in nanoseconds) replacing the older ones when
-- parts merge; a record with Deleted = 1 removes its example. Read genai_dataset_examples_current, which
-- applies that at read time too. Curated data: no TTL, whatever `ttl` and `retention` say (kept until
-- deleted). Input and ExpectedOutput are JSON text; SourceTraceId / SourceSpanId name the production
-- span the example came from ('' for one written by hand).
CREATE TABLE IF NOT EXISTS ${genai_dataset_examples_table} ${on_cluster} (
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    DatasetName String CODEC(ZSTD(1)),
    ExampleId String CODEC(ZSTD(1)),
    Input String CODEC(ZSTD(1)),
    ExpectedOutput String CODEC(ZSTD(1)),
    Metadata Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    SourceTraceId String CODEC(ZSTD(1)),
    SourceSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    Version UInt64,
    Deleted UInt8
) ENGINE = ${replacing_engine}
ORDER BY (TenantId, DatasetName, ExampleId)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000
