-- Source columns are qualified (`s.`) because the rollup's state columns reuse their names.
-- The model_call and unpriced conditions are spanhouse.modelcalls' rule, rendered on the `s.` columns.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_rollup_view} ${on_cluster}
TO ${genai_rollup_table}
AS WITH ${model_call} AS model_call
SELECT
    toStartOfHour(s.Timestamp) AS Hour,
    s.ServiceName AS ServiceName, s.Environment AS Environment, s.Release AS Release, s.Feature AS Feature,
    s.TenantId AS TenantId, s.Provider AS Provider,
    if(s.RequestModel != '', s.RequestModel, s.ResponseModel) AS Model,
    s.Operation AS Operation, s.PromptName AS PromptName, s.PromptVersion AS PromptVersion,
    countState() AS Spans,
    sumState(toUInt64(model_call)) AS ModelCalls,
    sumState(toUInt64(s.StatusCode = 'Error')) AS Errors,
    sumState(if(model_call, s.InputTokens, 0)) AS InputTokens,
    sumState(if(model_call, s.OutputTokens, 0)) AS OutputTokens,
    sumState(if(model_call, s.CacheReadTokens, 0)) AS CacheReadTokens,
    sumState(if(model_call, s.CacheWriteTokens, 0)) AS CacheWriteTokens,
    sumState(if(model_call, s.ReasoningTokens, 0)) AS ReasoningTokens,
    sumState(ifNull(s.CostUsd, 0.)) AS CostUsd,
    sumState(toUInt64(s.CostUsd IS NOT NULL)) AS PricedSpans,
    sumState(toUInt64(${unpriced})) AS UnpricedSpans,
    sumState(s.DurationMs) AS DurationMsSum,
    quantilesState(0.5, 0.95, 0.99)(s.DurationMs) AS DurationMs
FROM ${genai_spans_table} AS s
GROUP BY Hour, ServiceName, Environment, Release, Feature, TenantId, Provider, Model, Operation, PromptName,
         PromptVersion
