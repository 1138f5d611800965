CREATE MATERIALIZED VIEW IF NOT EXISTS ${traces_lookup_view} ${on_cluster}
TO ${traces_lookup_table}
AS SELECT
    TraceId,
    min(toDateTime(Timestamp)) AS Start,
    max(toDateTime(Timestamp)) AS End
FROM ${traces_table}
WHERE TraceId != ''
GROUP BY TraceId
