-- 012_sealed_version (issue 17, B11): a version per experiment that changes
-- whenever Apply writes anything of it into an hour before the hour the
-- database's clock is in. While it stays, every hour that ended more than an
-- hour ago holds what it held, so a reader may keep what it summed over
-- those hours ([Store]'s sealed-hour cache). From the sequence of version,
-- so it never repeats, even for an experiment written again.
ALTER TABLE experiments ADD COLUMN sealed_version bigint NOT NULL DEFAULT nextval('experiment_versions');

---- create above / drop below ----

ALTER TABLE experiments DROP COLUMN sealed_version;
