/* The batch path's per-entry loop, compiled: `aiexport.ledger._writer.Writer._draw_batch_fast`
 * hands it the requests and gets back the same rows, request rows and chain head that its
 * Python loop (`_chain_py`) would have built. See `_chainc.pyi` for the contract.
 *
 * Why C: a batch of 100,000 entries is one SHA-256 of the chain hash's preimage, one SHA-256 of
 * a request's fingerprint and a few tuples per entry; in Python the interpreter's own work is
 * four times the hashing's. Everything that decides (what a draw adds, its limit, the checks
 * of texts) stays in Python: this loop only finds each draw's shape, made once per distinct
 * draw by Python, and any draw it cannot match it hands back to Python (`make_shape`).
 *
 * SHA-256 is OpenSSL's (the library Python's own hashlib uses).
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

/* A growable byte buffer on the C heap. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_add(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

/* UTF-8 of a str, or of `str(obj)` for anything else (the fingerprint has `str(order_id)`). */
static int buf_add_str(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *u;
    if (PyUnicode_CheckExact(s)) {
        u = PyUnicode_AsUTF8AndSize(s, &n);
        if (u == NULL) return -1;
        return buf_add(b, u, n);
    }
    PyObject *text = PyObject_Str(s);
    if (text == NULL) return -1;
    u = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = u == NULL ? -1 : buf_add(b, u, n);
    Py_DECREF(text);
    return rc;
}

static int buf_add_bytes(Buf *b, PyObject *o) {
    if (!PyBytes_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "shape parts must be bytes");
        return -1;
    }
    return buf_add(b, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
}

/* Decimal digits of v >= 0 into out (at least 20 bytes); returns their number. */
static int digits(long long v, char *out) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static int buf_add_ll(Buf *b, long long v) {
    char tmp[20];
    return buf_add(b, tmp, digits(v, tmp));
}

/* SHA-256 through OpenSSL's low-level calls: its one-shot `SHA256()` looks the digest up by
 * name on every call in OpenSSL 3, which costs more than the hashing. */
static void sha256(const char *data, Py_ssize_t len, unsigned char *out) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, (size_t)len);
    SHA256_Final(out, &ctx);
}

static const char HEX[] = "0123456789abcdef";

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void to_hex(const unsigned char *in, char *out, int n) {
    for (int i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
}

/* Attribute names, interned once: a request's and a draw's fields (`Draw`'s order, as in
 * `draw_fields`). */
static PyObject *S_KEY, *S_DRAWS, *S_ORDER_ID;
static PyObject *S_FIELDS[6];
static const char *FIELD_NAMES[6] = {"account", "amount", "limit", "citation", "max_share",
                                     "share_of"};

/* Shape tuple layout (made by `Writer._batch_shape`; items 4-6 are the str forms of 9-11,
 * for the Python loop). */
enum {
    SH_ACCOUNT = 0,    /* str */
    SH_ACCOUNT_ID = 1, /* int */
    SH_CITATION_ID = 2,
    SH_MICRO = 3,    /* int, 0 < m < 2**62 */
    SH_SIG = 7,      /* tuple: `draw_fields` of the draw the shape was made from */
    SH_SLOT = 8,     /* int: the account's index in the `added` / `last` lists */
    SH_PIECE = 9,    /* bytes: this draw's part of the fingerprint's preimage */
    SH_BEFORE = 10,  /* bytes: the chain preimage between the seq and the order id */
    SH_AFTER = 11,   /* bytes: the chain preimage between the order id and the entry's key */
    SH_LEN = 12
};

static int valid_key(PyObject *key) {
    /* Non-empty str without the unit separator (`check_text`'s rule for the fast path). */
    if (!PyUnicode_CheckExact(key) || PyUnicode_GET_LENGTH(key) == 0) return 0;
    return PyUnicode_FindChar(key, 0x1f, 0, PyUnicode_GET_LENGTH(key), 1) == -1;
}

typedef struct {
    PyObject *make_shape, *shapes;
    PyObject *chunks, *chunk, *out_requests, *out_receipts, *holds;
    /* Requests in chunks too: [their fingerprints, then key, first seq, last seq (None: no
     * entries) per request]; `fps` holds the current chunk's fingerprints. */
    PyObject *req_chunk;
    unsigned char *fps;
    Py_ssize_t req_in_chunk;
    /* The current chunk's hashes: the entry before it, then its own (`per` + 1 at most). */
    unsigned char *blob;
    Py_ssize_t in_chunk, per;
    PyObject *keys, *old_keys;
    PyObject *txn, *expires_at; /* for holds (NULL: not holds) */
    long long *added, *last;
    Py_ssize_t slots;
} State;

static int grow_slots(State *st, Py_ssize_t slot) {
    if (slot < st->slots) return 0;
    Py_ssize_t n = st->slots ? st->slots : 64;
    while (n <= slot) n *= 2;
    long long *a = PyMem_Realloc(st->added, (size_t)n * sizeof(long long));
    if (a == NULL) goto fail;
    st->added = a;
    long long *l = PyMem_Realloc(st->last, (size_t)n * sizeof(long long));
    if (l == NULL) goto fail;
    st->last = l;
    memset(st->added + st->slots, 0, (size_t)(n - st->slots) * sizeof(long long));
    memset(st->last + st->slots, 0, (size_t)(n - st->slots) * sizeof(long long));
    st->slots = n;
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

/* Whether draw `d`'s fields after its account equal `sig`'s (the fields it was made from):
 * 1, 0, or -1 on error. */
static int same_fields(PyObject *d, PyObject *sig) {
    for (int j = 1; j < 6; j++) {
        PyObject *v = PyObject_GetAttr(d, S_FIELDS[j]);
        if (v == NULL) return -1;
        PyObject *w = PyTuple_GET_ITEM(sig, j);
        int eq = v == w ? 1 : PyObject_RichCompareBool(v, w, Py_EQ);
        Py_DECREF(v);
        if (eq <= 0) return eq;
    }
    return 1;
}

/* The shape of draw `d`: the cached one if its fields match, else `make_shape(d)` (None: defer).
 * Returns a borrowed reference, Py_None to defer, or NULL on error. */
static PyObject *shape_of(State *st, PyObject *d) {
    PyObject *account = PyObject_GetAttr(d, S_FIELDS[0]);
    if (account == NULL) return NULL;
    PyObject *shape = PyDict_GetItemWithError(st->shapes, account);
    if (shape == NULL && PyErr_Occurred()) goto fail;
    if (shape != NULL) {
        int same = same_fields(d, PyTuple_GET_ITEM(shape, SH_SIG));
        if (same < 0) goto fail;
        if (same) {
            Py_DECREF(account);
            return shape;
        }
    }
    PyObject *made = PyObject_CallOneArg(st->make_shape, d);
    if (made == NULL) goto fail;
    if (made == Py_None) {
        Py_DECREF(made);
        Py_DECREF(account);
        return Py_None;
    }
    if (!PyTuple_Check(made) || PyTuple_GET_SIZE(made) != SH_LEN ||
        !PyTuple_Check(PyTuple_GET_ITEM(made, SH_SIG)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(made, SH_SIG)) != 6) {
        Py_DECREF(made);
        PyErr_SetString(PyExc_TypeError, "make_shape must return a shape tuple or None");
        goto fail;
    }
    int rc = PyDict_SetItem(st->shapes, account, made);
    Py_DECREF(made); /* the dict holds it */
    Py_DECREF(account);
    return rc < 0 ? NULL : made;
fail:
    Py_DECREF(account);
    return NULL;
}

/* A new chunk after entry `seq`: [hashes (set when closed), first seq, then five fields per
 * entry]. */
static int new_chunk(State *st, long long seq) {
    PyObject *first = PyLong_FromLongLong(seq + 1);
    if (first == NULL) return -1;
    Py_XSETREF(st->chunk, PyList_New(2));
    if (st->chunk == NULL) {
        Py_DECREF(first);
        return -1;
    }
    PyList_SET_ITEM(st->chunk, 0, Py_NewRef(Py_None));
    PyList_SET_ITEM(st->chunk, 1, first);
    st->in_chunk = 0;
    return 0;
}

/* The current chunk, ending with entry `seq`, to `chunks`; its last hash starts the next. */
static int close_chunk(State *st, long long seq) {
    Py_ssize_t n = st->in_chunk;
    PyObject *hashes = PyBytes_FromStringAndSize((const char *)st->blob, 32 * (n + 1));
    if (hashes == NULL) return -1;
    if (PyList_SetItem(st->chunk, 0, hashes) < 0) return -1; /* steals `hashes` */
    if (PyList_Append(st->chunks, st->chunk) < 0) return -1;
    memmove(st->blob, st->blob + 32 * n, 32);
    return new_chunk(st, seq);
}

/* The current chunk of requests to `out_requests`, and a new one. */
static int close_req_chunk(State *st) {
    if (st->req_chunk != NULL) {
        PyObject *fps = PyBytes_FromStringAndSize((const char *)st->fps, 32 * st->req_in_chunk);
        if (fps == NULL || PyList_SetItem(st->req_chunk, 0, fps) < 0) return -1;
        if (PyList_Append(st->out_requests, st->req_chunk) < 0) return -1;
    }
    Py_XSETREF(st->req_chunk, PyList_New(1));
    if (st->req_chunk == NULL) return -1;
    PyList_SET_ITEM(st->req_chunk, 0, Py_NewRef(Py_None));
    st->req_in_chunk = 0;
    return 0;
}

/* One request. Returns 1 done, 0 defer, -1 error. */
static int one_request(State *st, PyObject *r, Buf *pre, Buf *fp, const char *head,
                       Py_ssize_t head_len, char *prev_hex, long long *seq_io) {
    int rc = -1;
    PyObject *key = NULL, *draws = NULL, *order = NULL;
    key = PyObject_GetAttr(r, S_KEY);
    draws = key ? PyObject_GetAttr(r, S_DRAWS) : NULL;
    order = draws ? PyObject_GetAttr(r, S_ORDER_ID) : NULL;
    if (order == NULL) goto done;
    rc = 0;
    if (!valid_key(key)) goto done;
    if (order != Py_None && !valid_key(order)) goto done;
    int seen = PySet_Contains(st->keys, key);
    if (seen != 0) {
        rc = seen < 0 ? -1 : 0;
        goto done;
    }
    seen = PySet_Contains(st->old_keys, key);
    if (seen != 0) {
        rc = seen < 0 ? -1 : 0;
        goto done;
    }
    rc = -1;
    if (PySet_Add(st->keys, key) < 0) goto done;
    PyObject *seq_draws = PySequence_Fast(draws, "draws must be a sequence");
    if (seq_draws == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq_draws);
    PyObject **items = PySequence_Fast_ITEMS(seq_draws);
    long long seq = *seq_io;
    long long start = seq + 1;
    Py_ssize_t key_len, order_len = 0;
    const char *key_u = PyUnicode_AsUTF8AndSize(key, &key_len);
    const char *order_u = order == Py_None ? "" : PyUnicode_AsUTF8AndSize(order, &order_len);
    if (key_u == NULL || order_u == NULL) goto done_seq;
    fp->len = 0;
    if (buf_add(fp, head, head_len) < 0 || buf_add_str(fp, order) < 0) goto done_seq;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *shape = shape_of(st, items[i]);
        if (shape == NULL) goto done_seq;
        if (shape == Py_None) {
            rc = 0;
            goto done_seq;
        }
        PyObject *micro = PyTuple_GET_ITEM(shape, SH_MICRO);
        long long m = PyLong_AsLongLong(micro);
        Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, SH_SLOT));
        if (PyErr_Occurred() || grow_slots(st, slot) < 0) goto done_seq;
        if (buf_add_bytes(fp, PyTuple_GET_ITEM(shape, SH_PIECE)) < 0) goto done_seq;
        seq += 1;
        /* The entry's key: the request's + "#i". */
        char no[24];
        no[0] = '#';
        int no_len = 1 + digits((long long)i, no + 1);
        pre->len = 0;
        if (buf_add(pre, prev_hex, 64) < 0 || buf_add(pre, "\x1f", 1) < 0 ||
            buf_add_ll(pre, seq) < 0 || buf_add_bytes(pre, PyTuple_GET_ITEM(shape, SH_BEFORE)) < 0 ||
            buf_add(pre, order_u, order_len) < 0 ||
            buf_add_bytes(pre, PyTuple_GET_ITEM(shape, SH_AFTER)) < 0 ||
            buf_add(pre, key_u, key_len) < 0 || buf_add(pre, no, no_len) < 0)
            goto done_seq;
        unsigned char *digest = st->blob + 32 * (st->in_chunk + 1);
        sha256(pre->data, pre->len, digest);
        PyObject *idem = PyUnicode_FromStringAndSize(no, no_len);
        if (idem != NULL) Py_SETREF(idem, PyUnicode_Concat(key, idem));
        if (idem == NULL) goto done_seq;
        PyObject *fields[5] = {PyTuple_GET_ITEM(shape, SH_ACCOUNT_ID), micro, order,
                               PyTuple_GET_ITEM(shape, SH_CITATION_ID), idem};
        int bad = 0;
        for (int f = 0; f < 5 && !bad; f++) bad = PyList_Append(st->chunk, fields[f]) < 0;
        Py_DECREF(idem);
        if (!bad && st->holds != Py_None) {
            PyObject *seq_o = PyLong_FromLongLong(seq);
            PyObject *h = seq_o == NULL ? NULL
                                        : PyTuple_Pack(5, seq_o, st->txn,
                                                       PyTuple_GET_ITEM(shape, SH_ACCOUNT), micro,
                                                       st->expires_at);
            bad = h == NULL || PyList_Append(st->holds, h) < 0;
            Py_XDECREF(h);
            Py_XDECREF(seq_o);
        }
        if (bad) goto done_seq;
        to_hex(digest, prev_hex, 32);
        st->in_chunk += 1;
        if (st->in_chunk == st->per && close_chunk(st, seq) < 0) goto done_seq;
        if (__builtin_add_overflow(st->added[slot], m, &st->added[slot])) {
            rc = 0; /* past int64: the Python loop's integers decide */
            goto done_seq;
        }
        st->last[slot] = seq;
    }
    {
        sha256(fp->data, fp->len, st->fps + 32 * st->req_in_chunk);
        PyObject *start_o = PyLong_FromLongLong(start);
        PyObject *seq_o = PyLong_FromLongLong(seq);
        PyObject *rec = NULL;
        int bad = start_o == NULL || seq_o == NULL;
        if (!bad) {
            PyObject *fields[3] = {key, start_o, seq >= start ? seq_o : Py_None};
            for (int f = 0; f < 3 && !bad; f++) bad = PyList_Append(st->req_chunk, fields[f]) < 0;
            rec = bad ? NULL : PyTuple_Pack(3, key, start_o, seq_o);
            bad = rec == NULL || PyList_Append(st->out_receipts, rec) < 0;
        }
        Py_XDECREF(rec);
        Py_XDECREF(start_o);
        Py_XDECREF(seq_o);
        if (bad) goto done_seq;
        st->req_in_chunk += 1;
        if (st->req_in_chunk == st->per && close_req_chunk(st) < 0) goto done_seq;
    }
    *seq_io = seq;
    rc = 1;
done_seq:
    Py_DECREF(seq_draws);
done:
    Py_XDECREF(key);
    Py_XDECREF(draws);
    Py_XDECREF(order);
    return rc;
}

static PyObject *chain_batch(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *requests, *prev_o, *head_o;
    long long seq;
    State st = {0};
    if (!PyArg_ParseTuple(args, "OOO!O!LUUnOOO", &requests, &st.make_shape, &PyDict_Type,
                          &st.shapes, &PySet_Type, &st.old_keys, &seq, &prev_o, &head_o, &st.per,
                          &st.holds, &st.txn, &st.expires_at))
        return NULL;
    Py_ssize_t prev_len, head_len;
    const char *prev_u = PyUnicode_AsUTF8AndSize(prev_o, &prev_len);
    const char *head = PyUnicode_AsUTF8AndSize(head_o, &head_len);
    if (prev_u == NULL || head == NULL) return NULL;
    if (prev_len != 64 || st.per < 1 || st.per > 4096) {
        PyErr_SetString(PyExc_ValueError, "the chain head must be 64 hex digits, per 1 to 4096");
        return NULL;
    }
    if (st.holds != Py_None && !PyList_Check(st.holds)) {
        PyErr_SetString(PyExc_TypeError, "holds must be a list or None");
        return NULL;
    }
    char prev_hex[64];
    memcpy(prev_hex, prev_u, 64);
    PyObject *result = NULL;
    Buf pre = {0}, fp = {0};
    PyObject *reqs = PySequence_Fast(requests, "requests must be a sequence");
    st.keys = PySet_New(NULL);
    st.chunks = PyList_New(0);
    st.out_requests = PyList_New(0);
    st.out_receipts = PyList_New(0);
    st.blob = PyMem_Malloc((size_t)(32 * (st.per + 1)));
    st.fps = PyMem_Malloc((size_t)(32 * st.per));
    if (reqs == NULL || st.keys == NULL || !st.chunks || !st.out_requests || !st.out_receipts ||
        st.blob == NULL || st.fps == NULL || new_chunk(&st, seq) < 0 || close_req_chunk(&st) < 0)
        goto done;
    for (int i = 0; i < 32; i++) { /* the chain head's hash, from its hex digits */
        int hi = hex_value(prev_hex[2 * i]), lo = hex_value(prev_hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            PyErr_SetString(PyExc_ValueError, "the chain head must be 64 hex digits");
            goto done;
        }
        st.blob[i] = (unsigned char)(hi * 16 + lo);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(reqs);
    PyObject **items = PySequence_Fast_ITEMS(reqs);
    for (Py_ssize_t i = 0; i < n; i++) {
        int rc = one_request(&st, items[i], &pre, &fp, head, head_len, prev_hex, &seq);
        if (rc < 0) goto done;
        if (rc == 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    if (st.in_chunk > 0 && close_chunk(&st, seq) < 0) goto done;
    if (st.req_in_chunk > 0 && close_req_chunk(&st) < 0) goto done;
    {
        PyObject *added = PyList_New(st.slots), *last = PyList_New(st.slots);
        if (added == NULL || last == NULL) {
            Py_XDECREF(added);
            Py_XDECREF(last);
            goto done;
        }
        for (Py_ssize_t k = 0; k < st.slots; k++) {
            PyList_SET_ITEM(added, k, PyLong_FromLongLong(st.added[k]));
            PyList_SET_ITEM(last, k, PyLong_FromLongLong(st.last[k]));
        }
        PyObject *prev_new = PyUnicode_FromStringAndSize(prev_hex, 64);
        if (prev_new && !PyErr_Occurred()) {
            result = Py_BuildValue("(OOOONLNN)", st.chunks, st.out_requests, st.out_receipts,
                                   st.keys, prev_new, seq, added, last);
        } else {
            Py_XDECREF(prev_new);
            Py_DECREF(added);
            Py_DECREF(last);
        }
    }
done:
    PyMem_Free(pre.data);
    PyMem_Free(fp.data);
    PyMem_Free(st.added);
    PyMem_Free(st.last);
    Py_XDECREF(reqs);
    Py_XDECREF(st.keys);
    Py_XDECREF(st.chunks);
    Py_XDECREF(st.chunk);
    Py_XDECREF(st.req_chunk);
    PyMem_Free(st.blob);
    PyMem_Free(st.fps);
    Py_XDECREF(st.out_requests);
    Py_XDECREF(st.out_receipts);
    return result;
}

/* batch_texts(requests) -> (keys, accounts, citations, shared): one pass over a batch for
 * what must be read before its loop - its keys (to find replays), and the texts of its draws
 * (to load balances and intern names). `shared`: the accounts that shares are of (as
 * `_writer.batch_texts` in Python). */
static PyObject *batch_texts(PyObject *Py_UNUSED(self), PyObject *requests) {
    PyObject *result = NULL, *reqs = NULL;
    PyObject *keys = PyList_New(0), *accounts = PySet_New(NULL), *citations = PySet_New(NULL),
             *shared = PySet_New(NULL);
    if (!keys || !accounts || !citations || !shared) goto done;
    reqs = PySequence_Fast(requests, "requests must be a sequence");
    if (reqs == NULL) goto done;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(reqs); i++) {
        PyObject *r = PySequence_Fast_GET_ITEM(reqs, i);
        PyObject *key = PyObject_GetAttr(r, S_KEY);
        if (key == NULL) goto done;
        int bad = PyList_Append(keys, key) < 0;
        Py_DECREF(key);
        PyObject *draws = bad ? NULL : PyObject_GetAttr(r, S_DRAWS);
        PyObject *seq = draws ? PySequence_Fast(draws, "draws must be a sequence") : NULL;
        Py_XDECREF(draws);
        if (seq == NULL) goto done;
        for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq) && !bad; j++) {
            PyObject *d = PySequence_Fast_GET_ITEM(seq, j);
            PyObject *into[3] = {accounts, citations, shared};
            int fields[3] = {0, 3, 5}; /* account, citation, share_of */
            for (int f = 0; f < 3 && !bad; f++) {
                PyObject *v = PyObject_GetAttr(d, S_FIELDS[fields[f]]);
                int skip = v == NULL ? 0 : f == 2 && !PyObject_IsTrue(v); /* no share: None, "" */
                bad = v == NULL || (!skip && PySet_Add(into[f], v) < 0);
                Py_XDECREF(v);
            }
        }
        Py_DECREF(seq);
        if (bad) goto done;
    }
    result = PyTuple_Pack(4, keys, accounts, citations, shared);
done:
    Py_XDECREF(reqs);
    Py_XDECREF(keys);
    Py_XDECREF(accounts);
    Py_XDECREF(citations);
    Py_XDECREF(shared);
    return result;
}

static PyMethodDef methods[] = {
    {"batch_texts", batch_texts, METH_O,
     "batch_texts(requests) -> (keys, accounts, citations, shared)"},
    {"chain_batch", chain_batch, METH_VARARGS,
     "chain_batch(requests, make_shape, shapes, old_keys, seq, prev_hex, head, per, holds, txn, "
     "expires_at) -> (chunks, request chunks, receipts, keys, prev_hex, seq, added, last) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_chainc", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__chainc(void) {
    S_KEY = PyUnicode_InternFromString("key");
    S_DRAWS = PyUnicode_InternFromString("draws");
    S_ORDER_ID = PyUnicode_InternFromString("order_id");
    if (S_KEY == NULL || S_DRAWS == NULL || S_ORDER_ID == NULL) return NULL;
    for (int j = 0; j < 6; j++) {
        S_FIELDS[j] = PyUnicode_InternFromString(FIELD_NAMES[j]);
        if (S_FIELDS[j] == NULL) return NULL;
    }
    return PyModule_Create(&module);
}
