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
-- journaling; a table watched in SQL with gateway.watch() is not listed (nor when
-- it is exposed later: it was watched already), and the gateway leaves it alone. (The demo table "todos" is not made here: gateway/db.py
-- creates it in demo mode only.)
CREATE TABLE IF NOT EXISTS gateway.exposed (
    tbl         oid PRIMARY KEY,         -- pg_class oid: follows a rename
    name        text NOT NULL,           -- as GATEWAY_EXPOSE named it, for people and log lines
    since       timestamptz NOT NULL DEFAULT now()
);

-- What pruning deleted that a resume needs to know. A cursor below pruned_through
-- (the highest id deleted) may have missed deleted events: its client is told to
-- refetch. A cursor at or above it may still have missed one: a row with a lower
-- id that committed after the cursor was delivered (a "late" row, which a resume
-- finds among the rows below the cursor whose tx >= the cursor row's tx_xmin) and
-- was deleted since. So the prune also keeps:
--   boundary_tx, boundary_xmin  tx and tx_xmin of the row pruned_through, so a
--                               cursor naming that deleted row can still resume;
--   late_tx, second_late_tx     the largest tx among the deleted rows, and the
--                               largest other than late_tx: so the largest deleted
--                               tx other than a cursor's own (a transaction's own
--                               rows are never late for it) is one or the other;
--   pruned_snapshot             the snapshot of the last prune that deleted rows:
--                               a row it does not see committed after every
--                               deleted row, which therefore cannot be late for it.
-- A cursor whose row is seen by pruned_snapshot and whose tx_xmin is at or below
-- a deleted tx of another transaction gets a refetch (gateway/journal.py,
-- resume_verdict). Both late columns may be above the truth (never below): after
-- an upgrade they are the transaction horizon of the moment.
CREATE TABLE IF NOT EXISTS gateway.retention (
    one_row         boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    pruned_through  bigint NOT NULL DEFAULT 0,
    boundary_tx     xid8,
    boundary_xmin   xid8,
    late_tx         xid8,
    second_late_tx  xid8,
    pruned_snapshot pg_snapshot
);
INSERT INTO gateway.retention DEFAULT VALUES ON CONFLICT DO NOTHING;

-- A retention table from before late_tx: what its prunes deleted is unknown, so
-- every cursor written before now is treated as possibly short (one refetch per
-- such client), unless nothing was ever pruned.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'gateway.retention'::regclass AND attname = 'late_tx' AND NOT attisdropped) THEN
        ALTER TABLE gateway.retention
            ADD COLUMN boundary_tx xid8, ADD COLUMN boundary_xmin xid8,
            ADD COLUMN late_tx xid8, ADD COLUMN pruned_snapshot pg_snapshot;
        UPDATE gateway.retention
           SET late_tx = pg_snapshot_xmax(pg_current_snapshot()), pruned_snapshot = pg_current_snapshot()
         WHERE pruned_through > 0;
    END IF;
END
$$;

-- A retention table whose late_tx left out the boundary row's transaction (no
-- second_late_tx): every deleted tx other than boundary_tx is at or below that
-- late_tx, which is therefore a sound second_late_tx.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'gateway.retention'::regclass AND attname = 'second_late_tx' AND NOT attisdropped) THEN
        ALTER TABLE gateway.retention ADD COLUMN second_late_tx xid8;
        UPDATE gateway.retention SET second_late_tx = late_tx, late_tx = greatest(late_tx, boundary_tx);
    END IF;
END
$$;

-- Delete one batch of journal rows older than max_age or beyond the newest
-- max_rows; return how many went. Short batches keep locks short, so writers
-- (who only ever insert new ids) never wait; the gateway calls it until it
-- returns 0. Concurrent callers (several gateways) skip instead of queueing.
--
-- The age limit never leaves the newest row's cursor refused: it stops below any
-- row that could be late for the newest row, and deletes nothing while a row an
-- earlier prune deleted could be (a transaction that stayed open keeps every later
-- row's tx_xmin low). So clients whose cursor is the newest id (up-to-date ones,
-- refetched ones, all of them after a quiet period that emptied the journal)
-- resume without a refetch, and while a writer transaction stays open the age
-- limit keeps what was written since it began. (Doing the same for every kept
-- row would need each row's tx_xmin, which no index holds; a cursor near the age
-- boundary gets a refetch instead.) The row limit is a limit: it deletes
-- regardless. What either deletes is recorded in gateway.retention, whose check
-- refuses the cursors for which a deleted row could be late.
CREATE OR REPLACE FUNCTION gateway.prune(max_age interval, max_rows bigint, batch integer DEFAULT 5000)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    kept    gateway.retention%ROWTYPE;
    oldest  bigint;
    by_age  bigint;
    by_rows bigint;
    cutoff  bigint;
    newest  record;
    risky   bigint;
    gone    record;
    top_tx  xid8;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1735549285) THEN
        RETURN 0;
    END IF;
    SELECT min(id) INTO oldest FROM gateway.journal;
    IF oldest IS NULL THEN
        RETURN 0;
    END IF;
    SELECT * INTO kept FROM gateway.retention;
    SELECT max(id) INTO by_age FROM (SELECT id, created_at FROM gateway.journal
                                      WHERE id < oldest + batch ORDER BY id) b
     WHERE created_at < now() - max_age;

    -- The age limit stops below any row that could be late for the newest row, and
    -- at once if a deleted one could be.
    IF by_age IS NOT NULL THEN
        SELECT id, tx, tx_xmin INTO newest FROM gateway.journal ORDER BY id DESC LIMIT 1;
        IF (CASE WHEN kept.late_tx <> newest.tx THEN kept.late_tx ELSE kept.second_late_tx END) >= newest.tx_xmin THEN
            by_age := NULL;
        ELSE
            SELECT min(id) INTO risky FROM gateway.journal
             WHERE id BETWEEN oldest AND least(by_age, newest.id - 1) AND tx >= newest.tx_xmin AND tx <> newest.tx;
            by_age := least(by_age, risky - 1);
        END IF;
    END IF;

    SELECT id INTO by_rows FROM gateway.journal ORDER BY id DESC OFFSET max_rows LIMIT 1;
    cutoff := greatest(by_age, CASE WHEN by_rows IS NOT NULL THEN least(by_rows, oldest + batch - 1) END);
    IF cutoff IS NULL OR cutoff < oldest THEN
        RETURN 0;
    END IF;

    WITH deleted AS (DELETE FROM gateway.journal WHERE id <= cutoff RETURNING id, tx, tx_xmin),
         top AS (SELECT id, tx, tx_xmin FROM deleted ORDER BY id DESC LIMIT 1),
         txs AS (SELECT DISTINCT tx FROM deleted ORDER BY tx DESC LIMIT 2)
    SELECT (SELECT count(*) FROM deleted)::integer AS n, top.id, top.tx, top.tx_xmin,
           (SELECT tx FROM txs ORDER BY tx DESC LIMIT 1) AS late_tx,
           (SELECT tx FROM txs ORDER BY tx DESC OFFSET 1 LIMIT 1) AS second_late_tx
      INTO gone
      FROM top;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    -- Merge the two largest txs deleted before with this round's: each pair bounds
    -- (the largest, the largest other than it), and so does the merged pair.
    top_tx := greatest(kept.late_tx, gone.late_tx);
    UPDATE gateway.retention
       SET late_tx = top_tx,
           second_late_tx = greatest(CASE WHEN kept.late_tx <> top_tx THEN kept.late_tx END, kept.second_late_tx,
                                     CASE WHEN gone.late_tx <> top_tx THEN gone.late_tx END, gone.second_late_tx),
           pruned_snapshot = pg_current_snapshot();
    IF gone.id > kept.pruned_through THEN  -- a new boundary row
        UPDATE gateway.retention SET pruned_through = gone.id, boundary_tx = gone.tx, boundary_xmin = gone.tx_xmin;
    END IF;
    RETURN gone.n;
END
$$;
