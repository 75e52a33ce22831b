"""PostgreSQL: a request's draws appended by a function inside the database.

Writers are serialised by one lock (`_sql.LOCK`). Taken from the client, that lock is held
across two round trips and the client's own work between them; on a busy machine (more clients
than cores) that is several milliseconds per write, and it caps throughput however the commits'
flushes are shared. `ledger_draw_packed` (migration 4) does what `Writer.apply_draws` does for one
reservation or commitment - the same entries, hash chain, balances, holds and request row - in
one statement, so the lock is held only while the server runs it. It commits asynchronously and
the WAL barrier (`_db`) makes it durable before the caller is answered: the procedure
`ledger_draw_durable` (migration 5) runs both, the draw's commit then the barrier in a
transaction of its own, as one statement with one reply.

What it costs is mostly per statement run (executor start-up, plan checks), so the common case -
draws on distinct accounts without a share cap - runs few: the ids of names the client has not
seen and each entry's hash preimage bar its position are worked out before the lock; under it,
one statement takes the lock, one reads the chain head with the replay and lapsed-hold checks
and the first draw's balance (each further draw: one more balance read), and one writes the
transaction, entries, holds, balances, request and new head. Plans are generic
(`plan_cache_mode`): custom ones, planned again at every call, were a tenth of the server's time.
The draws arrive as U+001F-separated text (no text may hold U+001F, `check_text`), which the
client formats several times faster than arrays. Shares and repeated accounts go to
`ledger_draw_locked` (migration 3), as does an empty request.

The rare cases stay in Python: a replayed key and lapsed holds to sweep are answered `replay` /
`sweep` without writing, and the caller takes the general path. `tests/ledger` runs both paths
and checks they write the same rows; `verify` recomputes every hash in Python.
"""

from __future__ import annotations

# Migration 3's functions, as released: `ledger_draw_locked` still serves the general cases.

LEDGER_DRAW = """-- One request's draws appended to the ledger inside the database, as `Writer.apply_draws` does
-- (same entries, same hash chain, same balances, holds and request row): the write lock is then
-- held only while this function runs, never across a round trip to the client.
--
-- Returns (status, first_seq, last_seq, idx, used, lim):
--   'ok'      entries first_seq..last_seq appended, commit pending (asynchronous: see `_db`);
--   'replay'  the key is recorded already;  'sweep'  a hold has lapsed and must be released
--             first: nothing written, the client takes the general path for both;
--   'limit' / 'share'  draw number idx (0-based) would take its account to `used` past its limit
--             `lim` (or past its share): nothing written.
CREATE OR REPLACE FUNCTION ledger_draw_locked(
    p_kind text, p_key text, p_fp bytea, p_actor text, p_order text, p_txn text,
    p_created text, p_expires text, p_accounts text[], p_amounts bigint[], p_limits bigint[],
    p_citations text[], p_shares numeric[], p_share_of text[], p_ids bigint[],
    OUT status text, OUT first_seq bigint, OUT last_seq bigint, OUT idx integer,
    OUT used bigint, OUT lim bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    us constant text := chr(31);
    head_seq bigint;
    prev text;
    seq bigint;
    n integer := coalesce(array_length(p_accounts, 1), 0);
    names text[] := '{}';
    c bigint[] := '{}';
    r bigint[] := '{}';
    lims bigint[] := '{}';
    cits text[] := '{}';
    lasts bigint[] := '{}';
    touched boolean[] := '{}';
    ids bigint[] := '{}';
    texts text[];
    t text;
    i integer;
    j integer;
    k integer;
    txn_id bigint;
    name_id bigint;
    digest bytea;
    link bytea;
    col integer;
    code integer := array_position(
        ARRAY['reserve', 'commit', 'release', 'void', 'attrition', 'adjustment'], p_kind) - 1;
    row_c bigint;
    row_r bigint;
    row_lim bigint;
    row_cit text;
    base bigint;
    replay boolean;
    lapsed boolean;
BEGIN
    SELECT h.seq, h.hash,
           EXISTS (SELECT 1 FROM ledger_requests q WHERE q.key = p_key),
           coalesce((SELECT min(o.expires_at) FROM ledger_holds o) <= p_created, false)
      INTO head_seq, prev, replay, lapsed
      FROM ledger_chain_head h WHERE h.id = 1;
    IF replay THEN
        status := 'replay';
        RETURN;
    END IF;
    IF lapsed THEN
        status := 'sweep';
        RETURN;
    END IF;
    col := CASE p_kind WHEN 'reserve' THEN 1 WHEN 'commit' THEN 0 END;
    -- Balances of every account drawn or shared, as `Writer.load` reads them.
    FOR i IN 1..n LOOP
        FOREACH t IN ARRAY ARRAY[p_accounts[i], p_share_of[i]] LOOP
            CONTINUE WHEN t IS NULL OR t = ANY(names);
            SELECT b.committed, b.reserved, b.limit_micro, b.citation
              INTO row_c, row_r, row_lim, row_cit
              FROM ledger_balances b WHERE b.account = t;
            IF NOT FOUND THEN
                row_c := 0; row_r := 0; row_lim := NULL; row_cit := NULL;
            END IF;
            names := names || t; c := c || row_c; r := r || row_r;
            lims := lims || row_lim; cits := cits || row_cit; lasts := lasts || 0::bigint;
            touched := touched || false;
        END LOOP;
    END LOOP;
    -- Apply the draws in memory, then check every cap in draw order (`Writer.draw_all`).
    FOR i IN 1..n LOOP
        k := array_position(names, p_accounts[i]);
        IF col = 1 THEN r[k] := r[k] + p_amounts[i]; ELSE c[k] := c[k] + p_amounts[i]; END IF;
    END LOOP;
    FOR i IN 1..n LOOP
        k := array_position(names, p_accounts[i]);
        IF p_limits[i] IS NOT NULL THEN
            lims[k] := p_limits[i];
            cits[k] := p_citations[i];
            IF c[k] + r[k] > p_limits[i] THEN
                status := 'limit'; idx := i - 1; used := c[k] + r[k]; lim := p_limits[i];
                RETURN;
            END IF;
        END IF;
        IF p_shares[i] IS NOT NULL AND p_share_of[i] IS NOT NULL THEN
            j := array_position(names, p_share_of[i]);
            base := c[j] + r[j];
            IF (c[k] + r[k])::numeric > p_shares[i] * base THEN
                status := 'share'; idx := i - 1; used := c[k] + r[k]; lim := base;
                RETURN;
            END IF;
        END IF;
    END LOOP;
    -- Texts to `ledger_names` ids: `p_ids` were looked up before the lock (ids never change);
    -- the texts new then get theirs here, under the lock, as `Writer.intern` does.
    texts := ARRAY[p_actor] || p_accounts || p_citations;
    ids := p_ids;
    FOR k IN 1..array_length(texts, 1) LOOP
        CONTINUE WHEN ids[k] IS NOT NULL;
        SELECT x.id INTO name_id FROM ledger_names x WHERE x.name = texts[k];
        IF NOT FOUND THEN
            SELECT coalesce(max(x.id), 0) + 1 INTO name_id FROM ledger_names x;
            INSERT INTO ledger_names (id, name) VALUES (name_id, texts[k]);
        END IF;
        ids[k] := name_id;
    END LOOP;
    INSERT INTO ledger_txns (id, txn, created_at)
    SELECT coalesce(max(x.id), 0) + 1, p_txn, p_created FROM ledger_txns x
    RETURNING id INTO txn_id;
    seq := head_seq;
    FOR i IN 1..n LOOP
        seq := seq + 1;
        link := substring(decode(prev, 'hex') FROM 1 FOR 8);
        digest := sha256(convert_to(
            prev || us || seq || us || p_txn || us || p_kind || us || p_accounts[i] || us
            || p_amounts[i] || us || coalesce(p_order, '') || us || p_actor || us
            || p_citations[i] || us || p_created || us || coalesce(p_expires, '') || us || us
            || p_key || '#' || (i - 1), 'UTF8'));
        INSERT INTO ledger_entries (seq, txn, kind, account, amount, order_id, actor, citation,
                                    expires_at, ref_seq, idem_key, link, hash)
        VALUES (seq, txn_id, code, ids[1 + i], p_amounts[i], p_order, ids[1], ids[1 + n + i],
                p_expires, NULL, p_key || '#' || (i - 1), link, digest);
        IF col = 1 AND p_expires IS NOT NULL THEN
            INSERT INTO ledger_holds (seq, txn, account, amount, expires_at)
            VALUES (seq, p_txn, p_accounts[i], p_amounts[i], p_expires);
        END IF;
        prev := encode(digest, 'hex');
        k := array_position(names, p_accounts[i]);
        touched[k] := true;
        lasts[k] := seq;
    END LOOP;
    FOR k IN 1..coalesce(array_length(names, 1), 0) LOOP
        CONTINUE WHEN NOT touched[k];
        INSERT INTO ledger_balances (account, committed, reserved, limit_micro, citation, last_seq)
        VALUES (names[k], c[k], r[k], lims[k], cits[k], lasts[k])
        ON CONFLICT (account) DO UPDATE SET committed = excluded.committed,
            reserved = excluded.reserved, limit_micro = excluded.limit_micro,
            citation = excluded.citation, last_seq = excluded.last_seq;
    END LOOP;
    first_seq := head_seq + 1;
    last_seq := seq;
    INSERT INTO ledger_requests (key, txn, fingerprint, start_seq, first_seq, last_seq)
    VALUES (p_key, txn_id, p_fp, head_seq + 1,
            CASE WHEN n > 0 THEN head_seq + 1 END, CASE WHEN n > 0 THEN seq END);
    IF n > 0 THEN
        UPDATE ledger_chain_head SET seq = last_seq, hash = prev WHERE id = 1;
    END IF;
    status := 'ok';
END
$fn$;

CREATE OR REPLACE FUNCTION ledger_draw(
    p_kind text, p_key text, p_fp bytea, p_actor text, p_order text, p_txn text,
    p_created text, p_expires text, p_accounts text[], p_amounts bigint[], p_limits bigint[],
    p_citations text[], p_shares numeric[], p_share_of text[],
    OUT status text, OUT first_seq bigint, OUT last_seq bigint, OUT idx integer,
    OUT used bigint, OUT lim bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    ids bigint[];
BEGIN
    -- One index lookup per text (a join here is planned as a hash join over every name).
    SELECT array_agg((SELECT x.id FROM ledger_names x WHERE x.name = t.name) ORDER BY t.k)
      INTO ids
      FROM unnest(ARRAY[p_actor] || p_accounts || p_citations) WITH ORDINALITY AS t(name, k);
    PERFORM pg_advisory_xact_lock(7294002);  -- the write lock (`_sql.LOCK`)
    SELECT * INTO status, first_seq, last_seq, idx, used, lim FROM ledger_draw_locked(
        p_kind, p_key, p_fp, p_actor, p_order, p_txn, p_created, p_expires, p_accounts,
        p_amounts, p_limits, p_citations, p_shares, p_share_of, ids);
    -- The commit does not wait for its flush: the lock is free at once (see `_db`).
    PERFORM set_config('synchronous_commit', 'off', true);
END
$fn$;
"""

# Migration 4. Arguments as `ledger_draw`'s, but each list U+001F-separated text (an empty field
# of `p_limits` or `p_shares`, or one past its end, is NULL; `p_shares`/`p_share_of` are NULL
# when no draw has a share), and `p_ids` the `ledger_names` ids of the actor, the accounts and
# the citations as far as the client knows them. Returns what `ledger_draw` returns and `ids`,
# all of those ids, when the client did not know them all and the draws were written.
# The parameters of `ledger_draw_packed` and `ledger_draw_durable`.
PACKED_PARAMS = """    p_kind text, p_key text, p_fp bytea, p_actor text, p_order text, p_txn text,
    p_created text, p_expires text, p_accounts text, p_amounts text, p_limits text,
    p_citations text, p_shares text, p_share_of text, p_ids text,
"""

LEDGER_DRAW_PACKED = (
    "CREATE OR REPLACE FUNCTION ledger_draw_packed(\n"
    + PACKED_PARAMS
    + """    OUT status text, OUT first_seq bigint, OUT last_seq bigint, OUT idx integer,
    OUT used bigint, OUT lim bigint, OUT ids text
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    us constant text := chr(31);
    accounts constant text[] := string_to_array(p_accounts, chr(31));
    amounts constant bigint[] := string_to_array(p_amounts, chr(31))::bigint[];
    limits constant bigint[] := string_to_array(p_limits, chr(31), '')::bigint[];
    citations constant text[] := string_to_array(p_citations, chr(31));
    n constant integer := cardinality(accounts);
    texts constant text[] := ARRAY[p_actor] || accounts || citations;
    code constant integer := array_position(
        ARRAY['reserve', 'commit', 'release', 'void', 'attrition', 'adjustment'], p_kind) - 1;
    hold constant boolean := p_kind = 'reserve' AND p_expires IS NOT NULL;
    name_ids bigint[] := string_to_array(p_ids, chr(31), '')::bigint[];
    looked_up boolean := false;
    general boolean := n = 0 OR p_shares IS NOT NULL AND p_share_of IS NOT NULL;
    keys text[];
    tails text[];
    head_seq bigint;
    prev text;
    replay boolean;
    lapsed boolean;
    c bigint[];
    r bigint[];
    lims bigint[];
    cits text[];
    row_c bigint;
    row_r bigint;
    row_lim bigint;
    row_cit text;
    links bytea[];
    digests bytea[];
    digest bytea;
    link bytea;
    name_id bigint;
    i integer;
    k integer;
BEGIN
    -- Before the lock: the ids the client did not know (ids never change) and, per entry, its
    -- idempotency key and its hash preimage after the position (`_entries.hash_fields`).
    FOR k IN 1..cardinality(texts) LOOP
        CONTINUE WHEN name_ids[k] IS NOT NULL;
        SELECT x.id INTO name_id FROM ledger_names x WHERE x.name = texts[k];
        name_ids[k] := name_id;
        looked_up := true;
    END LOOP;
    FOR i IN 1..n LOOP
        general := general OR accounts[i] = ANY(accounts[1:i - 1]);
        keys[i] := p_key || '#' || (i - 1);
        tails[i] := us || p_txn || us || p_kind || us || accounts[i] || us || amounts[i] || us
            || coalesce(p_order, '') || us || p_actor || us || citations[i] || us || p_created
            || us || coalesce(p_expires, '') || us || us || keys[i];
    END LOOP;
    -- The write lock (`_sql.LOCK`); the commit does not wait for its flush, so the lock is
    -- free at once (see `_db`).
    PERFORM pg_advisory_xact_lock(7294002), set_config('synchronous_commit', 'off', true);
    IF general THEN
        SELECT * INTO status, first_seq, last_seq, idx, used, lim FROM ledger_draw_locked(
            p_kind, p_key, p_fp, p_actor, p_order, p_txn, p_created, p_expires, accounts,
            amounts, limits, citations, string_to_array(p_shares, us, '')::numeric[],
            string_to_array(p_share_of, us, ''), name_ids);
        RETURN;
    END IF;
    -- The head, the replay and lapsed-hold checks, and the first draw's balance.
    SELECT h.seq, h.hash,
           EXISTS (SELECT 1 FROM ledger_requests q WHERE q.key = p_key),
           coalesce((SELECT min(o.expires_at) FROM ledger_holds o) <= p_created, false),
           b.committed, b.reserved, b.limit_micro, b.citation
      INTO head_seq, prev, replay, lapsed, row_c, row_r, row_lim, row_cit
      FROM ledger_chain_head h LEFT JOIN ledger_balances b ON b.account = accounts[1]
     WHERE h.id = 1;
    IF replay THEN
        status := 'replay';
        RETURN;
    END IF;
    IF lapsed THEN
        status := 'sweep';
        RETURN;
    END IF;
    -- Each account's balance after its draw, as `Writer.draw_all` leaves it (no row: zero, and
    -- no limit yet); then every cap, in draw order.
    FOR i IN 1..n LOOP
        IF i > 1 THEN
            SELECT b.committed, b.reserved, b.limit_micro, b.citation
              INTO row_c, row_r, row_lim, row_cit
              FROM ledger_balances b WHERE b.account = accounts[i];
        END IF;
        row_c := coalesce(row_c, 0);
        row_r := coalesce(row_r, 0);
        IF p_kind = 'reserve' THEN
            row_r := row_r + amounts[i];
        ELSE
            row_c := row_c + amounts[i];
        END IF;
        IF limits[i] IS NOT NULL THEN
            row_lim := limits[i];
            row_cit := citations[i];
        END IF;
        c[i] := row_c; r[i] := row_r; lims[i] := row_lim; cits[i] := row_cit;
    END LOOP;
    FOR i IN 1..n LOOP
        IF c[i] + r[i] > limits[i] THEN
            status := 'limit'; idx := i - 1; used := c[i] + r[i]; lim := limits[i];
            RETURN;
        END IF;
    END LOOP;
    -- Texts new to `ledger_names` get their ids here, under the lock, as `Writer.intern` does.
    FOR k IN 1..cardinality(texts) LOOP
        CONTINUE WHEN name_ids[k] IS NOT NULL;
        SELECT x.id INTO name_id FROM ledger_names x WHERE x.name = texts[k];
        IF NOT FOUND THEN
            SELECT coalesce(max(x.id), 0) + 1 INTO name_id FROM ledger_names x;
            INSERT INTO ledger_names (id, name) VALUES (name_id, texts[k]);
        END IF;
        name_ids[k] := name_id;
    END LOOP;
    link := decode(substr(prev, 1, 16), 'hex');
    FOR i IN 1..n LOOP
        digest := sha256(convert_to(prev || us || (head_seq + i) || tails[i], 'UTF8'));
        links[i] := link;
        digests[i] := digest;
        link := substring(digest FROM 1 FOR 8);
        prev := encode(digest, 'hex');
    END LOOP;
    WITH x AS (
        INSERT INTO ledger_txns (id, txn, created_at)
        SELECT coalesce(max(t.id), 0) + 1, p_txn, p_created FROM ledger_txns t
        RETURNING id
    ), e AS (
        INSERT INTO ledger_entries (seq, txn, kind, account, amount, order_id, actor, citation,
                                    expires_at, ref_seq, idem_key, link, hash)
        SELECT head_seq + d.k, x.id, code, d.account, d.amount, p_order, name_ids[1],
               d.citation, p_expires, NULL, d.key, d.link, d.hash
          FROM x, unnest(name_ids[2:n + 1], amounts, name_ids[n + 2:2 * n + 1], keys, links,
                         digests) WITH ORDINALITY AS d(account, amount, citation, key, link, hash, k)
    ), h AS (
        INSERT INTO ledger_holds (seq, txn, account, amount, expires_at)
        SELECT head_seq + d.k, p_txn, d.account, d.amount, p_expires
          FROM unnest(accounts, amounts) WITH ORDINALITY AS d(account, amount, k)
         WHERE hold
    ), b AS (
        INSERT INTO ledger_balances (account, committed, reserved, limit_micro, citation, last_seq)
        SELECT d.account, d.c, d.r, d.lim, d.cit, head_seq + d.k
          FROM unnest(accounts, c, r, lims, cits) WITH ORDINALITY AS d(account, c, r, lim, cit, k)
        ON CONFLICT (account) DO UPDATE SET committed = excluded.committed,
            reserved = excluded.reserved, limit_micro = excluded.limit_micro,
            citation = excluded.citation, last_seq = excluded.last_seq
    ), q AS (
        INSERT INTO ledger_requests (key, txn, fingerprint, start_seq, first_seq, last_seq)
        SELECT p_key, x.id, p_fp, head_seq + 1, head_seq + 1, head_seq + n FROM x
    )
    UPDATE ledger_chain_head SET seq = head_seq + n, hash = prev WHERE id = 1;
    first_seq := head_seq + 1;
    last_seq := head_seq + n;
    IF looked_up THEN
        ids := array_to_string(name_ids, us);
    END IF;
    status := 'ok';
END
$fn$;
"""
)

# Migration 5. `ledger_draw_packed`, then its commit (asynchronous: the write lock is free at
# once), then the WAL barrier (`_db`) in a transaction of its own, committed synchronously: a
# procedure may end transactions, so the draw and its barrier are one statement, one round trip
# with one reply, not two. Returns what `ledger_draw_packed` returns. On an error in the draw,
# nothing is committed and no barrier is run (nothing is answered).
LEDGER_DRAW_DURABLE = (
    "CREATE OR REPLACE PROCEDURE ledger_draw_durable(\n"
    + PACKED_PARAMS
    + """    INOUT status text DEFAULT NULL, INOUT first_seq bigint DEFAULT NULL,
    INOUT last_seq bigint DEFAULT NULL, INOUT idx integer DEFAULT NULL,
    INOUT used bigint DEFAULT NULL, INOUT lim bigint DEFAULT NULL, INOUT ids text DEFAULT NULL
) LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT * INTO status, first_seq, last_seq, idx, used, lim, ids FROM ledger_draw_packed(
        p_kind, p_key, p_fp, p_actor, p_order, p_txn, p_created, p_expires, p_accounts,
        p_amounts, p_limits, p_citations, p_shares, p_share_of, p_ids);
    COMMIT;
    PERFORM pg_logical_emit_message(true, 'aiexport', '');
END
$fn$;
"""
)

CALL = "CALL ledger_draw_durable(" + ", ".join(["%s"] * 15) + ")"
