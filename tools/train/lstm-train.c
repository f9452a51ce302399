/* lstm-train: train an LSTM / GRU / RNN language model on a window stream and write a checkpoint. */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "dataset.h"
#include "fileio.h"
#include "model.h"
#include "modelfile.h"
#include "numparse.h"
#include "optim.h"
#include "rng.h"
#include "tokenizer.h"

#define PROG "lstm-train"
#define VERSION "1.0"

static volatile sig_atomic_t stop_requested;
static unsigned stop_grace = 30; /* seconds a stop may take before the process leaves anyway */

static void say(const char *msg) { ssize_t r = write(2, msg, strlen(msg)); (void)r; }

/* The first signal asks for a clean stop (finish the step, save the state); a second one, or the
 * grace period running out (a save that cannot finish, a stuck step), leaves at once, removing the
 * temp files being written: the checkpoints already on disk stay whole. */
static void on_signal(int sig)
{
    if (sig == SIGALRM) {
        say("\n" PROG ": did not stop within the grace period after the signal: leaving now, without saving\n");
        lstm_out_unlink_pending();
        _exit(130);
    }
    if (stop_requested) {
        say("\n" PROG ": second signal: leaving now; the last saved checkpoints are kept, the save in progress is "
            "discarded\n");
        lstm_out_unlink_pending();
        _exit(130);
    }
    stop_requested = sig;
    alarm(stop_grace);
}

static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [options] [WINDOWS]\n"
            "Train a language model on a window stream (from lstm-window), from WINDOWS or stdin.\n"
            "Writes the best model by validation loss to -o FILE (default model.ckpt) and the latest\n"
            "training state to FILE.last (for --resume).\n"
            "\n"
            "Data\n"
            "      --valid FILE       validation windows (same tokenizer)\n"
            "      --valid-frac F     without --valid: hold out the last F of the windows (default 0.05)\n"
            "      --mem-budget MB    stream a larger input file each epoch instead of loading it (default 2048)\n"
            "Model\n"
            "      --cell C           lstm (default), gru or rnn\n"
            "      --layers N         stacked cells (default 2)\n"
            "      --hidden H         hidden units (default 256)\n"
            "      --emb E            embedding size (default: H)\n"
            "      --tie / --no-tie   share embedding and output weights (default on when E = H)\n"
            "      --dropout P        dropout on embeddings, between layers and before the output (default 0.2)\n"
            "      --init-scale S     weights uniform in (-S, S) (default 0.1)\n"
            "      --forget-bias B    LSTM forget-gate bias at init (default 1)\n"
            "Optimisation (the loss is the mean NLL per target token)\n"
            "      --optim O          adam (default), adamw or sgd\n"
            "      --lr LR            learning rate (default 0.002 for adam/adamw, 20 for sgd)\n"
            "      --weight-decay W   L2 (sgd, adam) or decoupled (adamw) weight decay (default 0)\n"
            "      --clip C           clip the global gradient norm at C, 0 = off (default 0.25)\n"
            "      --schedule S       const, step, plateau (default) or cosine (to 0 over --epochs)\n"
            "      --lr-decay F       step/plateau: divide the learning rate by F (default 4 plateau, 2 step)\n"
            "      --decay-after K    step schedule: constant for K epochs, then / F each epoch (implies step)\n"
            "      --warmup N         linear warm-up over N steps (default 0)\n"
            "      --batch B          lanes per batch (default 20)\n"
            "      --epochs N         epochs (default 10)\n"
            "      --patience N       stop after N epochs without validation improvement, 0 = never (default 3)\n"
            "      --reset-state      zero the state at every window (default: carry it across consecutive windows)\n"
            "      --time-limit S     stop after S seconds of training (then validate and save)\n"
            "Run\n"
            "  -o, --output FILE      checkpoint (default model.ckpt)\n"
            "  -f, --force            overwrite an existing checkpoint\n"
            "      --resume FILE      continue exactly from a checkpoint (FILE or FILE.last) with its saved flags\n"
            "                         and validation data (the --valid file is opened again). Given again, these\n"
            "                         take the new value: --epochs --patience --lr --clip --weight-decay --schedule\n"
            "                         --lr-decay --decay-after --warmup --dropout --valid, and at an epoch boundary\n"
            "                         --batch --reset-state --valid-frac; as do -o --log --log-every --threads\n"
            "                         --time-limit --mem-budget -q. The model's --cell --layers --hidden --emb\n"
            "                         --tie/--no-tie --init-scale --forget-bias, --optim and --seed cannot change\n"
            "      --seed N           random seed (default 1)\n"
            "      --threads N        BLAS threads (default: all cores)\n"
            "      --log FILE.tsv     per-epoch and periodic per-step metrics\n"
            "      --log-every N      steps between per-step log rows (default 100)\n"
            "  -q, --quiet            no per-epoch lines\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n"
            "\n"
            "Examples:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-train\n"
            "  lstm-train --optim sgd --lr 20 --clip 0.25 --decay-after 4 --lr-decay 2 --epochs 13 \\\n"
            "      --hidden 200 --layers 2 --dropout 0 --batch 20 --valid valid.win -o ptb.ckpt train.win\n");
}

/* ------------------------------------------------------------------ options */

enum { O_VALID = 256, O_VFRAC, O_MEM, O_CELL, O_LAYERS, O_HIDDEN, O_EMB, O_TIE, O_NOTIE, O_DROP, O_INIT, O_FB,
       O_OPTIM, O_LR, O_WD, O_CLIP, O_SCHED, O_DECAY, O_AFTER, O_WARM, O_BATCH, O_EPOCHS, O_PAT, O_RESET,
       O_TLIM, O_RESUME, O_SEED, O_THREADS, O_LOG, O_LOGEVERY, O_END };

typedef struct {
    const char *train_path, *valid_path, *out_path, *resume_path, *log_path;
    const char *valid_saved; /* valid_path as saved in the training state (absolute), or NULL */
    unsigned char seen[O_END - O_VALID]; /* long options given on the command line, by O_* - O_VALID */
    double valid_frac;
    long mem_budget_mb;
    lstm_model_config cfg;
    int tie_set, emb_set;
    int optim;
    double lr, weight_decay, clip, lr_decay, time_limit;
    int lr_set, decay_set;
    int schedule, sched_set;
    int decay_after;
    long warmup;
    int batch, epochs, patience, reset_state, threads, quiet, force;
    unsigned long long seed;
    long log_every;
} opts_t;

static double parse_double(const char *s, const char *flag, double lo, double hi)
{
    double v;
    if (lstm_parse_double(s, lo, hi, &v)) die(2, "%s: expected a number from %g to %g, got '%s'", flag, lo, hi, s);
    return v;
}

static long parse_long(const char *s, const char *flag, long lo, long hi)
{
    long v;
    if (lstm_parse_long(s, lo, hi, &v)) die(2, "%s: expected an integer from %ld to %ld, got '%s'", flag, lo, hi, s);
    return v;
}

static const char *optim_name(int k) { return k == LSTM_OPT_SGD ? "sgd" : k == LSTM_OPT_ADAMW ? "adamw" : "adam"; }
static const char *sched_name(int k)
{
    return k == LSTM_SCHED_CONST ? "const" : k == LSTM_SCHED_STEP ? "step" : k == LSTM_SCHED_COSINE ? "cosine" : "plateau";
}

static void parse_args(opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    lstm_model_config_default(&o->cfg);
    o->cfg.H = o->cfg.E = 256;
    o->cfg.dropout = 0.2f;
    o->cfg.tie = 1;
    o->valid_frac = -1;
    o->mem_budget_mb = 2048;
    o->optim = LSTM_OPT_ADAM;
    o->clip = 0.25;
    o->schedule = LSTM_SCHED_PLATEAU;
    o->decay_after = 4;
    o->batch = 20;
    o->epochs = 10;
    o->patience = 3;
    o->seed = 1;
    o->log_every = 100;
    o->out_path = NULL;
    static const struct option lo[] = {
        {"valid", required_argument, 0, O_VALID}, {"valid-frac", required_argument, 0, O_VFRAC},
        {"mem-budget", required_argument, 0, O_MEM}, {"cell", required_argument, 0, O_CELL},
        {"layers", required_argument, 0, O_LAYERS}, {"hidden", required_argument, 0, O_HIDDEN},
        {"emb", required_argument, 0, O_EMB}, {"tie", no_argument, 0, O_TIE}, {"no-tie", no_argument, 0, O_NOTIE},
        {"dropout", required_argument, 0, O_DROP}, {"init-scale", required_argument, 0, O_INIT},
        {"forget-bias", required_argument, 0, O_FB}, {"optim", required_argument, 0, O_OPTIM},
        {"lr", required_argument, 0, O_LR}, {"weight-decay", required_argument, 0, O_WD},
        {"clip", required_argument, 0, O_CLIP}, {"schedule", required_argument, 0, O_SCHED},
        {"lr-decay", required_argument, 0, O_DECAY}, {"decay-after", required_argument, 0, O_AFTER},
        {"warmup", required_argument, 0, O_WARM}, {"batch", required_argument, 0, O_BATCH},
        {"epochs", required_argument, 0, O_EPOCHS}, {"patience", required_argument, 0, O_PAT},
        {"reset-state", no_argument, 0, O_RESET}, {"time-limit", required_argument, 0, O_TLIM},
        {"resume", required_argument, 0, O_RESUME}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"log", required_argument, 0, O_LOG},
        {"log-every", required_argument, 0, O_LOGEVERY}, {"output", required_argument, 0, 'o'},
        {"force", no_argument, 0, 'f'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:fqhV", lo, NULL)) != -1) {
        if (ch >= O_VALID && ch < O_END) o->seen[ch - O_VALID] = 1;
        switch (ch) {
        case O_VALID: o->valid_path = optarg; break;
        case O_VFRAC: o->valid_frac = parse_double(optarg, "--valid-frac", 0, 0.9); break;
        case O_MEM: o->mem_budget_mb = parse_long(optarg, "--mem-budget", 0, 1L << 30); break;
        case O_CELL:
            if ((o->cfg.cell = lstm_cell_from_name(optarg)) < 0) die(2, "--cell: expected lstm, gru or rnn, got '%s'", optarg);
            break;
        case O_LAYERS: o->cfg.L = (int)parse_long(optarg, "--layers", 1, LSTM_MAX_LAYERS); break;
        case O_HIDDEN: o->cfg.H = (int)parse_long(optarg, "--hidden", 1, 16384); break;
        case O_EMB: o->cfg.E = (int)parse_long(optarg, "--emb", 1, 16384); o->emb_set = 1; break;
        case O_TIE: o->cfg.tie = 1; o->tie_set = 1; break;
        case O_NOTIE: o->cfg.tie = 0; o->tie_set = 1; break;
        case O_DROP: o->cfg.dropout = (float)parse_double(optarg, "--dropout", 0, 0.95); break;
        case O_INIT: o->cfg.init_scale = (float)parse_double(optarg, "--init-scale", 0, 10); break;
        case O_FB: o->cfg.forget_bias = (float)parse_double(optarg, "--forget-bias", -100, 100); break;
        case O_OPTIM:
            if (!strcmp(optarg, "sgd")) o->optim = LSTM_OPT_SGD;
            else if (!strcmp(optarg, "adam")) o->optim = LSTM_OPT_ADAM;
            else if (!strcmp(optarg, "adamw")) o->optim = LSTM_OPT_ADAMW;
            else die(2, "--optim: expected sgd, adam or adamw, got '%s'", optarg);
            break;
        case O_LR: o->lr = parse_double(optarg, "--lr", 1e-12, 1e30); o->lr_set = 1; break;
        case O_WD: o->weight_decay = parse_double(optarg, "--weight-decay", 0, 10); break;
        case O_CLIP: o->clip = parse_double(optarg, "--clip", 0, 1e9); break;
        case O_SCHED:
            if (!strcmp(optarg, "const")) o->schedule = LSTM_SCHED_CONST;
            else if (!strcmp(optarg, "step")) o->schedule = LSTM_SCHED_STEP;
            else if (!strcmp(optarg, "plateau")) o->schedule = LSTM_SCHED_PLATEAU;
            else if (!strcmp(optarg, "cosine")) o->schedule = LSTM_SCHED_COSINE;
            else die(2, "--schedule: expected const, step, plateau or cosine, got '%s'", optarg);
            o->sched_set = 1;
            break;
        case O_DECAY: o->lr_decay = parse_double(optarg, "--lr-decay", 1, 1e6); o->decay_set = 1; break;
        case O_AFTER:
            o->decay_after = (int)parse_long(optarg, "--decay-after", 0, 1000000);
            if (!o->sched_set) o->schedule = LSTM_SCHED_STEP;
            break;
        case O_WARM: o->warmup = parse_long(optarg, "--warmup", 0, 1L << 40); break;
        case O_BATCH: o->batch = (int)parse_long(optarg, "--batch", 1, 65536); break;
        case O_EPOCHS: o->epochs = (int)parse_long(optarg, "--epochs", 1, 1000000); break;
        case O_PAT: o->patience = (int)parse_long(optarg, "--patience", 0, 1000000); break;
        case O_RESET: o->reset_state = 1; break;
        case O_TLIM: o->time_limit = parse_double(optarg, "--time-limit", 0, 1e9); break;
        case O_RESUME: o->resume_path = optarg; break;
        case O_SEED: o->seed = (unsigned long long)parse_long(optarg, "--seed", 0, 0x7fffffffffffffffL); break;
        case O_THREADS: o->threads = (int)parse_long(optarg, "--threads", 1, 1024); break;
        case O_LOG: o->log_path = optarg; break;
        case O_LOGEVERY: o->log_every = parse_long(optarg, "--log-every", 1, 1L << 40); break;
        case 'o': o->out_path = optarg; break;
        case 'f': o->force = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf(PROG " " VERSION "\n"); exit(0);
        default: fprintf(stderr, PROG ": try '" PROG " --help'\n"); exit(2);
        }
    }
    if (argc - optind > 1) die(2, "one training input at most (got %d)", argc - optind);
    o->train_path = optind < argc ? argv[optind] : NULL;
    if (!o->emb_set) o->cfg.E = o->cfg.H;
    if (!o->tie_set) o->cfg.tie = o->cfg.E == o->cfg.H;
    if (o->cfg.tie && o->cfg.E != o->cfg.H) die(2, "--tie needs --emb equal to --hidden (%d vs %d)", o->cfg.E, o->cfg.H);
    if (!o->lr_set) o->lr = o->optim == LSTM_OPT_SGD ? 20 : 0.002;
    if (!o->decay_set) o->lr_decay = o->schedule == LSTM_SCHED_PLATEAU ? 4 : 2;
    if (o->valid_frac < 0) o->valid_frac = o->valid_path ? 0 : 0.05;
    if (o->valid_path && o->valid_frac > 0) die(2, "--valid and --valid-frac exclude each other");
    if (o->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = n > 0 ? (int)n : 1;
    }
}

/* Whether a long option was given (in any spelling getopt accepts: --name, --name=V, an abbreviation). */
static int given_opt(const opts_t *o, int opt) { return o->seen[opt - O_VALID]; }

/* ------------------------------------------------------------------ training state */

typedef struct {
    int epoch;          /* epoch in progress or next, 1-based */
    uint64_t step;      /* next step within the epoch */
    uint64_t global_step;
    lstm_rng rng;
    lstm_sched sched;
    lstm_early early;
    double best_valid;
    int best_epoch;
    uint64_t tokens;    /* target tokens trained on so far */
    double train_nll;   /* of the epoch in progress */
    uint64_t train_count;
} tstate;

/* Key=value lines of the `train` entry (formats/checkpoint.md). The validation file is saved only when
 * there is one, so a checkpoint without it (older, or trained with --valid-frac) reads the same way. */
static void state_format(char *buf, size_t cap, const opts_t *o, const tstate *s)
{
    int n = snprintf(buf, cap,
             "epoch=%d\nstep=%llu\nglobal_step=%llu\nrng=%llu\nbest_valid=%.17g\nbest_epoch=%d\ntokens=%llu\n"
             "train_nll=%.17g\ntrain_count=%llu\n"
             "sched_lr=%.17g\nsched_best=%.17g\nsched_bad=%d\nearly_best=%.17g\nearly_bad=%d\n"
             "optim=%s\nlr=%.17g\nweight_decay=%.17g\nclip=%.17g\nschedule=%s\nlr_decay=%.17g\ndecay_after=%d\n"
             "warmup=%ld\nbatch=%d\nepochs=%d\npatience=%d\nreset_state=%d\nseed=%llu\nvalid_frac=%.17g\n",
             s->epoch, (unsigned long long)s->step, (unsigned long long)s->global_step, (unsigned long long)s->rng.s,
             s->best_valid, s->best_epoch, (unsigned long long)s->tokens, s->train_nll,
             (unsigned long long)s->train_count, s->sched.plateau_lr, s->sched.best, s->sched.bad, s->early.best,
             s->early.bad, optim_name(o->optim), o->lr, o->weight_decay, o->clip, sched_name(o->schedule), o->lr_decay,
             o->decay_after, o->warmup, o->batch, o->epochs, o->patience, o->reset_state, o->seed, o->valid_frac);
    if (o->valid_saved && n >= 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, "valid=%s\n", o->valid_saved);
}

static int kv_num(const char *t, size_t n, const char *key, double *out)
{
    char v[64], *e;
    if (lstm_kv_get(t, n, key, v, sizeof v)) return -1;
    *out = strtod(v, &e);
    return *e || e == v ? -1 : 0;
}

static int kv_u64(const char *t, size_t n, const char *key, uint64_t *out)
{
    char v[64], *e;
    if (lstm_kv_get(t, n, key, v, sizeof v)) return -1;
    errno = 0;
    *out = strtoull(v, &e, 10);
    return errno || *e || e == v ? -1 : 0;
}

/* Restore the training flags and state saved in a checkpoint; main() then applies the flags given again
 * (--epochs and --patience here). */
static int state_parse(const char *t, size_t n, opts_t *o, tstate *s)
{
    double d[12];
    uint64_t u[8];
    char name[32];
    if (kv_u64(t, n, "epoch", &u[0]) || kv_u64(t, n, "step", &u[1]) || kv_u64(t, n, "global_step", &u[2]) ||
        kv_u64(t, n, "rng", &u[3]) || kv_num(t, n, "best_valid", &d[0]) || kv_u64(t, n, "best_epoch", &u[4]) ||
        kv_u64(t, n, "tokens", &u[5]) || kv_num(t, n, "train_nll", &d[1]) || kv_u64(t, n, "train_count", &u[6]) ||
        kv_num(t, n, "sched_lr", &d[2]) || kv_num(t, n, "sched_best", &d[3]) || kv_num(t, n, "sched_bad", &d[4]) ||
        kv_num(t, n, "early_best", &d[5]) || kv_num(t, n, "early_bad", &d[6]) || kv_num(t, n, "lr", &d[7]) ||
        kv_num(t, n, "weight_decay", &d[8]) || kv_num(t, n, "clip", &d[9]) || kv_num(t, n, "lr_decay", &d[10]) ||
        kv_num(t, n, "valid_frac", &d[11]) || lstm_kv_get(t, n, "optim", name, sizeof name))
        return -1;
    double x;
    o->optim = !strcmp(name, "sgd") ? LSTM_OPT_SGD : !strcmp(name, "adamw") ? LSTM_OPT_ADAMW : LSTM_OPT_ADAM;
    if (lstm_kv_get(t, n, "schedule", name, sizeof name)) return -1;
    o->schedule = !strcmp(name, "const") ? LSTM_SCHED_CONST : !strcmp(name, "step") ? LSTM_SCHED_STEP
                : !strcmp(name, "cosine") ? LSTM_SCHED_COSINE : LSTM_SCHED_PLATEAU;
    o->lr = d[7];
    o->weight_decay = d[8];
    o->clip = d[9];
    o->lr_decay = d[10];
    o->valid_frac = d[11];
    if (kv_num(t, n, "decay_after", &x)) return -1;
    o->decay_after = (int)x;
    if (kv_num(t, n, "warmup", &x)) return -1;
    o->warmup = (long)x;
    if (kv_num(t, n, "batch", &x)) return -1;
    o->batch = (int)x;
    if (kv_num(t, n, "reset_state", &x)) return -1;
    o->reset_state = (int)x;
    if (kv_u64(t, n, "seed", &u[7])) return -1;
    o->seed = u[7];
    if (!given_opt(o, O_EPOCHS)) {
        if (kv_num(t, n, "epochs", &x)) return -1;
        o->epochs = (int)x;
    }
    if (!given_opt(o, O_PAT)) {
        if (kv_num(t, n, "patience", &x)) return -1;
        o->patience = (int)x;
    }
    s->epoch = (int)u[0];
    s->step = u[1];
    s->global_step = u[2];
    s->rng.s = u[3];
    s->best_valid = d[0];
    s->best_epoch = (int)u[4];
    s->tokens = u[5];
    s->train_nll = d[1];
    s->train_count = u[6];
    s->sched.plateau_lr = d[2];
    s->sched.best = d[3];
    s->sched.bad = (int)d[4];
    s->early.best = d[5];
    s->early.bad = (int)d[6];
    return 0;
}

/* ------------------------------------------------------------------ evaluation */

typedef struct {
    lstm_model *m;
    lstm_acts *a;
    lstm_state *st;
    uint32_t *in, *tg;
    uint8_t *reset;
    int B, T;
} work_t;

static void apply_resets(lstm_state *st, const uint8_t *reset, int B)
{
    for (int b = 0; b < B; b++)
        if (reset[b]) lstm_state_reset_row(st, b);
}

/* Mean NLL over windows [begin, end) with state carried as in training; NAN on error (rc set). Returns
 * early on SIGINT / SIGTERM (the caller then discards the value). Uses w->st, so the carried training
 * state is lost. */
static double evaluate(work_t *w, lstm_dataset *d, uint64_t begin, uint64_t end, int stateful, int *rc)
{
    lstm_batcher b;
    *rc = lstm_batcher_init(&b, d, begin, end, w->B, stateful, 0);
    if (*rc) return NAN;
    double nll = 0;
    long total = 0;
    lstm_state_zero(w->st);
    for (uint64_t s = 0; s < b.steps && !stop_requested; s++) {
        long cnt = lstm_batcher_get(&b, s, w->in, w->tg, w->reset);
        if (cnt < 0) { *rc = (int)cnt; break; }
        apply_resets(w->st, w->reset, w->B);
        double loss;
        long c;
        *rc = lstm_model_forward(w->m, w->a, w->st, w->in, w->tg, w->B, w->T, 0, &loss, &c);
        if (*rc) break;
        nll += loss * (double)c;
        total += c;
    }
    lstm_batcher_free(&b);
    if (*rc) return NAN;
    return total ? nll / (double)total : NAN;
}

/* ------------------------------------------------------------------ output */

static void fmt_dur(char *buf, size_t cap, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%.1fs", s);
}

/* Refuse, before allocating, what this machine cannot hold: a clear error rather than a job for the
 * OOM killer (allocations are lazy, so malloc alone would not say no). */
static void check_fits(double need, const char *what, const char *hint)
{
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (ram > 0 && need > 0.75 * ram)
        die(1, "%s need about %.0f MB, more than this machine's %.0f MB allow: %s", what, need / 1048576, ram / 1048576, hint);
}

/* Parameters, gradients and two optimizer moments. */
static void check_model_fits(const lstm_model_config *c)
{
    lstm_tensor_info t[LSTM_MAX_TENSORS];
    int nt;
    size_t np = lstm_model_layout(c, t, &nt);
    check_fits(16.0 * (double)np, "the model's parameters, gradients and optimizer state", "lower --hidden, --emb or --layers");
}

/* What a stopped run leaves: the best model only if one was written. */
static const char *kept_msg(char *buf, size_t cap, const char *out_path, int saved)
{
    if (saved) snprintf(buf, cap, "%s kept the last good model", out_path);
    else snprintf(buf, cap, "no model was saved");
    return buf;
}

static double safe_ppl(double loss) { return loss < 700 ? exp(loss) : INFINITY; }

static int params_finite(const lstm_model *m)
{
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i])) return 0;
    return 1;
}

/* With --resume, the flags given again: those of the schedule and the data take the new value; those
 * fixed by the checkpoint's model (its shape, its initialisation, the random stream) must match it. */
static void apply_resume_flags(opts_t *o, const opts_t *given, const lstm_model_config *c, const tstate *s)
{
    char model[128];
    snprintf(model, sizeof model, "the checkpoint's model is %s %dx%d, emb %d, %s", lstm_cell_name(c->cell), c->L, c->H,
             c->E, c->tie ? "tied" : "untied");
    static const struct { int opt; const char *name; } shape[] = {
        {O_CELL, "--cell"}, {O_LAYERS, "--layers"}, {O_HIDDEN, "--hidden"}, {O_EMB, "--emb"}, {O_TIE, "--tie"},
        {O_NOTIE, "--no-tie"}};
    const lstm_model_config *g = &given->cfg;
    for (size_t i = 0; i < sizeof shape / sizeof *shape; i++) {
        int k = shape[i].opt, differs = k == O_CELL ? g->cell != c->cell : k == O_LAYERS ? g->L != c->L
                                      : k == O_HIDDEN ? g->H != c->H : k == O_EMB ? g->E != c->E : g->tie != c->tie;
        if (given_opt(given, k) && differs) die(2, "%s cannot change when resuming (%s)", shape[i].name, model);
    }
    if (given_opt(given, O_INIT) && g->init_scale != c->init_scale)
        die(2, "--init-scale cannot change when resuming (the checkpoint's model was initialised with --init-scale %g)",
            (double)c->init_scale);
    if (given_opt(given, O_FB) && g->forget_bias != c->forget_bias)
        die(2, "--forget-bias cannot change when resuming (the checkpoint's model was initialised with --forget-bias %g)",
            (double)c->forget_bias);
    if (given_opt(given, O_SEED) && given->seed != o->seed)
        die(2, "--seed cannot change when resuming (the checkpoint continues the random stream of --seed %llu)",
            (unsigned long long)o->seed);
    if (given_opt(given, O_OPTIM) && given->optim != o->optim)
        die(2, "--optim: the checkpoint was trained with %s; resuming with another optimizer is not supported",
            optim_name(o->optim));
    /* These change what a step does, so only at an epoch boundary (the saved state is mid-epoch). */
    if (given_opt(given, O_BATCH) && given->batch != o->batch && s->step > 0)
        die(2, "--batch: cannot change the batch in the middle of an epoch");
    if (given_opt(given, O_RESET) && given->reset_state != o->reset_state && s->step > 0)
        die(2, "--reset-state: cannot change in the middle of an epoch");
    double vfrac = given_opt(given, O_VFRAC) ? given->valid_frac : given_opt(given, O_VALID) ? 0 : o->valid_frac;
    if (vfrac != o->valid_frac && s->step > 0)
        die(2, "%s: cannot change the held-out windows in the middle of an epoch (the checkpoint holds out %g)",
            given_opt(given, O_VFRAC) ? "--valid-frac" : "--valid", o->valid_frac);

    o->cfg = *c;
    if (given_opt(given, O_DROP)) o->cfg.dropout = g->dropout; /* used in training only */
    if (given_opt(given, O_LR)) o->lr = given->lr;
    if (given_opt(given, O_CLIP)) o->clip = given->clip;
    if (given_opt(given, O_WD)) o->weight_decay = given->weight_decay;
    if (given_opt(given, O_DECAY)) o->lr_decay = given->lr_decay;
    if (given_opt(given, O_AFTER)) o->decay_after = given->decay_after;
    if (given_opt(given, O_SCHED) || given_opt(given, O_AFTER)) o->schedule = given->schedule;
    if (given_opt(given, O_WARM)) o->warmup = given->warmup;
    if (given_opt(given, O_BATCH)) o->batch = given->batch;
    if (given_opt(given, O_RESET)) o->reset_state = given->reset_state;
    /* Validation data: a new --valid or --valid-frac replaces the saved choice; else the saved file is reopened. */
    if (given_opt(given, O_VALID) || given_opt(given, O_VFRAC)) o->valid_path = given->valid_path;
    o->valid_frac = vfrac;
}

static lstm_lock out_lock = {-1, NULL};
static void release_lock(void) { lstm_lock_release(&out_lock); }

int main(int argc, char **argv)
{
    opts_t o, given;
    if (lstm_reserve_std_fds(NULL)) die(1, "cannot open /dev/null for a closed standard stream");
    parse_args(&o, argc, argv);
    given = o;
    const char *grace = getenv("LSTM_STOP_GRACE");
    if (grace) {
        long g;
        if (lstm_parse_long(grace, 1, 86400, &g)) die(2, "LSTM_STOP_GRACE: expected seconds from 1 to 86400, got '%s'", grace);
        stop_grace = (unsigned)g;
    }

    /* Output paths: checked before any work so a long run cannot fail at the end. */
    char out_path[4096], last_path[4200];
    if (o.out_path) snprintf(out_path, sizeof out_path, "%s", o.out_path);
    else if (o.resume_path) {
        snprintf(out_path, sizeof out_path, "%s", o.resume_path);
        size_t n = strlen(out_path);
        if (n > 5 && !strcmp(out_path + n - 5, ".last")) out_path[n - 5] = 0;
        o.force = 1; /* resuming continues the same run */
    } else snprintf(out_path, sizeof out_path, "model.ckpt");
    snprintf(last_path, sizeof last_path, "%s.last", out_path);
    if (!strcmp(out_path, "-"))
        die(2, "-o -: a checkpoint and its .last training state need real files (give -o FILE)");
    if (lstm_out_in_place(out_path))
        die(2, "%s: a checkpoint and its .last training state need real files (give -o FILE)", out_path);
    /* No two outputs and no output and input may name one file. */
    {
        const char *ins[3] = {o.train_path, o.valid_path, o.resume_path};
        const char *ouns[3] = {out_path, last_path, o.log_path};
        const char *onames[3] = {"-o", "-o's .last", "--log"}, *inames[3] = {"the training input", "--valid", "--resume"};
        for (int i = 0; i < 3; i++) {
            for (int j = i + 1; j < 3; j++)
                if (lstm_same_file(ouns[i], ouns[j])) die(2, "%s and %s name the same file (%s)", onames[i], onames[j], ouns[j]);
            for (int j = 0; j < 3; j++) {
                if (j == 2 && i < 2) continue; /* resuming writes its own run's checkpoints again */
                if (lstm_same_file(ouns[i], ins[j]))
                    die(2, "%s names %s (%s): it would be overwritten", onames[i], inames[j], ouns[i]);
            }
        }
    }
    if (o.log_path && !o.force && !o.resume_path && !lstm_out_in_place(o.log_path) && !access(o.log_path, F_OK))
        die(1, "%s: file exists (use -f to overwrite, or --log another file)", o.log_path);
    if (!o.force && !access(out_path, F_OK)) die(1, "%s: file exists (use -f to overwrite, or -o another file)", out_path);
    /* ...including that they can be created at all (a missing directory, a read-only one): a temp file
     * beside each, removed at once. */
    const char *outs[2] = {out_path, last_path};
    for (int i = 0; i < 2; i++) {
        lstm_out probe;
        int prc = lstm_out_open(&probe, outs[i], 1);
        if (prc) die(1, "%s: %s", outs[i], prc == LSTM_E_IO ? strerror(errno) : lstm_strerror(prc));
        lstm_out_abort(&probe);
    }
    {
        long holder;
        int lrc = lstm_lock_take(&out_lock, out_path, &holder);
        if (lrc == LSTM_E_BUSY && holder > 0) die(1, "%s: another process (pid %ld) is training into it", out_path, holder);
        if (lrc == LSTM_E_BUSY) die(1, "%s: another process is training into it", out_path);
        if (lrc) die(1, "%s.lock: %s", out_path, lrc == LSTM_E_IO ? strerror(errno) : lstm_strerror(lrc));
        atexit(release_lock);
    }

    lstm_set_threads(o.threads);
    const char *tname = o.train_path && strcmp(o.train_path, "-") ? o.train_path : "stdin";
    if (!o.train_path && isatty(0)) die(2, "reading windows from a terminal: give a file or a pipe (see --help)");

    /* ---- data ---- */
    lstm_dataset *train;
    uint32_t kind;
    int rc = lstm_dataset_open(&train, o.train_path, (size_t)o.mem_budget_mb << 20, &kind);
    char msg[4400];
    if (rc == LSTM_E_TEXT && o.train_path && strcmp(o.train_path, "-"))
        die(1, "%s: a text/CSV file, not windows: tokenize it and cut it into windows (lstm-tok %s | "
               "lstm-window -L 15 | lstm-train ...)", tname, tname);
    if (rc == LSTM_E_TEXT)
        die(1, "stdin: text/CSV, not windows: tokenize it and cut it into windows (... | lstm-tok | "
               "lstm-window -L 15 | lstm-train ...)");
    if (rc) die(1, "%s", lstm_dataset_open_message(rc, kind, tname, msg, sizeof msg));
    size_t tok_len;
    const uint8_t *tok_blob = lstm_meta_get(lstm_dataset_meta(train), "tokenizer", &tok_len);
    if (!tok_blob) die(1, "%s: the stream carries no tokenizer", tname);
    /* Never write a checkpoint that lstm-eval and lstm-sample would refuse. */
    if ((rc = lstm_tokenizer_blob_check(tok_blob, tok_len)))
        die(1, "%s: the stream's tokenizer is invalid (%s): tokenize the text again with lstm-tok", tname, lstm_strerror(rc));
    uint64_t n_all = lstm_dataset_count(train);
    if (n_all == 0) die(1, "%s: no windows to train on", tname);
    int T = (int)lstm_dataset_T(train);
    int V = (int)lstm_dataset_vocab(train);

    /* ---- model: fresh or resumed ---- */
    lstm_model model;
    lstm_optim opt;
    tstate s;
    memset(&s, 0, sizeof s);
    lstm_modelfile rf;
    memset(&rf, 0, sizeof rf);
    char saved_valid[PATH_MAX + 1], valid_abs[PATH_MAX + 1];
    int valid_from_ckpt = 0;
    if (o.resume_path) {
        rc = lstm_modelfile_open(&rf, o.resume_path);
        if (rc == LSTM_E_NAN)
            die(1, "%s: weights are NaN/Inf (tensor %s): the training that wrote it diverged", o.resume_path, rf.bad_tensor);
        if (rc) die(1, "%s: %s", o.resume_path, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
        if (rf.tokenizer_len != tok_len || memcmp(rf.tokenizer, tok_blob, tok_len) != 0)
            die(1, "%s: tokenizer does not match the checkpoint %s's: tokenize with lstm-tok -m %s", tname, o.resume_path,
                o.resume_path);
        if (!rf.train || state_parse(rf.train, rf.train_len, &o, &s))
            die(1, "%s: no training state to resume from", o.resume_path);
        if (!given_opt(&o, O_VALID) && !given_opt(&o, O_VFRAC) &&
            !lstm_kv_get(rf.train, rf.train_len, "valid", saved_valid, sizeof saved_valid)) {
            o.valid_path = saved_valid;
            valid_from_ckpt = 1;
        }
        apply_resume_flags(&o, &given, &rf.model.cfg, &s);
        check_model_fits(&o.cfg);
        if ((rc = lstm_model_create(&model, &o.cfg))) die(1, "model: %s", lstm_strerror(rc));
        memcpy(model.params, rf.model.params, model.n_params * sizeof(float));
    } else {
        o.cfg.V = V;
        if ((rc = lstm_model_config_check(&o.cfg))) die(2, "invalid model configuration");
        check_model_fits(&o.cfg);
        if ((rc = lstm_model_create(&model, &o.cfg))) die(1, "model: %s", lstm_strerror(rc));
        lstm_rng_seed(&s.rng, o.seed);
        lstm_model_init_params(&model, &s.rng);
        s.epoch = 1;
        s.best_valid = INFINITY;
        lstm_early_init(&s.early, o.patience);
    }
    if (o.cfg.V != V) die(1, "%s: vocabulary size %d differs from the model's %d", tname, V, o.cfg.V);
    s.early.patience = o.patience;
    lstm_sched sched_saved = s.sched;
    lstm_sched_init(&s.sched, o.schedule, o.lr);
    s.sched.factor = o.lr_decay;
    s.sched.start_epoch = o.decay_after;
    s.sched.warmup = o.warmup;
    s.sched.patience = 0;
    if (o.resume_path) {
        if (!given_opt(&o, O_LR)) s.sched.plateau_lr = sched_saved.plateau_lr; /* a new --lr restarts it */
        s.sched.best = sched_saved.best;
        s.sched.bad = sched_saved.bad;
    }
    if ((rc = lstm_optim_init(&opt, o.optim, model.n_params))) die(1, "optimizer: %s", lstm_strerror(rc));
    opt.weight_decay = (float)o.weight_decay;
    if (o.resume_path) {
        opt.step = (long)s.global_step;
        if (opt.m && rf.optim_m) {
            memcpy(opt.m, rf.optim_m, model.n_params * sizeof(float));
            memcpy(opt.v, rf.optim_v, model.n_params * sizeof(float));
        } else if (opt.m) die(1, "%s: no optimizer moments saved", o.resume_path);
    }

    /* ---- validation split ---- */
    lstm_dataset *valid = NULL;
    uint64_t n_train = n_all, v_begin = 0, v_end = 0;
    const char *vname = o.valid_path;
    if (o.valid_path) {
        rc = lstm_dataset_open(&valid, o.valid_path, (size_t)o.mem_budget_mb << 20, &kind);
        if (rc && valid_from_ckpt)
            die(1, "%s (the validation windows of %s: give --valid FILE or --valid-frac F)",
                lstm_dataset_open_message(rc, kind, vname, msg, sizeof msg), o.resume_path);
        if (rc == LSTM_E_TEXT) /* it must be tokenized like the training data: a window stream names its tokenizer */
            die(1, "%s: a text/CSV file, not windows: tokenize it like the training data and cut it into windows "
                   "(lstm-tok -m %s %s | lstm-window -L %d > valid.win)",
                vname, o.train_path && strcmp(o.train_path, "-") ? tname : "<vocab or checkpoint>", vname, T);
        if (rc) die(1, "%s", lstm_dataset_open_message(rc, kind, vname, msg, sizeof msg));
        /* Saved absolute, so that a resume from another directory finds it again. */
        o.valid_saved = realpath(o.valid_path, valid_abs) ? valid_abs : o.valid_path;
        if (strchr(o.valid_saved, '\n') || strlen(o.valid_saved) > PATH_MAX)
            die(2, "--valid: a path with a newline or longer than %d bytes cannot be saved for --resume", PATH_MAX);
        size_t vl;
        const uint8_t *vb = lstm_meta_get(lstm_dataset_meta(valid), "tokenizer", &vl);
        if (!vb || vl != tok_len || memcmp(vb, tok_blob, tok_len))
            die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m <vocab or checkpoint>", vname, tname);
        if ((int)lstm_dataset_T(valid) != T) die(1, "%s: window length %u differs from %s's %d", vname, lstm_dataset_T(valid), tname, T);
        v_end = lstm_dataset_count(valid);
        if (v_end == 0) die(1, "%s: no windows to validate on", vname);
    } else if (o.valid_frac > 0) {
        uint64_t nv = (uint64_t)((double)n_all * o.valid_frac);
        if (nv >= 1 && n_all - nv >= 1) {
            valid = train;
            n_train = n_all - nv;
            v_begin = n_train;
            v_end = n_all;
            vname = "held-out windows";
        }
    }
    int K = (int)lstm_dataset_K(train);
    int stateful = !o.reset_state && K == T;
    int B = o.batch;
    if ((uint64_t)B > n_train) { /* more lanes than windows would only allocate empty lanes */
        if (!o.quiet) fprintf(stderr, PROG ": --batch %d is more than the %llu training windows: using %llu\n", B,
                              (unsigned long long)n_train, (unsigned long long)n_train);
        B = o.batch = (int)n_train;
    }

    /* ---- work buffers ---- */
    lstm_acts acts;
    lstm_state st;
    /* Activations grow with B x T (bytes(1,1) x B x T bounds them from above): refuse what this
     * machine cannot hold before allocating it, so a huge -L or --batch is a clear error rather than
     * a job for the OOM killer. */
    if (lstm_acts_alloc(&acts, &model, 1, 1) == 0) {
        double need = (double)acts.bytes * B * T;
        lstm_acts_free(&acts);
        char what[96];
        snprintf(what, sizeof what, "activations for batch %d x %d", B, T);
        check_fits(need, what, "lower --batch or make shorter windows (lstm-window -L)");
    }
    if ((rc = lstm_acts_alloc(&acts, &model, B, T)) || (rc = lstm_state_alloc(&st, &model, B)))
        die(1, "allocating activations for batch %d x %d: %s", B, T, lstm_strerror(rc));
    uint32_t *in = malloc(sizeof *in * (size_t)B * T), *tg = malloc(sizeof *tg * (size_t)B * T);
    uint8_t *reset = malloc((size_t)B);
    double *tnorms = malloc(sizeof *tnorms * (size_t)model.n_tensors);
    if (!in || !tg || !reset || !tnorms) die(1, "out of memory");
    if (o.resume_path && rf.state_h && s.step > 0) {
        if (rf.state_B != B) die(1, "%s: saved state has %d lanes, not %d", o.resume_path, rf.state_B, B);
        size_t nst = (size_t)o.cfg.L * B * o.cfg.H;
        memcpy(st.h, rf.state_h, nst * sizeof(float));
        memcpy(st.c, rf.state_c, nst * sizeof(float));
    }
    work_t w = {&model, &acts, &st, in, tg, reset, B, T};

    FILE *logf = NULL;
    if (o.log_path) {
        logf = fopen(o.log_path, o.resume_path ? "a" : "w");
        if (!logf) die(1, "%s: %s", o.log_path, strerror(errno));
        if (!o.resume_path || ftell(logf) == 0) {
            fprintf(logf, "kind\tepoch\tstep\ttokens\telapsed_s\tlr\tloss\tppl\tvalid_loss\tvalid_ppl\tgrad_norm\ttok_per_s");
            for (int i = 0; i < model.n_tensors; i++) fprintf(logf, "\tgn:%s", model.tensors[i].name);
            fputc('\n', logf);
        }
    }

    /* provenance: the stream's, plus this command */
    lstm_meta prov;
    lstm_meta_init(&prov);
    lstm_meta_copy(&prov, lstm_dataset_meta(train));
    if (o.resume_path && rf.provenance) lstm_meta_set(&prov, "provenance", rf.provenance, rf.provenance_len);
    lstm_meta_add_provenance(&prov, argc, argv);
    size_t pl;
    const uint8_t *pv = lstm_meta_get(&prov, "provenance", &pl);
    char *provenance = pv ? strndup((const char *)pv, pl) : NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);

    lstm_out_remove_stale(out_path, o.resume_path);
    lstm_out_remove_stale(last_path, o.resume_path);

    int tty = isatty(2);
    if (!o.quiet)
        fprintf(stderr,
                PROG ": %s: %llu windows of %d (%s%s), vocabulary %d; %s %dx%d emb %d%s dropout %g, %zu parameters; "
                "%s lr %g, batch %d%s\n",
                tname, (unsigned long long)n_train, T, K == 1 ? "last-token" : "next-token",
                lstm_dataset_streaming(train) ? ", streamed" : "", V, lstm_cell_name(o.cfg.cell), o.cfg.L, o.cfg.H,
                o.cfg.E, o.cfg.tie ? " tied" : "", (double)o.cfg.dropout, lstm_model_num_weights(&model),
                optim_name(o.optim), o.lr, B, valid ? "" : ", no validation data");

    char tkv[2048 + PATH_MAX];
    double t0 = now(), train_time = 0;
    int stop_early = 0, nan_stop = 0, interrupted = 0, time_up = 0;
    int saved_out = o.resume_path && access(out_path, F_OK) == 0; /* a best model of this run is on disk */
    char kept[4200];
    lstm_batcher bt;
    memset(&bt, 0, sizeof bt);
    for (; s.epoch <= o.epochs && !stop_early && !nan_stop && !interrupted && !time_up; s.epoch++) {
        uint64_t shuffle = stateful ? 0 : (o.seed + 1) * 1000003ull + (uint64_t)s.epoch;
        if ((rc = lstm_batcher_init(&bt, train, 0, n_train, B, stateful, shuffle))) die(1, "%s: %s", tname, lstm_strerror(rc));
        s.sched.total = (long)bt.steps * o.epochs; /* cosine: lr0 down to 0 over all --epochs */
        if (s.step == 0) {
            lstm_state_zero(&st);
            s.train_nll = 0;
            s.train_count = 0;
        }
        double te0 = now(), last_print = 0;
        uint64_t ep_tokens = 0, log_count = 0;
        double log_nll = 0, gnorm = 0;
        double lr = lstm_sched_lr(&s.sched, s.epoch, (long)s.global_step); /* of the step in progress */
        uint64_t steps = bt.steps;
        for (; s.step < steps; s.step++) {
            /* Checked before each step, so a signal leaves s.step at the next step to run. */
            if (stop_requested) break;
            long cnt = lstm_batcher_get(&bt, s.step, in, tg, reset);
            if (cnt < 0) die(1, "%s: %s", tname, lstm_strerror((int)cnt));
            apply_resets(&st, reset, B);
            if (cnt == 0) continue;
            if (o.cfg.dropout > 0) lstm_model_sample_dropout(&model, &acts, &s.rng);
            double loss;
            long c;
            if ((rc = lstm_model_forward(&model, &acts, &st, in, tg, B, T, 1, &loss, &c))) die(1, "forward: %s", lstm_strerror(rc));
            lstm_model_zero_grads(&model);
            if ((rc = lstm_model_backward(&model, &acts, NULL))) die(1, "backward: %s", lstm_strerror(rc));
            if (logf && (s.global_step + 1) % (uint64_t)o.log_every == 0) lstm_optim_tensor_norms(tnorms, &model);
            gnorm = lstm_optim_clip(model.grads, model.n_params, o.clip);
            lr = lstm_sched_lr(&s.sched, s.epoch, (long)s.global_step);
            if (!isfinite(loss) || !isfinite(gnorm)) {
                nan_stop = 1;
                fprintf(stderr, "%s" PROG ": %s at epoch %d step %llu (lr %g): stopping; %s (try a lower --lr or --clip)\n",
                        tty ? "\n" : "", isfinite(loss) ? "gradient norm is NaN/Inf" : "loss is NaN/Inf", s.epoch,
                        (unsigned long long)s.step, lr, kept_msg(kept, sizeof kept, out_path, saved_out));
                break;
            }
            lstm_optim_step(&opt, model.params, model.grads, (float)lr);
            s.global_step++;
            s.tokens += (uint64_t)c;
            ep_tokens += (uint64_t)c;
            s.train_nll += loss * (double)c;
            s.train_count += (uint64_t)c;
            log_nll += loss * (double)c;
            log_count += (uint64_t)c;
            double tnow = now();
            if (logf && s.global_step % (uint64_t)o.log_every == 0) {
                double l = log_nll / (double)log_count;
                fprintf(logf, "step\t%d\t%llu\t%llu\t%.3f\t%.6g\t%.6f\t%.4f\t\t\t%.6g\t%.1f", s.epoch,
                        (unsigned long long)s.global_step, (unsigned long long)s.tokens, train_time + tnow - te0, lr, l,
                        safe_ppl(l), gnorm, (double)ep_tokens / (tnow - te0));
                for (int i = 0; i < model.n_tensors; i++) fprintf(logf, "\t%.6g", tnorms[i]);
                fputc('\n', logf);
                log_nll = 0;
                log_count = 0;
            }
            if (tty && !o.quiet && tnow - last_print > 0.5) {
                last_print = tnow;
                double frac = (double)(s.step + 1) / (double)bt.steps, rate = (double)ep_tokens / (tnow - te0);
                double l = s.train_nll / (double)s.train_count;
                char eta[32];
                double left = (tnow - te0) / frac * (1 - frac);
                if (o.time_limit > 0 && left > o.time_limit - (train_time + tnow - te0))
                    left = o.time_limit - (train_time + tnow - te0); /* the run ends at the limit */
                fmt_dur(eta, sizeof eta, left > 0 ? left : 0);
                fprintf(stderr, "\r" PROG ": epoch %d/%d %5.1f%% loss %.3f ppl %.1f lr %.3g %.0f tok/s ETA %s   ", s.epoch,
                        o.epochs, 100 * frac, l, safe_ppl(l), lr, rate, eta);
            }
            if (o.time_limit > 0 && train_time + tnow - te0 >= o.time_limit) { time_up = 1; s.step = steps; break; }
        }
        lstm_batcher_free(&bt);
        double ep_time = now() - te0;
        train_time += ep_time;
        if (nan_stop) break;
        if (tty && !o.quiet) fputs("\r\033[K", stderr);
        if (s.train_count == 0 && !stop_requested)
            die(1, "%s: every target of the training windows is padding: nothing to train on, no model saved", tname);
        double tl = s.train_count ? s.train_nll / (double)s.train_count : NAN;
        double vl = NAN;
        if (valid && !stop_requested) {
            vl = evaluate(&w, valid, v_begin, v_end, stateful, &rc);
            if (rc) die(1, "%s: %s", vname, lstm_strerror(rc));
        }
        /* The last step's update can overflow without its own loss showing it: never save such a model. */
        int valid_bad = valid && !stop_requested && !isfinite(vl);
        if (valid_bad || !params_finite(&model)) {
            nan_stop = 1;
            char when[64];
            if (s.step < steps) snprintf(when, sizeof when, "at epoch %d step %llu", s.epoch, (unsigned long long)s.step);
            else snprintf(when, sizeof when, "at the end of epoch %d", s.epoch);
            fprintf(stderr, PROG ": %s %s (lr %g): stopping; %s (try a lower --lr or --clip)\n",
                    valid_bad ? "validation loss is NaN/Inf" : "parameters are NaN/Inf", when, lr,
                    kept_msg(kept, sizeof kept, out_path, saved_out));
            break;
        }
        if (stop_requested) {
            /* In the steps or the validation: save everything needed to continue exactly here (a resumed
             * run redoes the validation). Once the steps are done the carried state is not needed, and
             * the validation has overwritten it. */
            interrupted = 1;
            state_format(tkv, sizeof tkv, &o, &s);
            lstm_modelfile_save_args a = {&model, tok_blob, tok_len, tkv, &opt, s.step < steps ? &st : NULL, provenance};
            rc = lstm_modelfile_save(last_path, 1, &a);
            if (rc) die(1, "%s: %s", last_path, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
            fprintf(stderr, PROG ": interrupted at epoch %d step %llu: state saved to %s (continue with --resume %s)\n",
                    s.epoch, (unsigned long long)s.step, last_path, last_path);
            break; /* to the cleanup below, then exit 130 */
        }
        int completed = s.epoch;
        s.step = 0;
        double elr = lstm_sched_lr(&s.sched, s.epoch, (long)s.global_step);
        int improved = 0;
        if (valid) {
            lstm_sched_epoch_end(&s.sched, vl);
            stop_early = lstm_early_update(&s.early, vl) && o.patience > 0;
            if (vl < s.best_valid) {
                s.best_valid = vl;
                s.best_epoch = completed;
                improved = 1;
            }
        }
        /* The state describes the start of the next epoch. */
        s.epoch++;
        state_format(tkv, sizeof tkv, &o, &s);
        s.epoch--;
        lstm_modelfile_save_args a = {&model, tok_blob, tok_len, tkv, &opt, NULL, provenance};
        if (!valid || improved) {
            rc = lstm_modelfile_save(out_path, 1, &a);
            if (rc) die(1, "%s: %s", out_path, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
            saved_out = 1;
        }
        rc = lstm_modelfile_save(last_path, 1, &a);
        if (rc) die(1, "%s: %s", last_path, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
        char el[32];
        fmt_dur(el, sizeof el, now() - t0);
        double rate = ep_time > 0 ? (double)ep_tokens / ep_time : 0;
        if (!o.quiet) {
            if (valid)
                fprintf(stderr, PROG ": epoch %d/%d: train loss %.4f ppl %.2f | valid loss %.4f ppl %.2f%s | lr %.4g | %.0f tok/s | %s\n",
                        completed, o.epochs, tl, safe_ppl(tl), vl, safe_ppl(vl), improved ? " *" : "", elr, rate, el);
            else
                fprintf(stderr, PROG ": epoch %d/%d: train loss %.4f ppl %.2f | lr %.4g | %.0f tok/s | %s\n", completed,
                        o.epochs, tl, safe_ppl(tl), elr, rate, el);
        }
        if (logf) {
            fprintf(logf, "epoch\t%d\t%llu\t%llu\t%.3f\t%.6g\t%.6f\t%.4f\t%.6f\t%.4f\t%.6g\t%.1f", completed,
                    (unsigned long long)s.global_step, (unsigned long long)s.tokens, train_time, elr, tl, safe_ppl(tl), vl,
                    safe_ppl(vl), gnorm, rate);
            for (int i = 0; i < model.n_tensors; i++) fputs("\t", logf);
            fputc('\n', logf);
            if (fflush(logf) != 0 || ferror(logf)) die(1, "%s: %s", o.log_path, strerror(errno));
        }
        if (stop_early && !o.quiet)
            fprintf(stderr, PROG ": no validation improvement for %d epochs: stopping early\n", o.patience);
        if (time_up && !o.quiet) fprintf(stderr, PROG ": time limit reached\n");
        if (stop_requested) {
            /* During the epoch-end saves (or just after the validation): the epoch is saved whole. */
            interrupted = 1;
            fprintf(stderr, PROG ": interrupted after epoch %d: state saved to %s (continue with --resume %s)\n",
                    completed, last_path, last_path);
        }
    }
    if (logf && (ferror(logf) | fclose(logf)) != 0) die(1, "%s: %s", o.log_path, strerror(errno));
    if (!nan_stop && !interrupted && !o.quiet) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        char el[32];
        fmt_dur(el, sizeof el, now() - t0);
        if (valid && isfinite(s.best_valid) && access(out_path, F_OK) != 0) /* resumed into a new -o, never beaten */
            fprintf(stderr, PROG ": best valid ppl %.2f (epoch %d, before the resume) not beaten: %s not written; %s\n",
                    safe_ppl(s.best_valid), s.best_epoch, out_path, el);
        else if (valid && isfinite(s.best_valid))
            fprintf(stderr, PROG ": best valid ppl %.2f (epoch %d) saved to %s; %s\n", safe_ppl(s.best_valid),
                    s.best_epoch, out_path, el);
        else
            fprintf(stderr, PROG ": model saved to %s; %s\n", out_path, el);
        /* Where the memory goes: parameters, gradients and optimizer moments share one layout. */
        double mb = 1.0 / (1 << 20), pb = (double)model.n_params * sizeof(float) * mb;
        double ob = (double)lstm_optim_state_floats(&opt) * 2 * sizeof(float) * mb;
        fprintf(stderr,
                PROG ": memory: parameters %.1f MB + gradients %.1f MB + optimizer %.1f MB + activations %.1f MB "
                "= %.1f MB; peak resident %.1f MB\n",
                pb, pb, ob, (double)acts.bytes * mb, 2 * pb + ob + (double)acts.bytes * mb, (double)ru.ru_maxrss / 1024);
    }
    free(provenance);
    lstm_meta_free(&prov);
    free(in);
    free(tg);
    free(reset);
    free(tnorms);
    lstm_acts_free(&acts);
    lstm_state_free(&st);
    lstm_optim_free(&opt);
    lstm_model_free(&model);
    if (o.resume_path) lstm_modelfile_close(&rf);
    if (valid && valid != train) lstm_dataset_free(valid);
    lstm_dataset_free(train);
    /* A signal after the last check finds everything saved: still report the interruption. */
    return nan_stop ? 1 : interrupted || stop_requested ? 130 : 0;
}
