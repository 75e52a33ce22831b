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

A request of one draw whose names the client has ids for skips the function:
`ledger_draw_one_durable` (migration 7) makes the same decision and writes the same rows in one
plain statement between the lock and the barrier; the client now calls it as the function
`ledger_draw_one` (migration 9, same statement), which commits synchronously when no other
writer holds the lock and leaves the barrier to the client otherwise (`draw_one`). Many such
requests, gathered from client processes by the sequencer (`_sequencer`), go as one call of
`ledger_draw_set` (migration 8): one lock, one read, one write and one commit for the batch; the
sequencer called it as `ledger_draw_set_sync` (migration 10), whose commit waits for its flush,
then `ledger_draw_set_named` (migration 11), which also gives the names the clients had no id
for theirs, and now `ledger_draw_set_queued` (migration 12), which also says whether it waited
for the lock; a client with no sequencer sends such a request alone to it (`draw_named`).

The rare cases stay in Python: a replayed key and lapsed holds to sweep are answered `replay` /
`sweep` without writing, and the caller takes the general path. `tests/ledger` runs both paths
and checks they write the same rows; `verify` recomputes every hash in Python.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from aiexport.ledger._sql import WAL_BARRIER, WRITE_LOCK_KEY

if TYPE_CHECKING:
    from aiexport.ledger._db import Database

_RS = "\x1e"  # separates the requests of a batch call
ONE_ARGS = 15  # `ledger_draw_one`'s arguments, the fields of a one-draw request

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

# The texts of `texts` that `name_ids` has no id for get theirs, under the write lock, as
# `Writer.intern` gives them: `ledger_draw_packed` and `ledger_draw_batch` both run this loop.
_INTERN = """FOR k IN 1..cardinality(texts) LOOP
    CONTINUE WHEN name_ids[k] IS NOT NULL;
    SELECT x.id INTO name_id FROM ledger_names x WHERE x.name = texts[k];
    IF NOT FOUND THEN
        SELECT coalesce(max(x.id), 0) + 1 INTO name_id FROM ledger_names x;
        INSERT INTO ledger_names (id, name) VALUES (name_id, texts[k]);
    END IF;
    name_ids[k] := name_id;
END LOOP;
"""


def _with_intern(sql: str) -> str:
    """`sql` with each `@INTERN<n>@` line replaced by `_INTERN` indented by n spaces."""
    for n in (4, 12):
        sql = sql.replace(f"@INTERN{n}@\n", textwrap.indent(_INTERN, " " * n))
    return sql


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

LEDGER_DRAW_PACKED = _with_intern(
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
@INTERN4@
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

# Migration 6. Many requests' draws in one call, as `ledger_draw_packed` would append them one
# after another: the combining path (`_combine`). Each argument is one field per request,
# U+001E-separated (no text may hold U+001E either, `check_text`); within a field, lists are
# U+001F-separated as for `ledger_draw_packed`, an empty order or expiry is NULL, and the
# fingerprint is hex. Only the common shape comes here (no share cap, no account drawn twice in
# one request, at least one draw: the client sends the others to `ledger_draw_durable`).
#
# Under the lock, two statements read what the whole batch needs (the head, the earliest hold's
# expiry, the last transaction id, the keys already recorded, every account's balance); each
# request is then decided in order on balances as the accepted ones before it left them - one
# that would overdraw is refused and the next goes on - and the accepted ones' rows are written
# together, one INSERT per table, their values gathered a column at a time (arrays assigned by
# element, updated in place; composite rows would go through text I/O).
#
# Returns, per request in order and U+001E-separated, U+001F-separated fields: status, first_seq,
# last_seq, idx, used, lim, ids - as `ledger_draw_packed` returns them ('replay' also when the key
# is an earlier request's of the same batch).
LEDGER_DRAW_BATCH = _with_intern(
    """CREATE OR REPLACE FUNCTION ledger_draw_batch(
    p_kind text, p_key text, p_fp text, p_actor text, p_order text, p_txn text,
    p_created text, p_expires text, p_accounts text, p_amounts text, p_limits text,
    p_citations text, p_ids text
) RETURNS text LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    rs constant text := chr(30);
    us constant text := chr(31);
    kinds constant text[] := string_to_array(p_kind, chr(30));
    rkeys constant text[] := string_to_array(p_key, chr(30));
    fps constant text[] := string_to_array(p_fp, chr(30));
    actors constant text[] := string_to_array(p_actor, chr(30));
    orders constant text[] := string_to_array(p_order, chr(30), '');
    rtxns constant text[] := string_to_array(p_txn, chr(30));
    createds constant text[] := string_to_array(p_created, chr(30));
    expiries constant text[] := string_to_array(p_expires, chr(30), '');
    raccounts constant text[] := string_to_array(p_accounts, chr(30));
    ramounts constant text[] := string_to_array(p_amounts, chr(30));
    rlimits constant text[] := string_to_array(p_limits, chr(30));
    rcitations constant text[] := string_to_array(p_citations, chr(30));
    rids constant text[] := string_to_array(p_ids, chr(30));
    m constant integer := cardinality(kinds);
    results text[];
    replayed text[];
    head_seq bigint;
    prev text;
    cur bigint;
    txn_id bigint;
    earliest text;
    -- balances of the accounts drawn, as the accepted requests leave them
    b_acc text[];
    b_c bigint[];
    b_r bigint[];
    b_lim bigint[];
    b_cit text[];
    b_last bigint[];
    -- rows to write, a column at a time
    t_id bigint[];
    t_txn text[];
    t_created text[];
    e_seq bigint[];
    e_txn bigint[];
    e_kind smallint[];
    e_account bigint[];
    e_amount bigint[];
    e_order text[];
    e_actor bigint[];
    e_cit bigint[];
    e_exp text[];
    e_key text[];
    e_link bytea[];
    e_hash bytea[];
    h_seq bigint[];
    h_txn text[];
    h_acc text[];
    h_amount bigint[];
    h_exp text[];
    q_key text[];
    q_txn bigint[];
    q_fp bytea[];
    q_first bigint[];
    q_last bigint[];
    ne integer := 0;
    nh integer := 0;
    nq integer := 0;
    -- one request
    accounts text[];
    amounts bigint[];
    limits bigint[];
    citations text[];
    texts text[];
    name_ids bigint[];
    pos integer[];
    c bigint[];
    r bigint[];
    refused text;
    n integer;
    code integer;
    link bytea;
    digest bytea;
    name_id bigint;
    i integer;
    j integer;
    k integer;
BEGIN
    -- The write lock (`_sql.LOCK`); the commit does not wait for its flush (see `_db`).
    PERFORM pg_advisory_xact_lock(7294002), set_config('synchronous_commit', 'off', true);
    SELECT h.seq, h.hash, (SELECT min(o.expires_at) FROM ledger_holds o),
           (SELECT coalesce(max(t.id), 0) FROM ledger_txns t),
           (SELECT coalesce(array_agg(q.key), '{}') FROM ledger_requests q
             WHERE q.key = ANY(rkeys))
      INTO head_seq, prev, earliest, txn_id, replayed
      FROM ledger_chain_head h WHERE h.id = 1;
    -- Every account's balance, read at once (no row: zero, and no limit yet).
    SELECT array_agg(a.account), array_agg(coalesce(b.committed, 0)),
           array_agg(coalesce(b.reserved, 0)), array_agg(b.limit_micro), array_agg(b.citation)
      INTO b_acc, b_c, b_r, b_lim, b_cit
      FROM (SELECT DISTINCT unnest(string_to_array(array_to_string(raccounts, us), us))
              AS account) a
      LEFT JOIN ledger_balances b ON b.account = a.account;
    b_last := array_fill(NULL::bigint, ARRAY[cardinality(b_acc)]);
    cur := head_seq;
    FOR j IN 1..m LOOP
        IF rkeys[j] = ANY(replayed) THEN  -- recorded already, or earlier in this batch
            results[j] := 'replay';
            CONTINUE;
        END IF;
        IF earliest <= createds[j] THEN
            results[j] := 'sweep';
            CONTINUE;
        END IF;
        accounts := string_to_array(raccounts[j], us);
        amounts := string_to_array(ramounts[j], us)::bigint[];
        limits := string_to_array(rlimits[j], us, '')::bigint[];
        n := cardinality(accounts);
        -- Each account's balance after its draw (`Writer.draw_all`), then every cap in order.
        refused := NULL;
        FOR i IN 1..n LOOP
            k := array_position(b_acc, accounts[i]);
            pos[i] := k;
            IF kinds[j] = 'reserve' THEN
                c[i] := b_c[k]; r[i] := b_r[k] + amounts[i];
            ELSE
                c[i] := b_c[k] + amounts[i]; r[i] := b_r[k];
            END IF;
            IF refused IS NULL AND c[i] + r[i] > limits[i] THEN
                refused := concat_ws(us, 'limit', '', '', i - 1, c[i] + r[i], limits[i]);
            END IF;
        END LOOP;
        IF refused IS NOT NULL THEN
            results[j] := refused;
            CONTINUE;
        END IF;
        -- Accepted. Names new to `ledger_names` get their ids here, as `Writer.intern` does.
        citations := string_to_array(rcitations[j], us);
        name_ids := string_to_array(rids[j], us, '')::bigint[];
        IF array_position(name_ids, NULL) IS NOT NULL THEN
            texts := ARRAY[actors[j]] || accounts || citations;
@INTERN12@
            results[j] := array_to_string(name_ids, us);
        END IF;
        code := array_position(
            ARRAY['reserve', 'commit', 'release', 'void', 'attrition', 'adjustment'], kinds[j]) - 1;
        txn_id := txn_id + 1;
        t_id[nq + 1] := txn_id; t_txn[nq + 1] := rtxns[j]; t_created[nq + 1] := createds[j];
        link := decode(substr(prev, 1, 16), 'hex');
        FOR i IN 1..n LOOP
            cur := cur + 1;
            digest := sha256(convert_to(
                prev || us || cur || us || rtxns[j] || us || kinds[j] || us || accounts[i] || us
                || amounts[i] || us || coalesce(orders[j], '') || us || actors[j] || us
                || citations[i] || us || createds[j] || us || coalesce(expiries[j], '') || us
                || us || rkeys[j] || '#' || (i - 1), 'UTF8'));
            ne := ne + 1;
            e_seq[ne] := cur; e_txn[ne] := txn_id; e_kind[ne] := code;
            e_account[ne] := name_ids[1 + i]; e_amount[ne] := amounts[i];
            e_order[ne] := orders[j]; e_actor[ne] := name_ids[1];
            e_cit[ne] := name_ids[1 + n + i]; e_exp[ne] := expiries[j];
            e_key[ne] := rkeys[j] || '#' || (i - 1); e_link[ne] := link; e_hash[ne] := digest;
            IF kinds[j] = 'reserve' AND expiries[j] IS NOT NULL THEN
                nh := nh + 1;
                h_seq[nh] := cur; h_txn[nh] := rtxns[j]; h_acc[nh] := accounts[i];
                h_amount[nh] := amounts[i]; h_exp[nh] := expiries[j];
                earliest := least(earliest, expiries[j]);
            END IF;
            link := substring(digest FROM 1 FOR 8);
            prev := encode(digest, 'hex');
            k := pos[i];
            b_c[k] := c[i]; b_r[k] := r[i]; b_last[k] := cur;
            IF limits[i] IS NOT NULL THEN
                b_lim[k] := limits[i]; b_cit[k] := citations[i];
            END IF;
        END LOOP;
        nq := nq + 1;
        q_key[nq] := rkeys[j]; q_txn[nq] := txn_id; q_fp[nq] := decode(fps[j], 'hex');
        q_first[nq] := cur - n + 1; q_last[nq] := cur;
        replayed := replayed || rkeys[j];
        results[j] := concat_ws(us, 'ok', cur - n + 1, cur, '', '', '', results[j]);
    END LOOP;
    IF cur > head_seq THEN
        INSERT INTO ledger_txns (id, txn, created_at)
        SELECT * FROM unnest(t_id, t_txn, t_created);
        INSERT INTO ledger_entries (seq, txn, kind, account, amount, order_id, actor, citation,
                                    expires_at, ref_seq, idem_key, link, hash)
        SELECT d.seq, d.txn, d.kind, d.account, d.amount, d.order_id, d.actor, d.citation,
               d.expires_at, NULL, d.idem_key, d.link, d.hash
          FROM unnest(e_seq, e_txn, e_kind, e_account, e_amount, e_order, e_actor, e_cit, e_exp,
                      e_key, e_link, e_hash)
               AS d(seq, txn, kind, account, amount, order_id, actor, citation, expires_at,
                    idem_key, link, hash);
        INSERT INTO ledger_holds (seq, txn, account, amount, expires_at)
        SELECT * FROM unnest(h_seq, h_txn, h_acc, h_amount, h_exp);
        INSERT INTO ledger_balances (account, committed, reserved, limit_micro, citation, last_seq)
        SELECT d.account, d.c, d.r, d.lim, d.cit, d.last
          FROM unnest(b_acc, b_c, b_r, b_lim, b_cit, b_last) AS d(account, c, r, lim, cit, last)
         WHERE d.last IS NOT NULL
        ON CONFLICT (account) DO UPDATE SET committed = excluded.committed,
            reserved = excluded.reserved, limit_micro = excluded.limit_micro,
            citation = excluded.citation, last_seq = excluded.last_seq;
        INSERT INTO ledger_requests (key, txn, fingerprint, start_seq, first_seq, last_seq)
        SELECT d.key, d.txn, d.fp, d.first, d.first, d.last
          FROM unnest(q_key, q_txn, q_fp, q_first, q_last) AS d(key, txn, fp, first, last);
        UPDATE ledger_chain_head SET seq = cur, hash = prev WHERE id = 1;
    END IF;
    RETURN array_to_string(results, rs);
END
$fn$;

CREATE OR REPLACE PROCEDURE ledger_draw_batch_durable(
    p_kind text, p_key text, p_fp text, p_actor text, p_order text, p_txn text,
    p_created text, p_expires text, p_accounts text, p_amounts text, p_limits text,
    p_citations text, p_ids text, INOUT result text DEFAULT NULL
) LANGUAGE plpgsql AS $fn$
BEGIN
    result := ledger_draw_batch(p_kind, p_key, p_fp, p_actor, p_order, p_txn, p_created,
                                p_expires, p_accounts, p_amounts, p_limits, p_citations, p_ids);
    COMMIT;
    PERFORM pg_logical_emit_message(true, 'aiexport', '');
END
$fn$;
"""
)

BATCH_CALL = "CALL ledger_draw_batch_durable(" + ", ".join(["%s"] * 13) + ")"

# Migration 7. One draw on an account whose name, and the actor's and the citation's, have ids
# the client knows - the most common request - as one plain statement in a short procedure, not
# through `ledger_draw_packed`: that went through a table function and about forty PL/pgSQL
# statements and expressions, each with its executor start-up and plan checks. Here the
# procedure runs three statements (the lock, the draw, the barrier) and the client sends the
# entry's hash preimage after its position (`p_tail`, as `ledger_draw_packed` builds `tails[1]`).
# About half the server's work per reservation, and one round trip with one reply
# (`bench/ledger.py`).
#
# The draw statement starts once the lock is held, so its snapshot sees every earlier commit:
# the head, the balance, the last transaction id, the keys recorded and the holds are read as
# `ledger_draw_packed` reads them. It decides as `ledger_draw_packed` does and writes the same
# rows (nothing when it answers 'replay', 'sweep' or 'limit'); the commit is asynchronous and the
# WAL barrier follows, as in `ledger_draw_durable`.
#
# p_kind is the kind's code (0 reserve, 1 commit); p_expires NULL: no hold; p_limit NULL: no cap.
# Returns what `ledger_draw_durable` returns (`ids` NULL: every id was known).
_ONE_PARAMS = """    p_key text, p_fp bytea, p_order text, p_txn text, p_created text, p_expires text,
    p_kind smallint, p_account text, p_amount bigint, p_limit bigint, p_citation text,
    p_actor_id bigint, p_account_id bigint, p_citation_id bigint, p_tail text,
"""

# The draw, decided and written once the lock is held (see above).
_ONE_DRAW = """    WITH s AS (
        SELECT h.seq + 1 AS seq, h.hash AS prev,
               EXISTS (SELECT 1 FROM ledger_requests q WHERE q.key = p_key) AS replay,
               coalesce((SELECT min(o.expires_at) FROM ledger_holds o) <= p_created, false)
                   AS lapsed,
               (SELECT coalesce(max(x.id), 0) + 1 FROM ledger_txns x) AS txn_id,
               coalesce(b.committed, 0) + CASE WHEN p_kind = 0 THEN 0 ELSE p_amount END AS c,
               coalesce(b.reserved, 0) + CASE WHEN p_kind = 0 THEN p_amount ELSE 0 END AS r,
               coalesce(p_limit, b.limit_micro) AS lim,
               CASE WHEN p_limit IS NULL THEN b.citation ELSE p_citation END AS cit,
               encode(sha256(convert_to(h.hash || chr(31) || (h.seq + 1) || p_tail, 'UTF8')),
                      'hex') AS hash
          FROM ledger_chain_head h LEFT JOIN ledger_balances b ON b.account = p_account
         WHERE h.id = 1
    ), ok AS (
        SELECT * FROM s
         WHERE NOT s.replay AND NOT s.lapsed AND NOT coalesce(s.c + s.r > p_limit, false)
    ), t AS (
        INSERT INTO ledger_txns (id, txn, created_at) SELECT ok.txn_id, p_txn, p_created FROM ok
    ), e AS (
        INSERT INTO ledger_entries (seq, txn, kind, account, amount, order_id, actor, citation,
                                    expires_at, ref_seq, idem_key, link, hash)
        SELECT ok.seq, ok.txn_id, p_kind, p_account_id, p_amount, p_order, p_actor_id,
               p_citation_id, p_expires, NULL, p_key || '#0',
               decode(substr(ok.prev, 1, 16), 'hex'), decode(ok.hash, 'hex')
          FROM ok
    ), o AS (
        INSERT INTO ledger_holds (seq, txn, account, amount, expires_at)
        SELECT ok.seq, p_txn, p_account, p_amount, p_expires FROM ok
         WHERE p_kind = 0 AND p_expires IS NOT NULL
    ), b AS (
        INSERT INTO ledger_balances (account, committed, reserved, limit_micro, citation, last_seq)
        SELECT p_account, ok.c, ok.r, ok.lim, ok.cit, ok.seq FROM ok
        ON CONFLICT (account) DO UPDATE SET committed = excluded.committed,
            reserved = excluded.reserved, limit_micro = excluded.limit_micro,
            citation = excluded.citation, last_seq = excluded.last_seq
    ), q AS (
        INSERT INTO ledger_requests (key, txn, fingerprint, start_seq, first_seq, last_seq)
        SELECT p_key, ok.txn_id, p_fp, ok.seq, ok.seq, ok.seq FROM ok
    ), u AS (
        UPDATE ledger_chain_head h SET seq = ok.seq, hash = ok.hash FROM ok WHERE h.id = 1
    )
    SELECT CASE WHEN s.replay THEN 'replay' WHEN s.lapsed THEN 'sweep'
                WHEN s.c + s.r > p_limit THEN 'limit' ELSE 'ok' END,
           s.seq, s.seq, 0, s.c + s.r, p_limit
      INTO status, first_seq, last_seq, idx, used, lim FROM s;
"""

LEDGER_DRAW_ONE = f"""CREATE OR REPLACE PROCEDURE ledger_draw_one_durable(
{_ONE_PARAMS}    INOUT status text DEFAULT NULL, INOUT first_seq bigint DEFAULT NULL,
    INOUT last_seq bigint DEFAULT NULL, INOUT idx integer DEFAULT NULL,
    INOUT used bigint DEFAULT NULL, INOUT lim bigint DEFAULT NULL, INOUT ids text DEFAULT NULL
) LANGUAGE plpgsql AS $fn$
BEGIN
    -- The write lock (`_sql.LOCK`); the commit does not wait for its flush (see `_db`).
    PERFORM pg_advisory_xact_lock({WRITE_LOCK_KEY}),
            set_config('synchronous_commit', 'off', true);
{_ONE_DRAW}    COMMIT;
    PERFORM pg_logical_emit_message(true, 'aiexport', '');
END
$fn$;
"""


# Migration 9. `ledger_draw_one_durable` as a function that commits synchronously when no other
# writer holds the lock. The procedure always commits asynchronously and then runs the WAL
# barrier in a second transaction: right when writers queue for the lock (it is then not held
# through a flush), but with one writer that is a second transaction, and the procedure's
# machinery, for nothing (pgbench, one client: about a tenth more reservations per second this
# way). Here the lock is tried first. Free: the commit waits for its own flush, so an 'ok' is
# durable when the client reads it. Taken: the function waits for it and commits
# asynchronously, as the procedure does, and `durable` is false.
#
# The client runs the WAL barrier unless `durable` and the status is 'ok': after an
# asynchronous commit, and after an answer that wrote nothing ('limit', 'replay', 'sweep'), read
# from state whose flush may not have come yet (`Database._barrier`).
LEDGER_DRAW_ONE_FN = f"""CREATE OR REPLACE FUNCTION ledger_draw_one(
{_ONE_PARAMS}    OUT status text, OUT first_seq bigint, OUT last_seq bigint, OUT idx integer,
    OUT used bigint, OUT lim bigint, OUT ids text, OUT durable boolean
) LANGUAGE plpgsql AS $fn$
BEGIN
    durable := pg_try_advisory_xact_lock({WRITE_LOCK_KEY});
    IF NOT durable THEN
        PERFORM pg_advisory_xact_lock({WRITE_LOCK_KEY}),
                set_config('synchronous_commit', 'off', true);
    END IF;
{_ONE_DRAW}END
$fn$;
"""

ONE_FN_CALL = "SELECT * FROM ledger_draw_one(" + ", ".join(["%s"] * ONE_ARGS) + ")"


def draw_one(db: Database, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
    """`ledger_draw_one`'s answer, its `durable` column left out, durable itself: the WAL barrier
    follows unless the function committed synchronously a draw it wrote."""
    *row, durable = db.call(ONE_FN_CALL, params)
    if db.contention is not None:  # whether the lock was free (`SequencerClient.contended`)
        db.contention(durable != "t")
    if durable != "t" or row[0] != "ok":
        db.call(WAL_BARRIER, ())
    return tuple(row)


# The parts `ledger_draw_set` (migration 8) and `ledger_draw_set_sync` (migration 10) share: the
# signature and declarations, the read under the lock, and the write of every table (the
# balances' rows aside).
_SET_SIGNATURE = """    p_keys text, p_fps text, p_orders text, p_txns text, p_created text, p_expires text,
    p_kinds text, p_accounts text, p_amounts text, p_limits text, p_citations text,
    p_actor_ids text, p_account_ids text, p_citation_ids text, p_tails text,
    OUT statuses text, OUT seqs text, OUT useds text, OUT lims text
) LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
"""
_SET_DECLARE = """DECLARE
    rs constant text := chr(30);
    keys constant text[] := string_to_array(p_keys, rs);
    accounts constant text[] := string_to_array(p_accounts, rs);
    citations constant text[] := string_to_array(p_citations, rs);
    n constant integer := cardinality(keys);
    tails constant text[] := string_to_array(p_tails, rs);
    created constant text[] := string_to_array(p_created, rs);
    expires constant text[] := string_to_array(p_expires, rs, '');
    kinds constant smallint[] := string_to_array(p_kinds, rs)::smallint[];
    amounts constant bigint[] := string_to_array(p_amounts, rs)::bigint[];
    limits constant bigint[] := string_to_array(p_limits, rs, '')::bigint[];
    head bigint;
    h text;
    txn0 bigint;
    minexp text;
    st text[];
    c bigint[];
    r bigint[];
    b_lim bigint[];
    b_cit text[];
    replays boolean[];
    e_seq bigint[];
    e_link bytea[];
    e_hash bytea[];
    k integer := 0;
"""
_SET_READ = """    SELECT x.seq, x.hash, (SELECT coalesce(max(t.id), 0) FROM ledger_txns t),
           (SELECT min(o.expires_at) FROM ledger_holds o),
           (SELECT array_agg(EXISTS (SELECT 1 FROM ledger_requests q WHERE q.key = u.key)
                             ORDER BY u.i)
              FROM unnest(keys) WITH ORDINALITY AS u(key, i)),
           z.c, z.r, z.l, z.t
      INTO head, h, txn0, minexp, replays, c, r, b_lim, b_cit
      FROM ledger_chain_head x,
           (SELECT array_agg(b.committed ORDER BY u.i) AS c,
                   array_agg(b.reserved ORDER BY u.i) AS r,
                   array_agg(b.limit_micro ORDER BY u.i) AS l,
                   array_agg(b.citation ORDER BY u.i) AS t
              FROM unnest(accounts) WITH ORDINALITY AS u(account, i)
              LEFT JOIN ledger_balances b ON b.account = u.account) z
     WHERE x.id = 1;
    st := array_fill(NULL::text, ARRAY[n]);
    e_seq := array_fill(NULL::bigint, ARRAY[n]);
    e_link := array_fill(NULL::bytea, ARRAY[n]);
    e_hash := array_fill(NULL::bytea, ARRAY[n]);
"""
_SET_WRITE = """    WITH v AS (
        SELECT * FROM unnest(e_seq, kinds, string_to_array(p_account_ids, rs)::bigint[],
                             amounts, string_to_array(p_orders, rs, ''),
                             string_to_array(p_actor_ids, rs)::bigint[],
                             string_to_array(p_citation_ids, rs)::bigint[], expires, keys,
                             e_link, e_hash, string_to_array(p_txns, rs), created, accounts,
                             c, r, b_lim, b_cit, string_to_array(p_fps, rs), st, limits)
               AS v(seq, kind, account_id, amount, order_id, actor_id, citation_id, expires,
                    key, link, hash, txn, created, account, c, r, lim, cit, fp, st, p_limit)
    ), ok AS (
        SELECT v.*, txn0 + v.seq - head AS txn_id FROM v WHERE v.seq IS NOT NULL
    ), t AS (
        INSERT INTO ledger_txns (id, txn, created_at)
        SELECT ok.txn_id, ok.txn, ok.created FROM ok
    ), e AS (
        INSERT INTO ledger_entries (seq, txn, kind, account, amount, order_id, actor, citation,
                                    expires_at, ref_seq, idem_key, link, hash)
        SELECT ok.seq, ok.txn_id, ok.kind, ok.account_id, ok.amount, ok.order_id, ok.actor_id,
               ok.citation_id, ok.expires, NULL, ok.key || '#0', ok.link, ok.hash
          FROM ok
    ), o AS (
        INSERT INTO ledger_holds (seq, txn, account, amount, expires_at)
        SELECT ok.seq, ok.txn, ok.account, ok.amount, ok.expires FROM ok
         WHERE ok.kind = 0 AND ok.expires IS NOT NULL
    ), b AS (
        INSERT INTO ledger_balances (account, committed, reserved, limit_micro, citation, last_seq)
"""
_SET_WRITE_END = """        ON CONFLICT (account) DO UPDATE SET committed = excluded.committed,
            reserved = excluded.reserved, limit_micro = excluded.limit_micro,
            citation = excluded.citation, last_seq = excluded.last_seq
    ), q AS (
        INSERT INTO ledger_requests (key, txn, fingerprint, start_seq, first_seq, last_seq)
        SELECT ok.key, ok.txn_id, decode(ok.fp, 'hex'), ok.seq, ok.seq, ok.seq FROM ok
    ), u AS (
        UPDATE ledger_chain_head x SET seq = head + k, hash = h WHERE x.id = 1 AND k > 0
    )
    SELECT string_agg(v.st, rs), string_agg(coalesce(v.seq::text, ''), rs),
           string_agg((v.c + v.r)::text, rs), string_agg(coalesce(v.p_limit::text, ''), rs)
      INTO statuses, seqs, useds, lims FROM v;
"""
# A request decided (its key not repeated): replayed, a lapsed hold first, over its cap, or
# accepted and appended to the hash chain.
_SET_DECIDE = """        ELSIF replays[j] THEN
            st[j] := 'replay';
        ELSIF minexp <= created[j] THEN
            st[j] := 'sweep';
        ELSIF c[j] + r[j] > limits[j] THEN
            st[j] := 'limit';
        ELSE
            st[j] := 'ok';
            k := k + 1;
            e_seq[j] := head + k;
            e_link[j] := decode(substr(h, 1, 16), 'hex');
            h := encode(sha256(convert_to(h || chr(31) || (head + k) || tails[j], 'UTF8')),
                        'hex');
            e_hash[j] := decode(h, 'hex');
            IF kinds[j] = 0 AND expires[j] IS NOT NULL
               AND (minexp IS NULL OR expires[j] < minexp) THEN
                minexp := expires[j];
            END IF;
"""

# Migration 8. Many requests of one draw each - the shape `ledger_draw_one_durable` takes - in
# one transaction, for the sequencer (`_sequencer`), which gathers concurrent clients' requests
# and sends them as one call. What a call costs is mostly per statement and per transaction;
# here three statements serve the whole batch: the lock, one read of the head, the last
# transaction id, the earliest hold and every request's balance and key, and one write of every
# table. Between them, a loop decides each request in order as `ledger_draw_one_durable` would
# have decided it alone, and extends the hash chain. The function's plans are generic
# (`plan_cache_mode`): custom ones, planned again at every call, cost about a third more.
#
# Each request is decided as if sent alone, after the ones before it in the batch, except:
#   'defer'  its account or key is an earlier request's in this batch: nothing written, the
#            caller sends it again in a later call (the balance read here predates that request).
# A hold appended in the batch counts as a hold for the lapsed check of the requests after it.
#
# Arguments: field k of every request, U+001E-separated (NULL as empty; the fingerprint as hex),
# in `ledger_draw_one_durable`'s order. Returns four U+001E-separated lists, one item per
# request: the status, the entry's seq (empty unless 'ok'), the account's reserved plus
# committed with the draw, and the request's limit (empty: none).
LEDGER_DRAW_SET = f"""CREATE OR REPLACE FUNCTION ledger_draw_set(
{_SET_SIGNATURE}{_SET_DECLARE}BEGIN
    -- The write lock (`_sql.LOCK`); the commit does not wait for its flush (see `_db`).
    PERFORM pg_advisory_xact_lock({WRITE_LOCK_KEY}),
            set_config('synchronous_commit', 'off', true);
{_SET_READ}    FOR j IN 1..n LOOP
        c[j] := coalesce(c[j], 0) + CASE WHEN kinds[j] = 0 THEN 0 ELSE amounts[j] END;
        r[j] := coalesce(r[j], 0) + CASE WHEN kinds[j] = 0 THEN amounts[j] ELSE 0 END;
        IF limits[j] IS NOT NULL THEN
            b_lim[j] := limits[j];
            b_cit[j] := citations[j];
        END IF;
        IF j > 1 AND (accounts[j] = ANY (accounts[1:j - 1]) OR keys[j] = ANY (keys[1:j - 1]))
        THEN
            st[j] := 'defer';
{_SET_DECIDE}        END IF;
    END LOOP;
{_SET_WRITE}        SELECT ok.account, ok.c, ok.r, ok.lim, ok.cit, ok.seq FROM ok
{_SET_WRITE_END}END
$fn$;

CREATE OR REPLACE PROCEDURE ledger_draw_set_durable(
    p_keys text, p_fps text, p_orders text, p_txns text, p_created text, p_expires text,
    p_kinds text, p_accounts text, p_amounts text, p_limits text, p_citations text,
    p_actor_ids text, p_account_ids text, p_citation_ids text, p_tails text,
    INOUT statuses text DEFAULT NULL, INOUT seqs text DEFAULT NULL,
    INOUT useds text DEFAULT NULL, INOUT lims text DEFAULT NULL
) LANGUAGE plpgsql AS $fn$
BEGIN
    SELECT * INTO statuses, seqs, useds, lims
      FROM ledger_draw_set(p_keys, p_fps, p_orders, p_txns, p_created, p_expires, p_kinds,
                           p_accounts, p_amounts, p_limits, p_citations, p_actor_ids,
                           p_account_ids, p_citation_ids, p_tails);
    COMMIT;
    PERFORM pg_logical_emit_message(true, 'aiexport', '');
END
$fn$;
"""

# Migration 10. The sequencer's batch function: `ledger_draw_set` with two differences.
#
# It commits synchronously (the caller's `synchronous_commit`, on by default). The procedure
# commits asynchronously and then runs the WAL barrier in a transaction of its own, so that the
# lock is not held through a flush while other writers queue for it. Behind a sequencer the
# other writers are few, and the sequencer waits for the flush either way: holding the lock
# through it costs nothing, and the second transaction, the procedure's machinery and the WAL
# writer's wake-up are saved. A call that wrote nothing has nothing to flush: its answers were
# read from state that may not be durable yet, and the caller runs the barrier (`_sequencer`).
#
# Requests on the same account are decided in one call, each on the balance the ones before it
# left, as they would be one after the other: a cap drawn by many clients at once (a country's
# allocation) is the common case, and deferring each repeat to a later call made the sequencer
# several times slower than no sequencer there. The account's running state is kept under the
# index of its first request (`array_position`); its row in `ledger_balances` is written once,
# from its last accepted request. A repeated key is still 'defer'.
LEDGER_DRAW_SET_SYNC = f"""CREATE OR REPLACE FUNCTION ledger_draw_set_sync(
{_SET_SIGNATURE}{_SET_DECLARE}    f integer;
    rc bigint[];
    rr bigint[];
    rl bigint[];
    rt text[];
BEGIN
    -- The write lock (`_sql.LOCK`), held until the commit is flushed.
    PERFORM pg_advisory_xact_lock({WRITE_LOCK_KEY});
{_SET_READ}    -- Each account's state so far, under the index of its first request: as read, then as its
    -- accepted requests leave it.
    rc := c;
    rr := r;
    rl := b_lim;
    rt := b_cit;
    FOR j IN 1..n LOOP
        f := array_position(accounts, accounts[j]);
        c[j] := coalesce(rc[f], 0) + CASE WHEN kinds[j] = 0 THEN 0 ELSE amounts[j] END;
        r[j] := coalesce(rr[f], 0) + CASE WHEN kinds[j] = 0 THEN amounts[j] ELSE 0 END;
        IF limits[j] IS NOT NULL THEN
            b_lim[j] := limits[j];
            b_cit[j] := citations[j];
        ELSE
            b_lim[j] := rl[f];
            b_cit[j] := rt[f];
        END IF;
        IF j > 1 AND keys[j] = ANY (keys[1:j - 1]) THEN
            st[j] := 'defer';
{_SET_DECIDE}            rc[f] := c[j];
            rr[f] := r[j];
            rl[f] := b_lim[j];
            rt[f] := b_cit[j];
        END IF;
    END LOOP;
{_SET_WRITE}        SELECT DISTINCT ON (ok.account) ok.account, ok.c, ok.r, ok.lim, ok.cit, ok.seq FROM ok
         ORDER BY ok.account, ok.seq DESC  -- an account's last accepted request of the batch
{_SET_WRITE_END}END
$fn$;
"""


def _derived(sql: str, *changes: tuple[str, str]) -> str:
    """`sql` with each (old, new) of `changes` made; each old text must occur exactly once."""
    for old, new in changes:
        if sql.count(old) != 1:
            raise AssertionError(f"not exactly once in the SQL: {old!r}")
        sql = sql.replace(old, new)
    return sql


# Migration 11. A name's id, under the write lock: the committed one, else the next, recorded now
# (as `Writer.intern` gives them).
LEDGER_NAME_ID = """CREATE OR REPLACE FUNCTION ledger_name_id(p_name text) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    i bigint;
BEGIN
    SELECT x.id INTO i FROM ledger_names x WHERE x.name = p_name;
    IF NOT FOUND THEN
        SELECT coalesce(max(x.id), 0) + 1 INTO i FROM ledger_names x;
        INSERT INTO ledger_names (id, name) VALUES (i, p_name);
    END IF;
    RETURN i;
END
$fn$;
"""

# Migration 11. The sequencer's batch function: `ledger_draw_set_sync`, but a request may come
# without the id of its actor, account or citation (empty: the client has not seen the name).
# An accepted request's missing ids are looked up, or given, under the lock (`ledger_name_id`),
# and returned as a fifth list, `ids`: "actor U+001F account U+001F citation" for each request
# that lacked one and was accepted, empty for the others, or NULL when every id came.
#
# A client learns a name's id the first time it uses it, and with ids only for names it had seen,
# each first use cost it a lookup (a round trip, with its own connection's turn for the CPU) and
# a name no one had used yet sent it past the sequencer to the general path. With 8 client
# processes drawing on 100 accounts, one reservation in ten paid that (`bench/ledger.py`).
LEDGER_DRAW_SET_NAMED = LEDGER_NAME_ID + _derived(
    LEDGER_DRAW_SET_SYNC,
    ("FUNCTION ledger_draw_set_sync(", "FUNCTION ledger_draw_set_named("),
    ("OUT lims text\n", "OUT lims text, OUT ids text\n"),
    (
        "    f integer;\n",
        """    f integer;
    actor_ids bigint[] := string_to_array(p_actor_ids, rs, '')::bigint[];
    account_ids bigint[] := string_to_array(p_account_ids, rs, '')::bigint[];
    citation_ids bigint[] := string_to_array(p_citation_ids, rs, '')::bigint[];
    named text[];
""",
    ),
    (
        "    END LOOP;\n    WITH v AS (",
        """    END LOOP;
    -- The names with no id of the requests accepted: looked up, or given the next id. (Counted:
    -- the list of one request with no id is empty, not {NULL}.)
    IF cardinality(array_remove(actor_ids || account_ids || citation_ids, NULL)) < 3 * n THEN
        named := array_fill(NULL::text, ARRAY[n]);
        FOR j IN 1..n LOOP
            CONTINUE WHEN e_seq[j] IS NULL OR actor_ids[j] IS NOT NULL
                          AND account_ids[j] IS NOT NULL AND citation_ids[j] IS NOT NULL;
            actor_ids[j] := coalesce(actor_ids[j],  -- the tail's 7th field (`_one_params`)
                                     ledger_name_id(split_part(tails[j], chr(31), 7)));
            account_ids[j] := coalesce(account_ids[j], ledger_name_id(accounts[j]));
            citation_ids[j] := coalesce(citation_ids[j], ledger_name_id(citations[j]));
            named[j] := actor_ids[j] || chr(31) || account_ids[j] || chr(31) || citation_ids[j];
        END LOOP;
    END IF;
    WITH v AS (""",
    ),
    (  # one index lookup per request: a generic plan's hash join read every balance
        "              LEFT JOIN ledger_balances b ON b.account = u.account) z\n",
        """              LEFT JOIN LATERAL (SELECT * FROM ledger_balances b WHERE b.account = u.account
                                 LIMIT 1) b ON true) z
""",
    ),
    ("string_to_array(p_account_ids, rs)::bigint[]", "account_ids"),
    ("string_to_array(p_actor_ids, rs)::bigint[]", "actor_ids"),
    ("string_to_array(p_citation_ids, rs)::bigint[]", "citation_ids"),
    (
        "      INTO statuses, seqs, useds, lims FROM v;\n",
        "      INTO statuses, seqs, useds, lims FROM v;\n    ids := array_to_string(named, rs, '');\n",
    ),
)

# Migration 12. `ledger_draw_set_named`, saying also whether the write lock was taken when the
# call came (`queued`), as `ledger_draw_one`'s `durable` does: a client's first use of a name
# goes this way (`draw_named`), and a client that keeps meeting other writers starts a sequencer
# (`SequencerClient.contended`). With 8 client processes drawing on 100 accounts, the first
# round of the accounts alone - a tenth of `bench/ledger.py`'s run - went by unnoticed.
LEDGER_DRAW_SET_QUEUED = _derived(
    LEDGER_DRAW_SET_NAMED.removeprefix(LEDGER_NAME_ID),
    ("FUNCTION ledger_draw_set_named(", "FUNCTION ledger_draw_set_queued("),
    ("OUT lims text, OUT ids text\n", "OUT lims text, OUT ids text, OUT queued boolean\n"),
    (
        f"    PERFORM pg_advisory_xact_lock({WRITE_LOCK_KEY});\n",
        f"""    queued := NOT pg_try_advisory_xact_lock({WRITE_LOCK_KEY});
    IF queued THEN
        PERFORM pg_advisory_xact_lock({WRITE_LOCK_KEY});
    END IF;
""",
    ),
)

SET_CALL = "SELECT * FROM ledger_draw_set_queued(" + ", ".join(["%s"] * ONE_ARGS) + ")"


def set_answers(n: int, row: tuple[str | None, ...]) -> list[tuple[str, ...]]:
    """Each of `n` requests' answer in the `row` of `ledger_draw_set_queued`, as
    `ledger_draw_one` answers (status, first and last seq, idx, used, limit, ids), NULL as
    empty."""
    statuses, seqs, useds, lims, ids, _queued = row
    lists = [(x or "").split(_RS) for x in (statuses, seqs, useds, lims)]
    named = ids.split(_RS) if ids is not None else [""] * n
    if any(len(x) != n for x in (*lists, named)):
        raise RuntimeError("ledger_draw_set_queued answered another number of requests")
    return [
        (st, seq, seq, "0", used, lim, name_ids)
        for st, seq, used, lim, name_ids in zip(*lists, named, strict=True)
    ]


def request_fields(params: tuple[str | bytes | None, ...]) -> list[str]:
    """`ledger_draw_one`'s arguments as the fields of a `ledger_draw_set_queued` batch (and of a
    sequencer's request frame): NULL as empty, the fingerprint as hex."""
    return [v.hex() if isinstance(v, bytes) else v or "" for v in params]


def draw_named(db: Database, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
    """`draw_one`'s answer for a request without the id of some of its names (its process has
    not seen them): `ledger_draw_set_queued` with a batch of one, which gives the names theirs
    and returns them (`ids`). Durable itself: the call's commit waits for its flush, so the WAL
    barrier follows only an answer that wrote nothing. One round trip, where a lookup first
    was two, and a name new to the ledger then took the general path (a procedure of two
    transactions)."""
    row = db.call(SET_CALL, tuple(request_fields(params)))
    if db.contention is not None:  # whether the lock was taken (`SequencerClient.contended`)
        db.contention(row[5] == "t")
    (answer,) = set_answers(1, row)
    if answer[0] != "ok":
        db.call(WAL_BARRIER, ())
    return tuple(f or None for f in answer)
