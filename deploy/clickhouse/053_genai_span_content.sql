-- Content per span, assembled from genai_content at read time, so it does not matter whether the
-- log records arrived before or after the span. A whole array (operation.details) wins over
-- per-message events; per-message events are concatenated in the order they were emitted (choices
-- by their index).
CREATE OR REPLACE VIEW ${genai_span_content_view} ${on_cluster} AS
SELECT
    TraceId,
    SpanId,
    if(countIf(Kind = 'system_instructions' AND Complete = 1) > 0,
       argMaxIf(Content, (Timestamp, Seq), Kind = 'system_instructions' AND Complete = 1),
       if(countIf(Kind = 'system_instructions') = 0, '',
          concat('[', arrayStringConcat(arrayFlatten(arrayMap(t -> JSONExtractArrayRaw(t.4),
              arraySort(groupArrayIf((Position, Timestamp, Seq, Content), Kind = 'system_instructions')))), ','),
          ']'))) AS SystemInstructions,
    if(countIf(Kind = 'input' AND Complete = 1) > 0,
       argMaxIf(Content, (Timestamp, Seq), Kind = 'input' AND Complete = 1),
       if(countIf(Kind = 'input') = 0, '',
          concat('[', arrayStringConcat(arrayFlatten(arrayMap(t -> JSONExtractArrayRaw(t.4),
              arraySort(groupArrayIf((Position, Timestamp, Seq, Content), Kind = 'input')))), ','),
          ']'))) AS InputMessages,
    if(countIf(Kind = 'output' AND Complete = 1) > 0,
       argMaxIf(Content, (Timestamp, Seq), Kind = 'output' AND Complete = 1),
       if(countIf(Kind = 'output') = 0, '',
          concat('[', arrayStringConcat(arrayFlatten(arrayMap(t -> JSONExtractArrayRaw(t.4),
              arraySort(groupArrayIf((Position, Timestamp, Seq, Content), Kind = 'output')))), ','),
          ']'))) AS OutputMessages,
    groupUniqArray(EventName) AS EventNames
FROM ${genai_content_table}
GROUP BY TraceId, SpanId
