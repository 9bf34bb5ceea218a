-- Reconciliation sweeps (docs/reconcile.md): which tables to compare, how
-- far the sweep got (checkpoint: the last key of the last committed chunk,
-- NULL before the first) and its counts so far. A chunk's counts, its
-- samples and signatures and the checkpoint are written in one transaction,
-- guarded by the checkpoint they start from, so every row counts once.
-- The runner holding a sweep renews its lease with every chunk; a sweep
-- whose runner died is taken over once the lease has expired.
CREATE TABLE reconcile_sweeps (
    id            bigserial PRIMARY KEY,
    experiment    text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    operation     text COLLATE "C" NOT NULL,
    spec          jsonb       NOT NULL,
    status        text        NOT NULL CHECK (status IN ('running', 'paused', 'cancelled', 'complete', 'failed')),
    error         text        NOT NULL DEFAULT '',
    checkpoint    text,
    chunks        bigint      NOT NULL DEFAULT 0,
    rows_done     bigint      NOT NULL DEFAULT 0,
    estimate      bigint      NOT NULL DEFAULT 0,
    counts        jsonb       NOT NULL DEFAULT '{}',
    owner         text        NOT NULL DEFAULT '',
    lease_until   timestamptz,
    created_by    text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX reconcile_sweeps_experiment ON reconcile_sweeps (experiment, id DESC);
CREATE INDEX reconcile_sweeps_runnable ON reconcile_sweeps (id) WHERE status = 'running';

---- create above / drop below ----

DROP TABLE reconcile_sweeps;
