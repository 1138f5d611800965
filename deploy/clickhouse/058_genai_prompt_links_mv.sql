CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_prompt_links_view} ${on_cluster}
TO ${genai_prompt_links_table}
AS SELECT
    Timestamp, TraceId, SpanId,
    SpanAttributes[${GEN_AI_PROMPT_NAME}] AS PromptName,
    SpanAttributes[${GEN_AI_PROMPT_VERSION}] AS PromptVersion
FROM ${traces_table}
WHERE SpanAttributes[${GEN_AI_PROMPT_NAME}] != ''
