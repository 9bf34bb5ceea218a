-- 003_latency_variants_gate: hourly latency histograms (with the hour's
-- counters, a rollup of pair_counts), counts per flag variant, and each
-- experiment's gate spec. Same conventions as 001: timestamptz in UTC, key
-- columns COLLATE "C", no foreign keys on tables Apply writes on every flush.

-- parity_hist_add merges two latency histograms in the sparse encoding of
-- report.Histogram.Encode: {first bucket, count, count, ...}, zeros trimmed at
-- both ends, '{}' (or NULL, or a lone first bucket) for no observations. The
-- result is exactly what report.Histogram.Merge followed by Encode gives for
-- the two decoded inputs: always trimmed, '{}' when empty, never NULL. Inputs
-- may carry zeros at either end. The buckets are report's fixed layout: 218
-- of them, so a range outside [0, 218) is refused rather than allocated.
-- Inputs are otherwise assumed valid (no negative counts): Apply checks every
-- histogram with report.DecodeHistogram before it reaches the database.
CREATE FUNCTION parity_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    na  int := coalesce(cardinality(a), 0) - 1; -- counts in a (-1 or 0: none)
    nb  int := coalesce(cardinality(b), 0) - 1;
    la  int := array_lower(a, 1);               -- subscript of a's first bucket
    lb  int := array_lower(b, 1);
    fa  bigint;                                  -- a's first bucket
    fb  bigint;
    lo  bigint;                                  -- merged range [lo, hi)
    hi  bigint;
    s   bigint[];                                -- merged counts, s[1] is bucket lo
    n   int;
    f   int;
    l   int;
BEGIN
    IF na > 0 THEN fa := a[la]; END IF;
    IF nb > 0 THEN fb := b[lb]; END IF;
    IF fa IS NULL AND fb IS NULL THEN
        RETURN '{}';
    END IF;
    lo := least(fa, fb);                         -- least and greatest skip NULLs
    hi := greatest(fa + na, fb + nb);
    IF lo < 0 OR hi > 218 THEN
        RAISE EXCEPTION 'parity_hist_add: buckets [%, %) outside [0, 218)', lo, hi
            USING ERRCODE = 'data_exception';
    END IF;
    IF fb IS NULL OR fa IS NULL THEN             -- one side: trim it
        IF fa IS NULL THEN a := b; la := lb; fa := fb; na := nb; END IF;
        f := 1;
        WHILE f <= na AND a[la + f] = 0 LOOP f := f + 1; END LOOP;
        IF f > na THEN RETURN '{}'; END IF;
        l := na;
        WHILE a[la + l] = 0 LOOP l := l - 1; END LOOP;
        IF f = 1 AND l = na AND la = 1 THEN
            RETURN a;                            -- already canonical
        END IF;
        RETURN (fa + f - 1) || a[la + f:la + l];
    END IF;
    IF fb >= fa AND fb + nb <= fa + na AND la = 1 AND a[2] <> 0 AND a[na + 1] <> 0 THEN
        -- b lies within a, which is canonical (the stored hour, and one
        -- flush): add b's counts into a copy of a, whose ends stay non-zero.
        s := a;
        FOR i IN 1..nb LOOP
            s[fb - fa + 1 + i] := s[fb - fa + 1 + i] + b[lb + i];
        END LOOP;
        RETURN s;
    END IF;
    n := hi - lo;
    s := array_fill(0::bigint, ARRAY[n]);
    FOR i IN 1..na LOOP
        s[fa - lo + i] := s[fa - lo + i] + a[la + i];
    END LOOP;
    FOR i IN 1..nb LOOP
        s[fb - lo + i] := s[fb - lo + i] + b[lb + i];
    END LOOP;
    f := 1;
    WHILE f <= n AND s[f] = 0 LOOP f := f + 1; END LOOP;
    IF f > n THEN RETURN '{}'; END IF;
    l := n;
    WHILE s[l] = 0 LOOP l := l - 1; END LOOP;
    RETURN (lo + f - 1) || s[f:l];
END
$$;

-- Per (experiment, operation, segment, hour): the latency histograms of both
-- sides, and the hour's counters. Apply rewrites each touched row once per
-- flush, in the same transaction as pair_counts and with the same segment
-- folding: the histograms merge with parity_hist_add, the counters add.
--
-- The counters are a rollup of pair_counts: they always equal the sum of the
-- hour's pair_counts rows, so a query over whole hours reads one row per hour
-- rather than sixty (Store.Segments over a day reads ~25 rows per segment and
-- operation instead of 1,440). last_seen is NULL while no count has reached
-- the row (latencies only). Anything that writes pair_counts must keep this
-- rollup; only Apply does.
--
-- Rows are ~0.5 KB and every current-hour row is rewritten on every flush, so
-- fillfactor leaves room for HOT updates (nothing updated is indexed).
CREATE TABLE latency_hours (
    experiment       text COLLATE "C" NOT NULL,
    operation        text COLLATE "C" NOT NULL,
    segment          text COLLATE "C" NOT NULL, -- after folding: may be 'other'
    hour             timestamptz NOT NULL,      -- start of the hour, UTC
    pairs            bigint      NOT NULL DEFAULT 0,
    divergent        bigint      NOT NULL DEFAULT 0,
    control_errors   bigint      NOT NULL DEFAULT 0,
    candidate_errors bigint      NOT NULL DEFAULT 0,
    skipped          bigint      NOT NULL DEFAULT 0,
    timeouts         bigint      NOT NULL DEFAULT 0,
    aa_pairs         bigint      NOT NULL DEFAULT 0,
    aa_divergent     bigint      NOT NULL DEFAULT 0,
    last_seen        timestamptz,               -- NULL: no counts yet
    control          bigint[]    NOT NULL DEFAULT '{}', -- report.Histogram.Encode
    candidate        bigint[]    NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment, operation, segment, hour)
) WITH (fillfactor = 50);

-- One experiment over a range of hours, all operations.
CREATE INDEX latency_hours_experiment_hour ON latency_hours (experiment, hour);

-- The rollup of what is already counted.
INSERT INTO latency_hours (experiment, operation, segment, hour, pairs, divergent, control_errors,
    candidate_errors, skipped, timeouts, aa_pairs, aa_divergent, last_seen)
SELECT experiment, operation, segment, date_trunc('hour', minute, 'UTC'),
    sum(pairs), sum(divergent), sum(control_errors), sum(candidate_errors), sum(skipped), sum(timeouts),
    sum(aa_pairs), sum(aa_divergent), max(last_seen)
FROM pair_counts
GROUP BY 1, 2, 3, 4;

-- Pairs per flag variant and targeting reason, per minute: the evidence that
-- the rollout flag served what it should. No segment: a variant is about the
-- flag, not the user's attributes.
CREATE TABLE variant_counts (
    experiment text COLLATE "C" NOT NULL,
    operation  text COLLATE "C" NOT NULL,
    variant    text COLLATE "C" NOT NULL, -- '' when the pair carried no flag
    reason     text COLLATE "C" NOT NULL, -- e.g. 'TARGETING_MATCH', 'SPLIT'
    minute     timestamptz NOT NULL,      -- start of the minute, UTC
    pairs      bigint      NOT NULL DEFAULT 0,
    divergent  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (experiment, operation, variant, reason, minute)
) WITH (fillfactor = 80);

CREATE INDEX variant_counts_experiment_minute ON variant_counts (experiment, minute);

-- Each experiment's promotion gate spec (a report.GateSpec as JSON), the
-- latest only. A spec may exist before the experiment has pairs.
CREATE TABLE gate_specs (
    experiment text COLLATE "C" PRIMARY KEY,
    spec       jsonb       NOT NULL,
    author     text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

---- create above / drop below ----

DROP TABLE gate_specs;
DROP TABLE variant_counts;
DROP TABLE latency_hours;
DROP FUNCTION parity_hist_add(bigint[], bigint[]);
