-- The operations each experiment has admitted, so Apply can bound them
-- (Options.OperationCap) the way segments are bounded; further operations
-- fold into "other". Filled from the counts already stored.
CREATE TABLE operations (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    first_seen timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation)
);

INSERT INTO operations (experiment, operation, first_seen)
SELECT experiment, operation, min(minute) FROM pair_counts GROUP BY experiment, operation;

---- create above / drop below ----

DROP TABLE operations;
