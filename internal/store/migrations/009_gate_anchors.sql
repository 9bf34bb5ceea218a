-- Gate anchors (docs/gate.md, "Anchors"): a named analysis — an Argo
-- AnalysisRun, a Flagger canary revision, a CI job — is anchored at the
-- minute of its first look, and every later look with the same name sums
-- counts from there, so the gate's guarantee holds over repeated looks.
CREATE TABLE gate_anchors (
    experiment  text COLLATE "C" NOT NULL,
    name        text COLLATE "C" NOT NULL,
    anchored_at timestamptz NOT NULL,
    PRIMARY KEY (experiment, name)
);
CREATE INDEX gate_anchors_anchored_at ON gate_anchors (anchored_at);

---- create above / drop below ----

DROP TABLE gate_anchors;
