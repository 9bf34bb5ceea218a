-- Rollouts: per experiment, the plan the controller follows, how far it is
-- and a revision that grows with every change (providers ignore older
-- revisions). baseline is the controller's snapshot of the counts when the
-- current step was entered; the store keeps it opaque.
CREATE TABLE rollouts (
    experiment text COLLATE "C" PRIMARY KEY,
    flag       text COLLATE "C" NOT NULL UNIQUE,
    plan       jsonb       NOT NULL,
    step       integer     NOT NULL CHECK (step >= 0),
    status     text        NOT NULL,
    revision   bigint      NOT NULL CHECK (revision > 0),
    entered_at timestamptz NOT NULL,
    baseline   jsonb       NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The audit log: every change of a rollout, who made it, why, and the
-- evidence (detail) behind an automatic one. Rows are only ever inserted.
CREATE TABLE rollout_events (
    id         bigserial PRIMARY KEY,
    experiment text COLLATE "C" NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL,
    action     text        NOT NULL,
    cause      text        NOT NULL,
    from_step  integer     NOT NULL,
    to_step    integer     NOT NULL,
    status     text        NOT NULL,
    revision   bigint      NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    detail     jsonb
);
CREATE INDEX rollout_events_experiment ON rollout_events (experiment, id);

---- create above / drop below ----

DROP TABLE rollout_events;
DROP TABLE rollouts;
