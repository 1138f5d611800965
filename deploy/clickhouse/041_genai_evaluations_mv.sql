CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_evaluations_view} ${on_cluster}
TO ${genai_evaluations_table}
AS WITH SpanAttributes AS a, ResourceAttributes AS r
SELECT
    e.Timestamp AS Timestamp, TraceId, SpanId, ServiceName,
    if(r[${DEPLOYMENT_ENVIRONMENT_NAME}] != '', r[${DEPLOYMENT_ENVIRONMENT_NAME}], a[${DEPLOYMENT_ENVIRONMENT_NAME}]) AS Environment,
    if(r[${SERVICE_VERSION}] != '', r[${SERVICE_VERSION}], a[${SERVICE_VERSION}]) AS Release,
    if(a[${SPANHOUSE_FEATURE}] != '', a[${SPANHOUSE_FEATURE}], r[${SPANHOUSE_FEATURE}]) AS Feature,
    if(a[${SPANHOUSE_TENANT_ID}] != '', a[${SPANHOUSE_TENANT_ID}], r[${SPANHOUSE_TENANT_ID}]) AS TenantId,
    a[${GEN_AI_OPERATION_NAME}] AS Operation,
    a[${GEN_AI_REQUEST_MODEL}] AS RequestModel,
    a[${GEN_AI_PROMPT_NAME}] AS PromptName,
    a[${GEN_AI_PROMPT_VERSION}] AS PromptVersion,
    e.Attributes[${GEN_AI_EVALUATION_NAME}] AS EvaluationName,
    ${event_score_columns},
    e.Attributes[${GEN_AI_EVALUATION_EXPLANATION}] AS Explanation,
    e.Attributes[${GEN_AI_RESPONSE_ID}] AS ResponseId,
    ${span_event} AS Source,
    rand64() AS RowId
FROM ${traces_table}
ARRAY JOIN Events AS e
WHERE e.Name = ${EVENT_GEN_AI_EVALUATION_RESULT}
