-- Segment definitions: per experiment, the user attributes a segment is made
-- of (a JSON array of names, in order) and how many distinct segments the
-- experiment admits before further ones fold into "other". Versioned like
-- diff rules: 1, 2, 3… per experiment, every version kept. Verifiers split
-- an experiment's pairs with its latest version; Apply folds with its cap.
CREATE TABLE segment_configs (
    experiment text COLLATE "C" NOT NULL,
    version    bigint      NOT NULL CHECK (version > 0),
    attrs      jsonb       NOT NULL,
    cap        integer     NOT NULL CHECK (cap > 0),
    author     text        NOT NULL DEFAULT '',
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment, version)
);

---- create above / drop below ----

DROP TABLE segment_configs;
