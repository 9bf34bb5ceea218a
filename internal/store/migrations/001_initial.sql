-- 001_initial: Parity's first schema.
--
-- Conventions: every time is timestamptz and written in UTC; key columns are
-- COLLATE "C" so that ORDER BY matches Go's byte-wise string order and index
-- comparisons stay cheap. The hot tables (pair_counts, samples) carry no
-- foreign keys: Apply writes the experiment row first, in the same transaction.

-- btree_gist lets applied_batches combine "stream =" with "seqs &&" in one
-- GiST exclusion constraint. It is a trusted extension (PostgreSQL 13+), so the
-- database owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- One row per experiment. Apply locks the row (its upsert takes a row lock) to
-- serialise segment admission per experiment, and keeps running totals so the
-- overview never has to sum pair_counts.
CREATE TABLE experiments (
    name       text COLLATE "C" PRIMARY KEY,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    last_stage text        NOT NULL DEFAULT '', -- stage of the newest pair seen
    pairs      bigint      NOT NULL DEFAULT 0,  -- total pairs judged, all time
    divergent  bigint      NOT NULL DEFAULT 0   -- total divergent pairs, all time
);

-- The segments admitted under an experiment's segment cap. A segment not in
-- this table (other than 'other') is folded into 'other' when it arrives.
-- 'other' itself is never stored here and never counts against the cap.
CREATE TABLE segments (
    experiment text COLLATE "C" NOT NULL REFERENCES experiments (name) ON DELETE CASCADE,
    segment    text COLLATE "C" NOT NULL, -- canonical key, e.g. 'country=IN,plan=pro'
    attrs      jsonb       NOT NULL DEFAULT '{}', -- e.g. {"country":"IN","plan":"pro"}
    first_seen timestamptz NOT NULL,
    PRIMARY KEY (experiment, segment)
);

-- Pre-aggregated counters per (experiment, operation, segment, minute). Each
-- verifier flush adds to them with one unnest() upsert. fillfactor leaves room
-- on each page so that the many updates of the current minute's rows are HOT
-- updates (no new index entries: no counter column is indexed).
CREATE TABLE pair_counts (
    experiment       text COLLATE "C" NOT NULL,
    operation        text COLLATE "C" NOT NULL,
    segment          text COLLATE "C" NOT NULL,
    minute           timestamptz NOT NULL, -- start of the minute, UTC
    pairs            bigint      NOT NULL DEFAULT 0,
    divergent        bigint      NOT NULL DEFAULT 0,
    control_errors   bigint      NOT NULL DEFAULT 0,
    candidate_errors bigint      NOT NULL DEFAULT 0,
    skipped          bigint      NOT NULL DEFAULT 0,
    timeouts         bigint      NOT NULL DEFAULT 0,
    last_seen        timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation, segment, minute)
) WITH (fillfactor = 80);

-- The dashboard's query: one experiment, a range of minutes, all operations.
-- (A filter on one operation can also use the primary key.)
CREATE INDEX pair_counts_experiment_minute ON pair_counts (experiment, minute);

-- Divergent pairs kept for drill-down: at most Options.SamplesPerKey newest per
-- (experiment, operation, segment); Apply trims the rest.
CREATE TABLE samples (
    id         bigserial PRIMARY KEY,
    pair_id    text NOT NULL,
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    segment    text COLLATE "C" NOT NULL, -- after folding: may be 'other'
    kind       text NOT NULL,
    stage      text NOT NULL,
    user_key   text NOT NULL,
    at         timestamptz NOT NULL,
    control    jsonb,                      -- the observation (value, error, status, duration_ns)
    candidate  jsonb,
    paths      text[] NOT NULL DEFAULT '{}' -- differing paths, e.g. 'items[3].price'
);

-- Trimming and drill-down by key, newest first.
CREATE INDEX samples_key_at ON samples (experiment, operation, segment, at DESC, id DESC);
-- Drill-down over a whole experiment, newest first.
CREATE INDEX samples_experiment_at ON samples (experiment, at DESC, id DESC);

-- Envelopes that could not be used. data holds at most MaxDeadLetterBytes;
-- size is the full size of what was rejected.
CREATE TABLE dead_letters (
    id      bigserial PRIMARY KEY,
    source  text NOT NULL, -- 'nats' or 'http'
    subject text NOT NULL,
    reason  text NOT NULL,
    data    bytea NOT NULL,
    size    bigint NOT NULL,
    at      timestamptz NOT NULL
);

CREATE INDEX dead_letters_at ON dead_letters (at DESC, id DESC);

-- The JetStream stream sequences each Apply consumed, one row per batch, so a
-- redelivered message can be recognised and not counted twice. stream is an
-- epoch key (stream name plus creation time): sequences restart when a stream
-- is recreated. The exclusion constraint (a GiST index, also used by
-- Store.Applied) rejects a second batch that claims a sequence already claimed,
-- even when two workers race on the same redelivered message.
CREATE TABLE applied_batches (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream     text COLLATE "C" NOT NULL,
    seqs       int8multirange NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT applied_batches_no_overlap EXCLUDE USING gist (stream WITH =, seqs WITH &&)
);

CREATE INDEX applied_batches_applied_at ON applied_batches (applied_at);

---- create above / drop below ----

DROP TABLE applied_batches;
DROP TABLE dead_letters;
DROP TABLE samples;
DROP TABLE pair_counts;
DROP TABLE segments;
DROP TABLE experiments;
