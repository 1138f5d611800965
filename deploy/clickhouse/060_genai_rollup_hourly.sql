-- Hourly rollup of genai_spans for dashboards and long-range cost and latency questions: one row per
-- hour × service × environment × release × feature × tenant × provider × model × operation × prompt
-- name/version (after merges), with aggregate states. Read with the -Merge combinators, e.g.
-- countMerge(Spans), sumMerge(ModelCalls), sumMerge(CostUsd), quantilesMerge(0.5, 0.95, 0.99)(DurationMs).
-- Tokens count model calls only (ModelCalls: the rule of spanhouse.modelcalls, an operation chat,
-- text_completion, generate_content or embeddings, or a cost source genai_cost gives model calls):
-- the usage an agent or workflow span aggregates from its calls is not added again.
CREATE TABLE IF NOT EXISTS ${genai_rollup_table} ${on_cluster} (
    Hour DateTime CODEC(Delta(4), ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Environment LowCardinality(String) CODEC(ZSTD(1)),
    Release LowCardinality(String) CODEC(ZSTD(1)),
    Feature LowCardinality(String) CODEC(ZSTD(1)),
    TenantId LowCardinality(String) CODEC(ZSTD(1)),
    Provider LowCardinality(String) CODEC(ZSTD(1)),
    Model LowCardinality(String) CODEC(ZSTD(1)),
    Operation LowCardinality(String) CODEC(ZSTD(1)),
    PromptName LowCardinality(String) CODEC(ZSTD(1)),
    PromptVersion LowCardinality(String) CODEC(ZSTD(1)),
    Spans AggregateFunction(count),
    ModelCalls AggregateFunction(sum, UInt64),
    Errors AggregateFunction(sum, UInt64),
    InputTokens AggregateFunction(sum, UInt64),
    OutputTokens AggregateFunction(sum, UInt64),
    CacheReadTokens AggregateFunction(sum, UInt64),
    CacheWriteTokens AggregateFunction(sum, UInt64),
    ReasoningTokens AggregateFunction(sum, UInt64),
    CostUsd AggregateFunction(sum, Float64),
    PricedSpans AggregateFunction(sum, UInt64),
    UnpricedSpans AggregateFunction(sum, UInt64),
    DurationMsSum AggregateFunction(sum, Float64),
    DurationMs AggregateFunction(quantiles(0.5, 0.95, 0.99), Float64)
) ENGINE = ${aggregating_engine}
PARTITION BY toDate(Hour)
ORDER BY (Hour, ServiceName, Environment, Provider, Model, Operation, Feature, TenantId, Release, PromptName,
          PromptVersion)
${ttl_genai_rollup}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = ${ttl_only_drop_parts_genai_rollup}, non_replicated_deduplication_window = 10000
