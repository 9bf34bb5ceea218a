-- Redaction: per experiment, the places whose values are masked or hashed in
-- samples and dead letters before they are stored. key keys the hashes; it
-- is made once per experiment and kept across edits, so a hashed value stays
-- comparable over time.
CREATE TABLE redaction (
    experiment text COLLATE "C" PRIMARY KEY,
    rules      jsonb       NOT NULL,
    key        bytea       NOT NULL,
    author     text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Retention deletes samples and dead letters by age.
CREATE INDEX samples_at ON samples (at);

---- create above / drop below ----

DROP INDEX samples_at;
DROP TABLE redaction;
