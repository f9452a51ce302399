/* test_checkpoint.c: checkpoint container round trip, views, and rejection of every damaged file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "hash.h"
#include "stream.h"

static char dir[] = "/tmp/test_ckXXXXXX";

static void path_of(char *buf, const char *name) { snprintf(buf, 256, "%s/%s", dir, name); }

static uint8_t *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size);
    *n = (size_t)st.st_size;
    if (read(fd, b, *n) != (ssize_t)*n) abort();
    close(fd);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (write(fd, b, n) != (ssize_t)n) abort();
    close(fd);
}

static int open_rc(const char *path)
{
    lstm_ck *ck;
    int rc = lstm_ck_open(&ck, path);
    if (!rc) lstm_ck_close(ck);
    return rc;
}

static void test_xxh64(void)
{
    /* The checksum stored in checkpoints must not change with the move to libxxhash: these values
     * were computed by the home-made XXH64 that checkpoint.c carried until then (and agree with
     * xxhsum -H64); they are now computed by libxxhash. */
    uint8_t pat[1000];
    for (int i = 0; i < 1000; i++) pat[i] = (uint8_t)((i * 7 + 3) % 256);
    CHECK(lstm_xxh64("", 0, 0) == 0xef46db3751d8e999ull);
    CHECK(lstm_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ull);
    CHECK(lstm_xxh64("The quick brown fox jumps over the lazy dog", 43, 0) == 0x0b242d361fda71bcull);
    CHECK(lstm_xxh64(pat, 37, 0) == 0xe32ef63802f5a3fdull);
    CHECK(lstm_xxh64(pat, 1000, 0) == 0x5f235fa033f1a3fbull);
    /* Streaming in odd pieces gives the one-shot value; digest leaves the state usable. */
    lstm_xxh64_state *s = lstm_xxh64_new(0);
    CHECK(s != NULL);
    if (!s) return;
    for (size_t off = 0, k = 1; off < 1000; off += k, k = k * 3 % 41 + 1) {
        lstm_xxh64_update(s, pat + off, off + k > 1000 ? 1000 - off : k);
        if (off == 0) CHECK(lstm_xxh64_digest(s) == lstm_xxh64(pat, 1, 0));
    }
    CHECK(lstm_xxh64_digest(s) == 0x5f235fa033f1a3fbull);
    lstm_xxh64_update(s, NULL, 0);
    CHECK(lstm_xxh64_digest(s) == 0x5f235fa033f1a3fbull);
    lstm_xxh64_free(s);
    lstm_xxh64_free(NULL);
    /* The table hash: deterministic, and it sees every byte. */
    CHECK(lstm_hash_bytes("abc", 3) == lstm_hash_bytes("abc", 3));
    CHECK(lstm_hash_bytes("abc", 3) != lstm_hash_bytes("abd", 3));
    CHECK(lstm_hash_bytes("abc", 3) != lstm_hash_bytes("abc", 2));
}

static void test_round_trip(void)
{
    char p[256];
    path_of(p, "a.ckpt");
    float params[16 + 7];
    for (int i = 0; i < 23; i++) params[i] = (float)i * 0.5f - 3.0f;
    const char *cfg = "cell=lstm\nhidden=200\n";
    lstm_ck_entry e[] = {
        {"config", LSTM_CK_BYTES, 0, {0}, cfg, strlen(cfg), NULL},
        {"params", LSTM_CK_F32, 1, {23}, params, sizeof params, NULL},
        {"emb", LSTM_CK_F32, 2, {4, 4}, params, 64, "params"},
        {"out.b", LSTM_CK_F32, 1, {7}, params + 16, 28, "params"},
    };
    CHECK(lstm_ck_write(p, 0, e, 4) == 0);
    CHECK(lstm_ck_is_checkpoint(p));
    CHECK(lstm_ck_write(p, 0, e, 4) == LSTM_E_EXISTS);
    CHECK(lstm_ck_write(p, 1, e, 4) == 0);
    /* The streaming writer's checksum: these exact bytes were summed to 4968b26787bec8b1 by the
     * home-made XXH64 this file was written with before libxxhash (392 bytes). */
    size_t fn;
    uint8_t *fb = slurp(p, &fn);
    CHECK_EQ_INT(fn, 392);
    CHECK(fn == 392 && lstm_get_u64(fb + fn - 8) == 0x4968b26787bec8b1ull);
    free(fb);
    /* A view that is not 64-byte aligned inside its owner, or outside it, is refused. */
    lstm_ck_entry bad = {"x", LSTM_CK_F32, 1, {1}, params + 1, 4, "params"};
    lstm_ck_entry e2[] = {e[1], bad};
    CHECK(lstm_ck_write(p, 1, e2, 2) == LSTM_E_ARG);

    lstm_ck *ck;
    CHECK(lstm_ck_open(&ck, p) == 0);
    CHECK_EQ_INT(lstm_ck_count(ck), 4);
    const lstm_ck_entry *c = lstm_ck_find(ck, "config");
    CHECK(c && c->type == LSTM_CK_BYTES && c->nbytes == strlen(cfg) && memcmp(c->data, cfg, c->nbytes) == 0);
    char v[32];
    CHECK(c && lstm_kv_get(c->data, c->nbytes, "hidden", v, sizeof v) == 0 && strcmp(v, "200") == 0);
    CHECK(c && lstm_kv_get(c->data, c->nbytes, "hid", v, sizeof v) == LSTM_E_NOTFOUND);
    const lstm_ck_entry *pp = lstm_ck_find(ck, "params"), *eb = lstm_ck_find(ck, "emb"), *ob = lstm_ck_find(ck, "out.b");
    CHECK(pp && eb && ob);
    if (pp && eb && ob) {
        CHECK(((uintptr_t)pp->data % 64) == 0 && ((uintptr_t)eb->data % 64) == 0 && ((uintptr_t)ob->data % 64) == 0);
        CHECK(memcmp(pp->data, params, sizeof params) == 0);
        CHECK(eb->data == pp->data); /* the view shares the owner's bytes */
        CHECK(ob->ndim == 1 && ob->dims[0] == 7 && ((const float *)ob->data)[6] == params[22]);
        CHECK(eb->ndim == 2 && eb->dims[0] == 4 && eb->dims[1] == 4);
    }
    CHECK(lstm_ck_find(ck, "nope") == NULL);
    lstm_ck_close(ck);

    /* A missing directory fails cleanly; nothing is left at the old path. */
    char q[256];
    path_of(q, "missing/dir.ckpt");
    CHECK(lstm_ck_write(q, 0, e, 4) == LSTM_E_IO && errno == ENOENT);
}

static void test_damage(void)
{
    char p[256], q[256];
    path_of(p, "a.ckpt");
    path_of(q, "bad.ckpt");
    size_t n;
    uint8_t *b = slurp(p, &n);
    /* Every single flipped bit, anywhere (header, data, padding, table, checksum), is rejected. */
    for (size_t i = 0; i < n; i++) {
        int bit = (int)(i * 5 % 8);
        b[i] ^= (uint8_t)(1 << bit);
        spit(q, b, n);
        int rc = open_rc(q);
        CHECK(rc == LSTM_E_CORRUPT || (i < 8 && rc == LSTM_E_MAGIC) || (i >= 8 && i < 24 && rc != 0));
        if (rc == 0) fprintf(stderr, "flip at %zu accepted\n", i);
        b[i] ^= (uint8_t)(1 << bit);
    }
    /* Every truncation is rejected. */
    for (size_t k = 0; k < n; k++) {
        spit(q, b, k);
        int rc = open_rc(q);
        CHECK(rc == LSTM_E_TRUNCATED || (k == 0 && rc == LSTM_E_EMPTY));
    }
    /* Extra bytes appended. */
    uint8_t *c = malloc(n + 1);
    memcpy(c, b, n);
    c[n] = 0;
    spit(q, c, n + 1);
    CHECK_EQ_INT(open_rc(q), LSTM_E_FORMAT);
    /* Crafted files with a valid checksum: an entry offset or size out of bounds, a future version. */
    uint64_t toff = lstm_get_u64(b + 32);
    /* First entry is "config": type, name_len, "config", ndim=0, offset, nbytes. */
    uint8_t *ent = b + toff + 2 + 6 + 1;
    uint64_t saved = lstm_get_u64(ent + 8);
    lstm_put_u64(ent + 8, toff); /* nbytes runs into the table */
    lstm_put_u64(b + n - 8, lstm_xxh64(b, n - 8, 0));
    spit(q, b, n);
    CHECK_EQ_INT(open_rc(q), LSTM_E_FORMAT);
    lstm_put_u64(ent + 8, saved);
    lstm_put_u64(ent, 65); /* misaligned offset */
    lstm_put_u64(b + n - 8, lstm_xxh64(b, n - 8, 0));
    spit(q, b, n);
    CHECK_EQ_INT(open_rc(q), LSTM_E_FORMAT);
    lstm_put_u64(ent, 0xFFFFFFFFFFFFFFC0ull); /* far outside the file */
    lstm_put_u64(b + n - 8, lstm_xxh64(b, n - 8, 0));
    spit(q, b, n);
    CHECK_EQ_INT(open_rc(q), LSTM_E_FORMAT);
    lstm_put_u32(b + 24, 1000); /* more entries than the table holds */
    lstm_put_u64(b + n - 8, lstm_xxh64(b, n - 8, 0));
    spit(q, b, n);
    CHECK_EQ_INT(open_rc(q), LSTM_E_FORMAT);
    lstm_put_u32(b + 8, 2);
    spit(q, b, n);
    CHECK_EQ_INT(open_rc(q), LSTM_E_VERSION);
    /* Not a checkpoint at all. */
    spit(q, (const uint8_t *)"hello, world\n", 13);
    CHECK_EQ_INT(open_rc(q), LSTM_E_MAGIC);
    CHECK(!lstm_ck_is_checkpoint(q));
    free(b);
    free(c);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    test_xxh64();
    test_round_trip();
    test_damage();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    CHECK_DONE("test_checkpoint");
}
