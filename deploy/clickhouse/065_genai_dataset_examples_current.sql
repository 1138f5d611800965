-- The examples of every dataset as they are now: the newest record of each (tenant, dataset, example id),
-- deleted ones left out, whether or not ClickHouse has merged the parts yet. Replaced at every schema
-- creation, like genai_spans_full, to follow columns added to the table.
CREATE OR REPLACE VIEW ${genai_dataset_examples_current_view} ${on_cluster} AS
SELECT * EXCEPT (Deleted)
FROM (
    SELECT *
    FROM ${genai_dataset_examples_table}
    ORDER BY TenantId, DatasetName, ExampleId, Version DESC
    LIMIT 1 BY TenantId, DatasetName, ExampleId
)
WHERE Deleted = 0
