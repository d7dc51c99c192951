-- The audit log's primary key becomes (at, id): inserts append at the index's
-- right-hand end instead of a random leaf page per row. One statement, so that
-- CockroachDB swaps the key in place (DROP CONSTRAINT followed by ADD
-- CONSTRAINT in the same statement) instead of keeping the old one as an index.
ALTER TABLE "audit_logs" DROP CONSTRAINT "audit_logs_pkey", ADD CONSTRAINT "audit_logs_pkey" PRIMARY KEY("at","id");
