-- Evaluation results sent as log records (gen_ai.evaluation.result) → genai_evaluations, beside the
-- ones sent as span events. The evaluated span's operation, model and prompt are taken from the
-- record's own attributes when it carries them; genai_evaluations_full adds the span's at read time.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_evaluations_logs_view} ${on_cluster}
TO ${genai_evaluations_table}
AS WITH LogAttributes AS a, ResourceAttributes AS r
SELECT
    Timestamp, TraceId, SpanId, ServiceName,
    if(r[${DEPLOYMENT_ENVIRONMENT_NAME}] != '', r[${DEPLOYMENT_ENVIRONMENT_NAME}], a[${DEPLOYMENT_ENVIRONMENT_NAME}]) AS Environment,
    if(r[${SERVICE_VERSION}] != '', r[${SERVICE_VERSION}], a[${SERVICE_VERSION}]) AS Release,
    if(a[${SPANHOUSE_FEATURE}] != '', a[${SPANHOUSE_FEATURE}], r[${SPANHOUSE_FEATURE}]) AS Feature,
    if(a[${SPANHOUSE_TENANT_ID}] != '', a[${SPANHOUSE_TENANT_ID}], r[${SPANHOUSE_TENANT_ID}]) AS TenantId,
    a[${GEN_AI_OPERATION_NAME}] AS Operation,
    a[${GEN_AI_REQUEST_MODEL}] AS RequestModel,
    a[${GEN_AI_PROMPT_NAME}] AS PromptName,
    a[${GEN_AI_PROMPT_VERSION}] AS PromptVersion,
    a[${GEN_AI_EVALUATION_NAME}] AS EvaluationName,
    ${log_score_columns},
    a[${GEN_AI_EVALUATION_EXPLANATION}] AS Explanation,
    a[${GEN_AI_RESPONSE_ID}] AS ResponseId,
    ${log_record} AS Source,
    rand64() AS RowId
FROM ${logs_table}
WHERE if(EventName != '', EventName, a[${EVENT_NAME}]) = ${EVENT_GEN_AI_EVALUATION_RESULT}
