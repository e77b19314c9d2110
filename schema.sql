-- pg-sse-gateway: tables. Idempotent: safe to apply on every start.
--
-- Everything here lives in the schema "gateway": nothing is created elsewhere.
-- triggers.sql (applied after this file) holds the capture trigger and
-- gateway.watch().

CREATE SCHEMA IF NOT EXISTS gateway;

-- The journal: one row per captured change or gateway.publish() call, written in
-- the same transaction as the change, so a row exists if and only if the change
-- committed. Its id is the SSE event id (the client's resume cursor).
--
-- tx and tx_xmin make resume exact although ids are taken at insert time, not at
-- commit time: a transaction that can still commit an id lower than row N has a
-- transaction id at or above row N's tx_xmin (see README "Delivery guarantee").
-- What a journal row records. An enum rather than a CHECK constraint on text: a
-- CHECK is compiled afresh for every INSERT statement, which cost a single-row
-- write about 15 us (a quarter of the capture trigger's time); an enum value is
-- checked when the trigger's plan is made.
DO $$
BEGIN
    IF to_regtype('gateway.op') IS NULL THEN
        CREATE TYPE gateway.op AS ENUM ('insert', 'update', 'delete', 'truncate', 'publish');
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS gateway.journal (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx          xid8 NOT NULL DEFAULT pg_current_xact_id(),          -- the writer's transaction
    tx_xmin     xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),  -- its snapshot's xmin
    topic       text NOT NULL,           -- table topic ("todos") or custom topic
    table_name  text,                    -- NULL for gateway.publish()
    op          gateway.op NOT NULL,
    pk          text,                    -- primary key as text: the row topic is topic || '/' || pk
    "row"       json,                    -- json, not jsonb: keeps the row's text byte for byte
    old         json,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A journal made when op was text with a CHECK: convert it (rewrites the table once).
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute
         WHERE attrelid = 'gateway.journal'::regclass AND attname = 'op') = 'text'::regtype THEN
        ALTER TABLE gateway.journal DROP CONSTRAINT IF EXISTS journal_op_check;
        ALTER TABLE gateway.journal ALTER COLUMN op TYPE gateway.op USING op::gateway.op;
    END IF;
END
$$;

-- The listener asks "which rows did transactions that were in flight at my last
-- snapshot commit?": an index on tx answers that without scanning the journal.
CREATE INDEX IF NOT EXISTS journal_tx_idx ON gateway.journal (tx);

-- The tables the gateway watches because GATEWAY_EXPOSE names them, written by
-- apply_schema() in gateway/db.py. At start a gateway unwatches the tables listed
-- here that it no longer exposes, so a table taken out of GATEWAY_EXPOSE stops
-- journaling; a table watched in SQL with gateway.watch() is not listed, and the
-- gateway leaves it alone. (The demo table "todos" is not made here: gateway/db.py
-- creates it in demo mode only.)
CREATE TABLE IF NOT EXISTS gateway.exposed (
    tbl         oid PRIMARY KEY,         -- pg_class oid: follows a rename
    name        text NOT NULL,           -- as GATEWAY_EXPOSE named it, for people and log lines
    since       timestamptz NOT NULL DEFAULT now()
);

-- How far pruning has gone: a cursor at or below pruned_through may have lost
-- events, so its client is told to refetch instead of being resumed with a gap.
CREATE TABLE IF NOT EXISTS gateway.retention (
    one_row         boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    pruned_through  bigint NOT NULL DEFAULT 0
);
INSERT INTO gateway.retention DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Delete one batch of journal rows older than max_age or beyond the newest
-- max_rows; return how many went. Short batches keep locks short, so writers
-- (who only ever insert new ids) never wait; the gateway calls it until it
-- returns 0. Concurrent callers (several gateways) skip instead of queueing.
CREATE OR REPLACE FUNCTION gateway.prune(max_age interval, max_rows bigint, batch integer DEFAULT 5000)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    oldest  bigint;
    cutoff  bigint;
    deleted integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1735549285) THEN
        RETURN 0;
    END IF;
    SELECT min(id) INTO oldest FROM gateway.journal;
    IF oldest IS NULL THEN
        RETURN 0;
    END IF;
    SELECT greatest(
               (SELECT max(id) FROM (SELECT id, created_at FROM gateway.journal
                                      WHERE id < oldest + batch ORDER BY id) b
                 WHERE created_at < now() - max_age),
               (SELECT id FROM gateway.journal ORDER BY id DESC OFFSET max_rows LIMIT 1))
      INTO cutoff;
    IF cutoff IS NULL THEN
        RETURN 0;
    END IF;
    cutoff := least(cutoff, oldest + batch - 1);
    DELETE FROM gateway.journal WHERE id <= cutoff;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    UPDATE gateway.retention SET pruned_through = greatest(pruned_through, cutoff);
    RETURN deleted;
END
$$;
