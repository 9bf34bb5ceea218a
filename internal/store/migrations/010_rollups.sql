-- 010_rollups (issue 17, "a dashboard that reads what it needs"): narrow
-- count rollups per hour and per day, kept apart from the latency
-- histograms; one series per experiment for the overview; variant and
-- signature counts rolled up per hour and per day like the pair counts, so
-- their minutes can go with the minute retention; latency histograms per
-- day beside those per hour; and a version per experiment that every Apply
-- touching it moves, which the collector keys its cached gate verdicts on.
--
-- Apply writes the minutes, count_hours, experiment_hours and latency_hours
-- in its transaction. The daily rollups and the variant and signature hours
-- are written by the compactor (Store.Compact, run before PruneMinutes) for
-- the whole days before experiments.rolled_to, which it moves in the same
-- transaction; a later write to a minute or hour before rolled_to also adds
-- to them (Apply reads rolled_to under the experiment's row lock). So each
-- row of a rollup is the exact sum of what it covers, and reads use a
-- compactor-written rollup only before rolled_to. Hours and days are UTC:
-- date_bin from a UTC midnight, whatever the session's time zone.

CREATE TABLE count_hours (
    experiment       text COLLATE "C" NOT NULL,
    operation        text COLLATE "C" NOT NULL,
    segment          text COLLATE "C" NOT NULL,
    hour             timestamptz NOT NULL, -- start of the hour, UTC
    pairs            bigint      NOT NULL DEFAULT 0,
    divergent        bigint      NOT NULL DEFAULT 0,
    control_errors   bigint      NOT NULL DEFAULT 0,
    candidate_errors bigint      NOT NULL DEFAULT 0,
    skipped          bigint      NOT NULL DEFAULT 0,
    timeouts         bigint      NOT NULL DEFAULT 0,
    aa_pairs         bigint      NOT NULL DEFAULT 0,
    aa_divergent     bigint      NOT NULL DEFAULT 0,
    last_seen        timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation, segment, hour)
) WITH (fillfactor = 80);
CREATE INDEX count_hours_experiment_hour ON count_hours (experiment, hour);

CREATE TABLE count_days (
    experiment       text COLLATE "C" NOT NULL,
    operation        text COLLATE "C" NOT NULL,
    segment          text COLLATE "C" NOT NULL,
    day              timestamptz NOT NULL, -- midnight UTC
    pairs            bigint      NOT NULL DEFAULT 0,
    divergent        bigint      NOT NULL DEFAULT 0,
    control_errors   bigint      NOT NULL DEFAULT 0,
    candidate_errors bigint      NOT NULL DEFAULT 0,
    skipped          bigint      NOT NULL DEFAULT 0,
    timeouts         bigint      NOT NULL DEFAULT 0,
    aa_pairs         bigint      NOT NULL DEFAULT 0,
    aa_divergent     bigint      NOT NULL DEFAULT 0,
    last_seen        timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation, segment, day)
) WITH (fillfactor = 80);
CREATE INDEX count_days_experiment_day ON count_days (experiment, day);

-- The overview's sparkline: an experiment's pairs per hour, all segments
-- and operations together.
CREATE TABLE experiment_hours (
    experiment text COLLATE "C" NOT NULL,
    hour       timestamptz NOT NULL,
    pairs      bigint      NOT NULL DEFAULT 0,
    divergent  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, hour)
) WITH (fillfactor = 80);

CREATE TABLE latency_days (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    segment    text COLLATE "C" NOT NULL,
    day        timestamptz NOT NULL,
    control    bigint[]    NOT NULL DEFAULT '{}',
    candidate  bigint[]    NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment, operation, segment, day)
) WITH (fillfactor = 50);
CREATE INDEX latency_days_experiment_day ON latency_days (experiment, day);

CREATE TABLE variant_hours (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    variant    text COLLATE "C" NOT NULL,
    reason     text COLLATE "C" NOT NULL,
    hour       timestamptz NOT NULL,
    pairs      bigint      NOT NULL DEFAULT 0,
    divergent  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, operation, variant, reason, hour)
) WITH (fillfactor = 80);
CREATE INDEX variant_hours_experiment_hour ON variant_hours (experiment, hour);

CREATE TABLE variant_days (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    variant    text COLLATE "C" NOT NULL,
    reason     text COLLATE "C" NOT NULL,
    day        timestamptz NOT NULL,
    pairs      bigint      NOT NULL DEFAULT 0,
    divergent  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, operation, variant, reason, day)
) WITH (fillfactor = 80);
CREATE INDEX variant_days_experiment_day ON variant_days (experiment, day);

CREATE TABLE signature_hours (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    segment    text COLLATE "C" NOT NULL,
    hour       timestamptz NOT NULL,
    signature  text COLLATE "C" NOT NULL,
    count      bigint      NOT NULL DEFAULT 0,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation, segment, hour, signature)
) WITH (fillfactor = 80);
CREATE INDEX signature_hours_experiment_hour ON signature_hours (experiment, hour);

CREATE TABLE signature_days (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    segment    text COLLATE "C" NOT NULL,
    day        timestamptz NOT NULL,
    signature  text COLLATE "C" NOT NULL,
    count      bigint      NOT NULL DEFAULT 0,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (experiment, operation, segment, day, signature)
) WITH (fillfactor = 80);
CREATE INDEX signature_days_experiment_day ON signature_days (experiment, day);

-- A version that changes whenever Apply writes anything of an experiment:
-- from a sequence, so it never repeats, even for an experiment deleted and
-- written again.
CREATE SEQUENCE experiment_versions;
ALTER TABLE experiments ADD COLUMN version bigint NOT NULL DEFAULT nextval('experiment_versions');
-- The compactor's watermark: the daily rollups and the variant and
-- signature hours hold everything before it (a UTC midnight); NULL: nothing
-- compacted yet.
ALTER TABLE experiments ADD COLUMN rolled_to timestamptz;

-- Existing data: the hours' counters move out of latency_hours (whose
-- minutes may be gone), the rest is summed from what is kept.
INSERT INTO count_hours (experiment, operation, segment, hour, pairs, divergent, control_errors, candidate_errors,
    skipped, timeouts, aa_pairs, aa_divergent, last_seen)
SELECT experiment, operation, segment, hour, pairs, divergent, control_errors, candidate_errors,
    skipped, timeouts, aa_pairs, aa_divergent, last_seen
FROM latency_hours WHERE last_seen IS NOT NULL;

INSERT INTO count_days (experiment, operation, segment, day, pairs, divergent, control_errors, candidate_errors,
    skipped, timeouts, aa_pairs, aa_divergent, last_seen)
SELECT experiment, operation, segment, date_bin('1 day', hour, '2000-01-01 00:00:00+00'),
    sum(pairs), sum(divergent), sum(control_errors), sum(candidate_errors),
    sum(skipped), sum(timeouts), sum(aa_pairs), sum(aa_divergent), max(last_seen)
FROM count_hours WHERE hour < date_bin('1 day', now(), '2000-01-01 00:00:00+00') GROUP BY 1, 2, 3, 4;

INSERT INTO experiment_hours (experiment, hour, pairs, divergent)
SELECT experiment, hour, sum(pairs), sum(divergent) FROM count_hours GROUP BY 1, 2;

-- The merge of histograms, for the compactor's days.
CREATE AGGREGATE parity_hist_merge(bigint[]) (SFUNC = parity_hist_add, STYPE = bigint[], INITCOND = '{}');
INSERT INTO latency_days (experiment, operation, segment, day, control, candidate)
SELECT experiment, operation, segment, date_bin('1 day', hour, '2000-01-01 00:00:00+00'),
    parity_hist_merge(control), parity_hist_merge(candidate)
FROM latency_hours WHERE (cardinality(control) > 0 OR cardinality(candidate) > 0)
    AND hour < date_bin('1 day', now(), '2000-01-01 00:00:00+00')
GROUP BY 1, 2, 3, 4;

INSERT INTO variant_hours (experiment, operation, variant, reason, hour, pairs, divergent)
SELECT experiment, operation, variant, reason, date_bin('1 hour', minute, '2000-01-01 00:00:00+00'), sum(pairs), sum(divergent)
FROM variant_counts WHERE minute < date_bin('1 day', now(), '2000-01-01 00:00:00+00') GROUP BY 1, 2, 3, 4, 5;
INSERT INTO variant_days (experiment, operation, variant, reason, day, pairs, divergent)
SELECT experiment, operation, variant, reason, date_bin('1 day', hour, '2000-01-01 00:00:00+00'), sum(pairs), sum(divergent)
FROM variant_hours GROUP BY 1, 2, 3, 4, 5;

INSERT INTO signature_hours (experiment, operation, segment, hour, signature, count, first_seen, last_seen)
SELECT experiment, operation, segment, date_bin('1 hour', minute, '2000-01-01 00:00:00+00'), signature,
    sum(count), min(first_seen), max(last_seen)
FROM signature_counts WHERE minute < date_bin('1 day', now(), '2000-01-01 00:00:00+00') GROUP BY 1, 2, 3, 4, 5;
INSERT INTO signature_days (experiment, operation, segment, day, signature, count, first_seen, last_seen)
SELECT experiment, operation, segment, date_bin('1 day', hour, '2000-01-01 00:00:00+00'), signature,
    sum(count), min(first_seen), max(last_seen)
FROM signature_hours GROUP BY 1, 2, 3, 4, 5;

UPDATE experiments SET rolled_to = date_bin('1 day', now(), '2000-01-01 00:00:00+00');

DELETE FROM latency_hours WHERE cardinality(control) = 0 AND cardinality(candidate) = 0;
ALTER TABLE latency_hours
    DROP COLUMN pairs, DROP COLUMN divergent, DROP COLUMN control_errors, DROP COLUMN candidate_errors,
    DROP COLUMN skipped, DROP COLUMN timeouts, DROP COLUMN aa_pairs, DROP COLUMN aa_divergent, DROP COLUMN last_seen;

-- latency_hours is now updated only by the flushes that carry latencies,
-- not by every flush: it no longer needs half of each page free for HOT
-- updates of the current hour.
ALTER TABLE latency_hours SET (fillfactor = 80);

---- create above / drop below ----

ALTER TABLE latency_hours SET (fillfactor = 50);

ALTER TABLE latency_hours
    ADD COLUMN pairs            bigint NOT NULL DEFAULT 0,
    ADD COLUMN divergent        bigint NOT NULL DEFAULT 0,
    ADD COLUMN control_errors   bigint NOT NULL DEFAULT 0,
    ADD COLUMN candidate_errors bigint NOT NULL DEFAULT 0,
    ADD COLUMN skipped          bigint NOT NULL DEFAULT 0,
    ADD COLUMN timeouts         bigint NOT NULL DEFAULT 0,
    ADD COLUMN aa_pairs         bigint NOT NULL DEFAULT 0,
    ADD COLUMN aa_divergent     bigint NOT NULL DEFAULT 0,
    ADD COLUMN last_seen        timestamptz;
INSERT INTO latency_hours AS h (experiment, operation, segment, hour, pairs, divergent, control_errors, candidate_errors,
    skipped, timeouts, aa_pairs, aa_divergent, last_seen)
SELECT experiment, operation, segment, hour, pairs, divergent, control_errors, candidate_errors,
    skipped, timeouts, aa_pairs, aa_divergent, last_seen
FROM count_hours
ON CONFLICT (experiment, operation, segment, hour) DO UPDATE SET
    pairs = EXCLUDED.pairs, divergent = EXCLUDED.divergent, control_errors = EXCLUDED.control_errors,
    candidate_errors = EXCLUDED.candidate_errors, skipped = EXCLUDED.skipped, timeouts = EXCLUDED.timeouts,
    aa_pairs = EXCLUDED.aa_pairs, aa_divergent = EXCLUDED.aa_divergent, last_seen = EXCLUDED.last_seen;
ALTER TABLE experiments DROP COLUMN rolled_to;
ALTER TABLE experiments DROP COLUMN version;
DROP SEQUENCE experiment_versions;
DROP AGGREGATE parity_hist_merge(bigint[]);
DROP TABLE signature_days;
DROP TABLE signature_hours;
DROP TABLE variant_days;
DROP TABLE variant_hours;
DROP TABLE latency_days;
DROP TABLE experiment_hours;
DROP TABLE count_days;
DROP TABLE count_hours;
