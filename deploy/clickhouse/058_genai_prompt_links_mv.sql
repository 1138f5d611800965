CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_prompt_links_view} ${on_cluster}
TO ${genai_prompt_links_table}
AS WITH SpanAttributes AS a, ResourceAttributes AS r
SELECT
    Timestamp, TraceId, SpanId, ServiceName,
    if(r[${DEPLOYMENT_ENVIRONMENT_NAME}] != '', r[${DEPLOYMENT_ENVIRONMENT_NAME}], a[${DEPLOYMENT_ENVIRONMENT_NAME}]) AS Environment,
    if(a[${SPANHOUSE_FEATURE}] != '', a[${SPANHOUSE_FEATURE}], r[${SPANHOUSE_FEATURE}]) AS Feature,
    if(a[${SPANHOUSE_TENANT_ID}] != '', a[${SPANHOUSE_TENANT_ID}], r[${SPANHOUSE_TENANT_ID}]) AS TenantId,
    a[${GEN_AI_PROMPT_NAME}] AS PromptName,
    a[${GEN_AI_PROMPT_VERSION}] AS PromptVersion
FROM ${traces_table}
WHERE a[${GEN_AI_PROMPT_NAME}] != ''
