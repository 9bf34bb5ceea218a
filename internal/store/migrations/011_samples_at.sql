-- 011_samples_at (issue 17, B6): samples lose their index on at alone.
-- Every sample Apply writes added an entry to it (a fifth of a sample's
-- index WAL); its only reader was Prune, which now deletes by experiment
-- and age through samples_experiment_at (every sample's experiment is a
-- row of experiments, which are never deleted).
DROP INDEX samples_at;

---- create above / drop below ----

CREATE INDEX samples_at ON samples (at);
