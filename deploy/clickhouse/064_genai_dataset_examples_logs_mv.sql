-- spanhouse.dataset.example log records → genai_dataset_examples. The tenant is the record's (stamped
-- from the bearer token when auth is on), else its resource's, as for content and evaluations.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${genai_dataset_examples_logs_view} ${on_cluster}
TO ${genai_dataset_examples_table}
AS WITH LogAttributes AS a, ResourceAttributes AS r
SELECT
    if(a[${SPANHOUSE_TENANT_ID}] != '', a[${SPANHOUSE_TENANT_ID}], r[${SPANHOUSE_TENANT_ID}]) AS TenantId,
    a[${SPANHOUSE_DATASET_NAME}] AS DatasetName,
    a[${SPANHOUSE_DATASET_EXAMPLE_ID}] AS ExampleId,
    JSONExtractString(Body, 'input') AS Input,
    JSONExtractString(Body, 'expected_output') AS ExpectedOutput,
    JSONExtract(Body, 'metadata', 'Map(String, String)') AS Metadata,
    TraceId AS SourceTraceId,
    SpanId AS SourceSpanId,
    ServiceName,
    Timestamp,
    toUInt64(toUnixTimestamp64Nano(Timestamp)) AS Version,
    toUInt8(a[${SPANHOUSE_DATASET_EXAMPLE_DELETED}] = 'true') AS Deleted
FROM ${logs_table}
WHERE if(EventName != '', EventName, a[${EVENT_NAME}]) = ${EVENT_SPANHOUSE_DATASET_EXAMPLE}
  AND a[${SPANHOUSE_DATASET_NAME}] != '' AND a[${SPANHOUSE_DATASET_EXAMPLE_ID}] != ''
