-- genai_spans with the content of each span wherever it came from: the span's own attributes win,
-- field by field; otherwise the content its log records carried (genai_span_content).
-- ContentSource says which: 'span', 'log', or '' for a span without content. A span without finish
-- reasons of its own takes those of the output messages its log records carried. A view fixes its column
-- list when created, so it is replaced at every schema creation to pick up columns added to genai_spans.
CREATE OR REPLACE VIEW ${genai_spans_full_view} ${on_cluster} AS
SELECT
    s.* EXCEPT (SystemInstructions, InputMessages, OutputMessages) REPLACE (
        if(notEmpty(s.FinishReasons) OR s.OutputMessages != '', s.FinishReasons,
           arrayFilter(r -> r != '', arrayMap(m -> JSONExtractString(m, 'finish_reason'),
                                              JSONExtractArrayRaw(c.OutputMessages)))) AS FinishReasons),
    if(s.SystemInstructions != '', s.SystemInstructions, c.SystemInstructions) AS SystemInstructions,
    if(s.InputMessages != '', s.InputMessages, c.InputMessages) AS InputMessages,
    if(s.OutputMessages != '', s.OutputMessages, c.OutputMessages) AS OutputMessages,
    multiIf(s.SystemInstructions != '' OR s.InputMessages != '' OR s.OutputMessages != '', 'span',
            c.SystemInstructions != '' OR c.InputMessages != '' OR c.OutputMessages != '', 'log',
            '') AS ContentSource
FROM ${genai_spans_table} AS s
LEFT JOIN ${genai_span_content_view} AS c ON c.TraceId = s.TraceId AND c.SpanId = s.SpanId
