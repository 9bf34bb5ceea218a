-- 002_diff_engine: verdicts, mismatch signatures, A/A counts and versioned
-- diff rules. Same conventions as 001: timestamptz in UTC, key columns
-- COLLATE "C", no foreign keys on tables Apply writes on every flush.

-- A/A pairs (candidate = a second read of control) measure noise. They are
-- counted apart from pairs/divergent, and never in experiments' totals. Adding
-- a column with a constant default rewrites nothing (PostgreSQL 11+).
ALTER TABLE pair_counts
    ADD COLUMN aa_pairs     bigint NOT NULL DEFAULT 0,
    ADD COLUMN aa_divergent bigint NOT NULL DEFAULT 0;

-- What the diff engine said about a sample. Rows from before this migration
-- read as verdict '', signature '', rules_version 0, diffs NULL.
ALTER TABLE samples
    ADD COLUMN verdict       text   NOT NULL DEFAULT '', -- e.g. 'mismatch', 'candidate_error'
    ADD COLUMN signature     text   NOT NULL DEFAULT '', -- '' unless a mismatch
    ADD COLUMN rules_version bigint NOT NULL DEFAULT 0,  -- diff rules the pair was judged under
    ADD COLUMN diffs         jsonb;                      -- []diff.Difference

-- Mismatches per signature, pre-aggregated like pair_counts: each flush adds
-- to them with one unnest() upsert, segments folded exactly as pair_counts'.
-- fillfactor leaves room for HOT updates of the current minute's rows.
CREATE TABLE signature_counts (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    segment    text COLLATE "C" NOT NULL, -- after folding: may be 'other'
    minute     timestamptz NOT NULL,      -- start of the minute, UTC
    signature  text COLLATE "C" NOT NULL,
    count      bigint      NOT NULL DEFAULT 0,
    first_seen timestamptz NOT NULL,      -- bounds of the pair times counted
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation, segment, minute, signature)
) WITH (fillfactor = 80);

-- The experiment page's query: one experiment, a range of minutes. (A filter
-- on one operation can also use the primary key.)
CREATE INDEX signature_counts_experiment_minute ON signature_counts (experiment, minute);

-- Each signature's pattern set, stored once rather than on every count row.
-- patterns is always a JSON array of {"pattern","kind"} objects
-- ([]diff.PatternKind); Apply sees to it, so jsonb_array_elements never fails.
CREATE TABLE signatures (
    experiment text COLLATE "C" NOT NULL,
    signature  text COLLATE "C" NOT NULL,
    patterns   jsonb       NOT NULL DEFAULT '[]',
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (experiment, signature)
) WITH (fillfactor = 80);

-- Every version of every experiment's diff rules, kept for history. Versions
-- start at 1 per experiment and go up by 1; Store.SaveRules assigns them
-- under a per-experiment advisory lock, and the primary key refuses a
-- duplicate whatever happens. An experiment may have rules before it has
-- pairs, so there is no reference to experiments.
CREATE TABLE diff_rules (
    experiment text COLLATE "C" NOT NULL,
    version    bigint      NOT NULL CHECK (version >= 1),
    rules      jsonb       NOT NULL, -- a diff.Rules document; its "version" equals version
    author     text        NOT NULL DEFAULT '',
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment, version)
);

---- create above / drop below ----

DROP TABLE diff_rules;
DROP TABLE signatures;
DROP TABLE signature_counts;
ALTER TABLE samples
    DROP COLUMN diffs,
    DROP COLUMN rules_version,
    DROP COLUMN signature,
    DROP COLUMN verdict;
ALTER TABLE pair_counts
    DROP COLUMN aa_divergent,
    DROP COLUMN aa_pairs;
