/* test_modelfile.c: model checkpoints round trip, and a checkpoint whose checksum is valid but whose
 * floats are NaN or Inf is refused (LSTM_E_NAN, naming the tensor); the config's regularization keys
 * (written only when set, read back exactly, refused out of range, absent in older files).
 *
 * Also a generator for the bats tests: `test_modelfile poison IN OUT TENSOR nan|inf` rewrites the
 * checkpoint IN as OUT with the first float of TENSOR (a parameter tensor, or optim.m) set to NaN or
 * +Inf and everything else kept, through lstm_modelfile_save, so its checksum is valid; `test_modelfile
 * plain IN OUT` rewrites it with dropout and every other regularizer off in its config, the rest kept
 * (the model evaluation must not tell apart from IN). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "modelfile.h"
#include "optim.h"
#include "rng.h"

static char dir[] = "/tmp/test_mfXXXXXX";

static void path_of(char *buf, const char *name) { snprintf(buf, 256, "%s/%s", dir, name); }

static const lstm_tensor_info *tensor(const lstm_model *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static int open_rc(const char *path, char *bad)
{
    lstm_modelfile f;
    int rc = lstm_modelfile_open(&f, path);
    snprintf(bad, 32, "%s", f.bad_tensor);
    if (!rc) lstm_modelfile_close(&f);
    return rc;
}

static void test_nonfinite(void)
{
    lstm_model_config c;
    lstm_model_config_default(&c);
    c.V = 12, c.E = 6, c.H = 6, c.L = 2;
    lstm_model m;
    CHECK_EQ_INT(lstm_model_create(&m, &c), 0);
    lstm_rng rng;
    lstm_rng_seed(&rng, 7);
    lstm_model_init_params(&m, &rng);
    lstm_optim opt;
    CHECK_EQ_INT(lstm_optim_init(&opt, LSTM_OPT_ADAM, m.n_params), 0);
    const uint8_t tok[4] = {1, 2, 3, 4};
    lstm_modelfile_save_args a = {&m, tok, sizeof tok, "epoch=1\n", &opt, NULL, NULL};
    char p[256], bad[32];

    path_of(p, "ok.ckpt");
    CHECK_EQ_INT(lstm_modelfile_save(p, 0, &a), 0);
    CHECK_EQ_INT(open_rc(p, bad), 0);
    CHECK(bad[0] == 0);

    /* One NaN in the last element of l1.w_hh: the checksum is fine, the model is refused. */
    const lstm_tensor_info *t = tensor(&m, "l1.w_hh");
    CHECK(t != NULL);
    float keep = m.params[t->offset + t->size - 1];
    m.params[t->offset + t->size - 1] = NAN;
    path_of(p, "nan.ckpt");
    CHECK_EQ_INT(lstm_modelfile_save(p, 0, &a), 0);
    lstm_ck *ck;
    CHECK_EQ_INT(lstm_ck_open(&ck, p), 0);
    lstm_ck_close(ck);
    CHECK_EQ_INT(open_rc(p, bad), LSTM_E_NAN);
    CHECK(!strcmp(bad, "l1.w_hh"));
    m.params[t->offset + t->size - 1] = keep;

    /* -Inf in the embedding, and every parameter NaN: the first tensor is named. */
    m.params[tensor(&m, "emb")->offset + 3] = -INFINITY;
    path_of(p, "inf.ckpt");
    CHECK_EQ_INT(lstm_modelfile_save(p, 0, &a), 0);
    CHECK_EQ_INT(open_rc(p, bad), LSTM_E_NAN);
    CHECK(!strcmp(bad, "emb"));
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = NAN;
    path_of(p, "allnan.ckpt");
    CHECK_EQ_INT(lstm_modelfile_save(p, 0, &a), 0);
    CHECK_EQ_INT(open_rc(p, bad), LSTM_E_NAN);
    CHECK(!strcmp(bad, "emb"));
    lstm_rng_seed(&rng, 7);
    lstm_model_init_params(&m, &rng);

    /* Finite weights, a NaN optimizer moment (what --resume would continue from). */
    opt.v[5] = NAN;
    path_of(p, "optim.ckpt");
    CHECK_EQ_INT(lstm_modelfile_save(p, 0, &a), 0);
    CHECK_EQ_INT(open_rc(p, bad), LSTM_E_NAN);
    CHECK(!strcmp(bad, "optim.v"));
    opt.v[5] = 0;

    /* The largest finite float and subnormals are finite. */
    m.params[0] = 3.4028235e38f;
    m.params[1] = 1e-45f;
    path_of(p, "big.ckpt");
    CHECK_EQ_INT(lstm_modelfile_save(p, 0, &a), 0);
    CHECK_EQ_INT(open_rc(p, bad), 0);

    lstm_optim_free(&opt);
    lstm_model_free(&m);
    const char *names[] = {"ok.ckpt", "nan.ckpt", "inf.ckpt", "allnan.ckpt", "optim.ckpt", "big.ckpt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        path_of(p, names[i]);
        unlink(p);
    }
}

/* name NULL: no poison, the regularization off instead. */
static int poison(const char *in, const char *out, const char *name, const char *what)
{
    lstm_modelfile f;
    int rc = lstm_modelfile_open(&f, in);
    if (rc) {
        fprintf(stderr, "test_modelfile: %s: %s\n", in, lstm_strerror(rc));
        return 1;
    }
    float v = !strcmp(what, "inf") ? INFINITY : NAN;
    lstm_model m;
    lstm_model_config cfg = f.model.cfg;
    if (!name) {
        lstm_model_config plain;
        lstm_model_config_default(&plain);
        cfg.dropout = 0.0f, cfg.dropout_in = plain.dropout_in, cfg.dropout_hidden = plain.dropout_hidden;
        cfg.locked = 0, cfg.dropout_words = cfg.weight_drop = cfg.ar = cfg.tar = 0.0f;
    }
    if (lstm_model_create(&m, &cfg)) return 1;
    memcpy(m.params, f.model.params, m.n_params * sizeof(float));
    lstm_optim opt = {0};
    opt.n = m.n_params;
    if (f.optim_m) {
        opt.m = malloc(opt.n * sizeof(float));
        opt.v = malloc(opt.n * sizeof(float));
        if (!opt.m || !opt.v) return 1;
        memcpy(opt.m, f.optim_m, opt.n * sizeof(float));
        memcpy(opt.v, f.optim_v, opt.n * sizeof(float));
    }
    if (!name) {
    } else if (!strcmp(name, "optim.m") && opt.m) opt.m[0] = v;
    else if (!strcmp(name, "all")) for (size_t i = 0; i < m.n_params; i++) m.params[i] = v;
    else {
        const lstm_tensor_info *t = tensor(&m, name);
        if (!t) {
            fprintf(stderr, "test_modelfile: no tensor %s\n", name);
            return 1;
        }
        m.params[t->offset] = v;
    }
    char *train = f.train ? strndup(f.train, f.train_len) : NULL;
    char *prov = f.provenance ? strndup(f.provenance, f.provenance_len) : NULL;
    lstm_state st = {0};
    if (f.state_h) {
        st.L = f.model.cfg.L, st.B = f.state_B, st.H = f.model.cfg.H;
        st.h = (float *)f.state_h;
        st.c = (float *)f.state_c;
    }
    lstm_modelfile_save_args a = {&m, f.tokenizer, f.tokenizer_len, train, opt.m ? &opt : NULL,
                                  f.state_h ? &st : NULL, prov};
    rc = lstm_modelfile_save(out, 1, &a);
    if (rc) fprintf(stderr, "test_modelfile: %s: %s\n", out, lstm_strerror(rc));
    free(train);
    free(prov);
    free(opt.m);
    free(opt.v);
    lstm_model_free(&m);
    lstm_modelfile_close(&f);
    return rc ? 1 : 0;
}

/* The regularization keys of the config entry. */
static void test_config_keys(void)
{
    lstm_model_config c, r;
    lstm_model_config_default(&c);
    c.V = 12, c.E = 6, c.H = 6, c.dropout = 0.25f;
    char buf[512];
    CHECK_EQ_INT(lstm_model_config_format(&c, buf, sizeof buf), 0);
    /* nothing set: the config of before, and it reads back with the defaults */
    CHECK(!strcmp(buf, "cell=lstm\nvocab=12\nemb=6\nhidden=6\nlayers=2\ntie=0\ndropout=0.25\nforget_bias=1\n"
                       "init_scale=0.100000001\n"));
    memset(&r, 0x5a, sizeof r);
    CHECK_EQ_INT(lstm_model_config_parse(&r, buf, strlen(buf)), 0);
    CHECK(r.dropout_in == -1.0f && r.dropout_hidden == -1.0f && r.locked == 0 && r.dropout_words == 0.0f);
    CHECK(r.weight_drop == 0.0f && r.ar == 0.0f && r.tar == 0.0f);
    CHECK(lstm_model_p_in(&r) == 0.25f && lstm_model_p_hidden(&r) == 0.25f);
    c.dropout_in = 0.65f, c.dropout_hidden = 0.0f, c.locked = 1, c.dropout_words = 0.1f, c.weight_drop = 0.5f;
    c.ar = 2.0f, c.tar = 1.0f;
    CHECK_EQ_INT(lstm_model_config_format(&c, buf, sizeof buf), 0);
    CHECK(strstr(buf, "\ndropout_in=0.649999976\ndropout_hidden=0\nlocked_dropout=1\ndropout_words=0.100000001\n"
                      "weight_drop=0.5\nar=2\ntar=1\n") != NULL);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(lstm_model_config_parse(&r, buf, strlen(buf)), 0);
    CHECK(r.dropout_in == c.dropout_in && r.dropout_hidden == 0.0f && r.locked == 1 && r.dropout_words == c.dropout_words);
    CHECK(r.weight_drop == 0.5f && r.ar == 2.0f && r.tar == 1.0f && lstm_model_p_hidden(&r) == 0.0f);
    static const char *bad[] = {"dropout_words=1", "weight_drop=-0.1", "dropout_in=-1", "dropout_hidden=1.5",
                                "locked_dropout=2", "ar=-1", "tar=x", "ar=nan"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char t[600];
        snprintf(t, sizeof t, "cell=lstm\nvocab=12\nemb=6\nhidden=6\nlayers=2\ntie=0\ndropout=0.25\nforget_bias=1\n"
                 "init_scale=0.1\n%s\n", bad[i]);
        if (lstm_model_config_parse(&r, t, strlen(t)) != LSTM_E_FORMAT) {
            fprintf(stderr, "%s:%d: config with %s was read\n", __FILE__, __LINE__, bad[i]);
            check_failures++;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "poison")) return poison(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 4 && !strcmp(argv[1], "plain")) return poison(argv[2], argv[3], NULL, "");
    if (argc != 1) {
        fprintf(stderr, "usage: test_modelfile [poison IN OUT TENSOR|all|optim.m nan|inf | plain IN OUT]\n");
        return 2;
    }
    if (!mkdtemp(dir)) return 1;
    test_nonfinite();
    test_config_keys();
    rmdir(dir);
    CHECK_DONE("test_modelfile");
}
