-- pg-sse-gateway: change capture. Idempotent: safe to apply on every start.
--
--   SELECT gateway.watch('public.todos');    -- start journaling a table's changes
--   SELECT gateway.unwatch('public.todos');  -- stop
--   SELECT gateway.publish('chat/room1', '{"text":"hi"}');  -- a custom event
--
-- Capture is statement-level with transition tables: a 10,000-row UPDATE runs one
-- INSERT ... SELECT into the journal and sends at most one notification, not
-- 10,000. The notification payload is the writer's transaction id, so every
-- statement of one transaction sends the same payload and Postgres folds them into
-- a single NOTIFY at commit; and none is sent while the listeners are polling
-- (see notify_statements below). The listener reads the rows from the journal, so a
-- row's size never meets NOTIFY's 8000-byte limit.

-- The topic of a table: its name, schema-qualified unless it lives in "public". Also
-- the table's name in /api and /events URLs (gateway/catalog.py asks this function).
CREATE OR REPLACE FUNCTION gateway.table_topic(tbl regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = tbl
$$;

-- A table's primary-key columns in key order (NULL without one): the journal's pk
-- (gateway.watch) and the REST handlers' key (gateway/catalog.py) both come from here.
CREATE OR REPLACE FUNCTION gateway.primary_key(tbl regclass) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(a.attname::text ORDER BY k.ord)
      FROM pg_index i
      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = tbl AND i.indisprimary
$$;

-- Wake the listeners at commit, but only when one is asleep.
--
-- NOTIFY makes Postgres serialise the commits of notifying transactions (a
-- cluster-wide lock held through the commit's WAL flush), which would cap
-- concurrent single-row writers at a fraction of their untriggered rate. So a
-- listener that has nothing to do holds the wake lock (advisory lock 1735549286,
-- exclusive, session-level) and waits for a notification; while changes keep
-- coming it releases the lock and polls the journal instead. A writer that can
-- take the lock shared is not needed to wake anyone: it holds the lock until it
-- commits, which keeps every listener from going back to sleep before this
-- transaction's rows are visible to its final read. A writer that cannot take it
-- notifies. (gateway/listener.py has the listener's side.)
--
-- gateway.notify = off (SET, ALTER ROLE ... SET, ALTER DATABASE ... SET, or
-- PGOPTIONS='-c gateway.notify=off') never notifies: its changes are journaled and
-- delivered at the listeners' next poll (GATEWAY_POLL_INTERVAL) or the next
-- notification from anyone else. gateway.notify = always notifies on every commit,
-- for LISTEN clients of your own on channel gateway_journal.
--
-- The decision is plpgsql text, inlined into each generated capture function by
-- gateway.watch() (a function call per captured statement cost about 8 us) and
-- the body of notify_journal() for gateway.publish(): one definition for both.
CREATE OR REPLACE FUNCTION gateway.notify_statements() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
SELECT $code$
    IF coalesce(current_setting('gateway.notify', true), '') = 'always'
       OR (coalesce(current_setting('gateway.notify', true), '') <> 'off'
           AND NOT pg_try_advisory_xact_lock_shared(1735549286)) THEN  -- held: a listener sleeps
        PERFORM pg_notify('gateway_journal', pg_current_xact_id()::text);
    END IF;
$code$
$$;

DO $$
BEGIN
    EXECUTE format('CREATE OR REPLACE FUNCTION gateway.notify_journal() RETURNS void LANGUAGE plpgsql AS %L',
                   'BEGIN' || gateway.notify_statements() || 'END');
END
$$;

CREATE OR REPLACE FUNCTION gateway.drop_capture_triggers(tbl regclass) RETURNS void
LANGUAGE plpgsql SET client_min_messages = warning AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS gateway_capture_insert ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS gateway_capture_update ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS gateway_capture_delete ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS gateway_capture_truncate ON %s', tbl);
END
$$;

-- Stop capturing a table's changes (the journal keeps what it has).
CREATE OR REPLACE FUNCTION gateway.unwatch(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gateway.drop_capture_triggers(tbl);
    EXECUTE format('DROP FUNCTION IF EXISTS gateway.%I()', 'capture_' || tbl::oid);
END
$$;

-- Start capturing a table's changes into the journal. Re-running it is harmless
-- and refreshes the generated capture function (e.g. after a primary key change).
--
-- Each table gets its own generated trigger function with static SQL, so Postgres
-- plans the journal INSERT once per session instead of once per statement.
CREATE OR REPLACE FUNCTION gateway.watch(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    topic   text := gateway.table_topic(tbl);
    fn      text := format('gateway.%I', 'capture_' || tbl::oid);
    pk_cols text[];
    key_sql text;  -- the primary key as text, for t of either transition table
    body    text;
BEGIN
    pk_cols := gateway.primary_key(tbl);
    IF pk_cols IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', tbl
            USING HINT = 'gateway.watch() needs a primary key to name row topics and pair old and new rows',
                  ERRCODE = '55000';
    END IF;

    SELECT CASE WHEN count(*) = 1 THEN min(format('t.%I::text', c))
                ELSE 'concat_ws('','', ' || string_agg(format('t.%I::text', c), ', ') || ')' END
      INTO key_sql FROM unnest(pk_cols) AS c;

    -- SECURITY DEFINER: a writer that is not the gateway's user (an /api request runs
    -- as its token's role, SET LOCAL ROLE) needs no privilege on the gateway schema,
    -- and cannot write the journal other than through this trigger. Its search_path
    -- is fixed so no caller's schema can shadow a function or operator named below.
    -- Every name below is the table's alias (t), a transition table, or a subquery's
    -- own (n, o, k, r, ord), and each column of the user's table is reached through
    -- t.: the row is row_to_json(t.*), because a column named t would shadow the
    -- whole-row reference row_to_json(t), while t.* can only mean the row.
    body := format($f$
CREATE OR REPLACE FUNCTION %1$s() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO gateway.journal (topic, table_name, op, pk, "row")
        SELECT %2$L, %2$L, 'insert', %3$s, row_to_json(t.*) FROM gateway_new t;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Pair old and new rows by key; a key that changed is a delete of the old
        -- row topic and an insert of the new one.
        INSERT INTO gateway.journal (topic, table_name, op, pk, "row", old)
        SELECT %2$L, %2$L,
               (CASE WHEN o.k IS NULL THEN 'insert' WHEN n.k IS NULL THEN 'delete' ELSE 'update' END)::gateway.op,
               coalesce(n.k, o.k), n.r, o.r
          FROM (SELECT %3$s AS k, row_to_json(t.*) AS r, row_number() OVER () AS ord FROM gateway_new t) n
          FULL JOIN (SELECT %3$s AS k, row_to_json(t.*) AS r FROM gateway_old t) o ON o.k = n.k
         ORDER BY n.ord NULLS LAST;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO gateway.journal (topic, table_name, op, pk, old)
        SELECT %2$L, %2$L, 'delete', %3$s, row_to_json(t.*) FROM gateway_old t;
    ELSE
        INSERT INTO gateway.journal (topic, table_name, op) VALUES (%2$L, %2$L, 'truncate');
    END IF;
%4$s
    RETURN NULL;
END
$body$
$f$, fn, topic, key_sql, gateway.notify_statements());
    EXECUTE body;

    PERFORM gateway.drop_capture_triggers(tbl);
    EXECUTE format('CREATE TRIGGER gateway_capture_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS gateway_new FOR EACH STATEMENT EXECUTE FUNCTION %s()', tbl, fn);
    EXECUTE format('CREATE TRIGGER gateway_capture_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS gateway_old NEW TABLE AS gateway_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %s()', tbl, fn);
    EXECUTE format('CREATE TRIGGER gateway_capture_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS gateway_old FOR EACH STATEMENT EXECUTE FUNCTION %s()', tbl, fn);
    EXECUTE format('CREATE TRIGGER gateway_capture_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %s()', tbl, fn);
END
$$;

-- Publish a custom event to a topic, e.g. gateway.publish('chat/room1', '{"text":"hi"}').
-- Delivered like a row change (same journal, same ordering and resume rules) once
-- the calling transaction commits. Returns the event id.
CREATE OR REPLACE FUNCTION gateway.publish(topic text, payload json DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    -- The characters gateway/stream.py refuses in a topic (Python's \s, C0 controls,
    -- DEL) and the C1 controls, spelled out: [:space:] and [:cntrl:] follow the
    -- database's locale (in C.UTF-8 no-break spaces are neither; in C no character
    -- past ASCII is either). tests/test_shared_facts.py proves the two rules agree.
    IF topic IS NULL
       OR topic !~ '^[^\u0001-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,200}$' THEN
        RAISE EXCEPTION 'invalid topic %', quote_nullable(topic)
            USING HINT = 'a topic is 1 to 200 characters without spaces or control characters',
                  ERRCODE = '22023';
    END IF;
    INSERT INTO gateway.journal (topic, op, "row") VALUES (topic, 'publish', payload)
    RETURNING id INTO new_id;
    PERFORM gateway.notify_journal();
    RETURN new_id;
END
$$;
