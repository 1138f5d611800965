CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_spans_view} ${on_cluster}
TO ${genai_spans_table}
AS WITH
    SpanAttributes AS a,
    ResourceAttributes AS r,
    a[${GEN_AI_RESPONSE_FINISH_REASONS}] AS finish,
    a[${GEN_AI_RETRIEVAL_DOCUMENTS}] AS docs
SELECT
    Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
    if(r[${DEPLOYMENT_ENVIRONMENT_NAME}] != '', r[${DEPLOYMENT_ENVIRONMENT_NAME}], a[${DEPLOYMENT_ENVIRONMENT_NAME}]) AS Environment,
    if(r[${SERVICE_VERSION}] != '', r[${SERVICE_VERSION}], a[${SERVICE_VERSION}]) AS Release,
    if(a[${SPANHOUSE_FEATURE}] != '', a[${SPANHOUSE_FEATURE}], r[${SPANHOUSE_FEATURE}]) AS Feature,
    if(a[${SPANHOUSE_TENANT_ID}] != '', a[${SPANHOUSE_TENANT_ID}], r[${SPANHOUSE_TENANT_ID}]) AS TenantId,
    if(a[${USER_HASH}] != '', a[${USER_HASH}], r[${USER_HASH}]) AS UserHash,
    if(a[${GEN_AI_CONVERSATION_ID}] != '', a[${GEN_AI_CONVERSATION_ID}], a[${SESSION_ID}]) AS ConversationId,
    a[${GEN_AI_OPERATION_NAME}] AS Operation,
    a[${GEN_AI_PROVIDER_NAME}] AS Provider,
    a[${GEN_AI_REQUEST_MODEL}] AS RequestModel,
    a[${GEN_AI_RESPONSE_MODEL}] AS ResponseModel,
    a[${GEN_AI_RESPONSE_ID}] AS ResponseId,
    a[${GEN_AI_AGENT_NAME}] AS AgentName,
    a[${GEN_AI_WORKFLOW_NAME}] AS WorkflowName,
    a[${GEN_AI_PROMPT_NAME}] AS PromptName,
    a[${GEN_AI_PROMPT_VERSION}] AS PromptVersion,
    toFloat64OrNull(a[${GEN_AI_REQUEST_TEMPERATURE}]) AS Temperature,
    toUInt64OrNull(a[${GEN_AI_REQUEST_MAX_TOKENS}]) AS MaxTokens,
    toUInt64OrZero(a[${GEN_AI_USAGE_INPUT_TOKENS}]) AS InputTokens,
    toUInt64OrZero(a[${GEN_AI_USAGE_OUTPUT_TOKENS}]) AS OutputTokens,
    toUInt64OrZero(a[${GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS}]) AS CacheReadTokens,
    toUInt64OrZero(a[${GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS}]) AS CacheWriteTokens,
    toUInt64OrZero(a[${GEN_AI_USAGE_REASONING_OUTPUT_TOKENS}]) AS ReasoningTokens,
    toFloat64OrNull(a[${SPANHOUSE_COST_USD}]) AS CostUsd,
    a[${SPANHOUSE_COST_SOURCE}] AS CostSource,
    Duration / 1e6 AS DurationMs,
    StatusCode, StatusMessage,
    a[${ERROR_TYPE}] AS ErrorType,
    a[${GEN_AI_TOOL_NAME}] AS ToolName,
    a[${GEN_AI_TOOL_CALL_ID}] AS ToolCallId,
    a[${GEN_AI_TOOL_CALL_ARGUMENTS}] AS ToolCallArguments,
    a[${GEN_AI_TOOL_CALL_RESULT}] AS ToolCallResult,
    a[${GEN_AI_DATA_SOURCE_ID}] AS DataSourceId,
    arrayMap(d -> if(JSONType(d, 'id') = 'String', JSONExtractString(d, 'id'), JSONExtractRaw(d, 'id')),
             JSONExtractArrayRaw(docs)) AS RetrievalDocumentIds,
    if(startsWith(finish, '['), JSONExtract(finish, 'Array(String)'), if(finish = '', [], [finish])) AS FinishReasons,
    a[${GEN_AI_SYSTEM_INSTRUCTIONS}] AS SystemInstructions,
    a[${GEN_AI_INPUT_MESSAGES}] AS InputMessages,
    a[${GEN_AI_OUTPUT_MESSAGES}] AS OutputMessages
FROM ${traces_table}
WHERE mapContains(SpanAttributes, ${GEN_AI_OPERATION_NAME})
   OR mapContains(SpanAttributes, ${GEN_AI_PROVIDER_NAME})
   OR mapContains(SpanAttributes, ${GEN_AI_REQUEST_MODEL})
