/* lstm-train: train an LSTM / GRU / RNN language model on a window stream and write a checkpoint.
 * The training is lib/lm/train.h's; this file parses the flags, opens the data, checks the outputs,
 * turns signals into the trainer's stop flag and words every message and log row. Under mpirun it is
 * one rank of a data-parallel run (dist.h): rank 0 alone prints, logs and writes checkpoints. */
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

#include "dataset.h"
#include "dist.h"
#include "eval.h"
#include "fileio.h"
#include "gemm.h"
#include "numparse.h"
#include "fill.h"
#include "tokenizer.h"
#include "train.h"
#include "tool.h"

#define PROG "lstm-train"

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
            "      --cell C           lstm (default), gru, rnn, cifg (an LSTM whose input gate is 1 - forget gate),\n"
            "                         or lnlstm (LayerNorm LSTM: both projections and the cell state normalised)\n"
            "      --layers N         stacked cells (default 2)\n"
            "      --hidden H         hidden units (default 256)\n"
            "      --emb E            embedding size (default: H)\n"
            "      --tie / --no-tie   share embedding and output weights (default on when E = H)\n"
            "      --dropout P        dropout before the output layer, and on the embeddings and between layers\n"
            "                         unless --dropout-in / --dropout-hidden say otherwise (default 0.2)\n"
            "      --init-scale S     weights uniform in (-S, S) (default 0.1)\n"
            "      --forget-bias B    LSTM forget-gate bias at init (default 1)\n"
            "      --peephole         LSTM: peephole weights from the cell state to the gates (Gers & Schmidhuber)\n"
            "      --attention K      the top layer's output attends over its own last K outputs, 1..64 (Daniluk et\n"
            "                         al. 2017; K = 5 takes most of the gain; the memory is carried state; default 0)\n"
            "      --softmax S        full (default) or adaptive: a head over the frequent ids plus tail clusters\n"
            "                         scored only for their own targets (Grave et al. 2017; untied)\n"
            "      --cutoffs C0,C1..  adaptive: the shortlist is ids below C0, cluster i ids [Ci, Ci+1) (implies\n"
            "                         --softmax adaptive; up to 4 cutoffs; lstm-tok numbers words by frequency)\n"
            "      --div D            adaptive: cluster i is projected to H / D^(i+1) dimensions (default 4)\n"
            "Regularization (in training only; AWD-LSTM, Merity et al. 2017)\n"
            "      --dropout-in P     dropout on the embeddings, the first layer's input (AWD's dropouti; default:\n"
            "                         --dropout)\n"
            "      --dropout-hidden P dropout between layers (AWD's dropouth; default: --dropout)\n"
            "      --locked-dropout / --no-locked-dropout\n"
            "                         the three dropouts draw one mask per lane for the whole window, the same\n"
            "                         at every step (variational dropout, Gal & Ghahramani 2016; default off)\n"
            "      --dropout-words P  embedding dropout: drop whole words (rows of the embedding) for the\n"
            "                         window's batch, the kept ones scaled by 1/(1-P) (AWD's dropoute; default 0)\n"
            "      --weight-drop P    DropConnect on each layer's recurrent weights W_hh: one mask per batch,\n"
            "                         the same at every step (AWD's wdrop; default 0)\n"
            "      --ar A             activation regularization: + A * mean of the squared (dropped) top-layer\n"
            "                         outputs (default 0)\n"
            "      --tar B            temporal activation regularization: + B * mean of (h_t - h_t-1)^2 of the\n"
            "                         top layer's undropped outputs (default 0); the loss reported stays the NLL\n"
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
            "                         --lr-decay --decay-after --warmup --dropout --valid, the regularization\n"
            "                         flags, and at an epoch boundary --batch --reset-state --valid-frac; as do\n"
            "                         -o --log --log-every --threads\n"
            "                         --time-limit --mem-budget -q. The model's --cell --layers --hidden --emb\n"
            "                         --tie/--no-tie --init-scale --forget-bias --peephole --attention --softmax\n"
            "                         --cutoffs --div, --optim and --seed cannot change\n"
            "      --seed N           random seed (default 1)\n"
            "      --threads N        BLAS threads (default: all cores; under mpirun, the cores / ranks per machine)\n"
            "      --no-overlap       under mpirun: reduce the gradients in one MPI_Allreduce after backward (default:\n"
            "                         each layer's as soon as backward has finished it, while the layers below run)\n"
            "      --log FILE.tsv     per-epoch and periodic per-step metrics\n"
            "      --log-every N      steps between per-step log rows (default 100)\n"
            "  -q, --quiet            no per-epoch lines\n"
            "  -v, --verbose          progress lines every 30 s even when stderr is not a terminal\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n"
            "\n"
            "Examples:\n"
            "  lstm-tok < chats.csv | lstm-window -L 15 | lstm-train\n"
            "  lstm-train --optim sgd --lr 20 --clip 0.25 --decay-after 4 --lr-decay 2 --epochs 13 \\\n"
            "      --hidden 200 --layers 2 --dropout 0 --batch 20 --valid valid.win -o ptb.ckpt train.win\n"
            "  lstm-train --cutoffs 2000,10000 --hidden 200 --valid valid.win -o big-vocab.ckpt train.win\n"
            "  lstm-train --optim sgd --lr 20 --hidden 200 --no-tie --locked-dropout --dropout 0.4 --dropout-in 0.5 \\\n"
            "      --dropout-hidden 0.2 --dropout-words 0.1 --weight-drop 0.5 --ar 2 --tar 1 --valid valid.win \\\n"
            "      -o awd.ckpt train.win      (AWD-LSTM's regularization)\n"
            "  mpirun -np 4 --hostfile hosts lstm-train --batch 64 --valid valid.win -o big.ckpt train.win\n"
            "      (4 ranks, each with 16 of the 64 lanes: the run of one process with --batch 64)\n");
}

/* ------------------------------------------------------------------ options */

enum { O_VALID = 256, O_VFRAC, O_MEM, O_CELL, O_LAYERS, O_HIDDEN, O_EMB, O_TIE, O_NOTIE, O_DROP, O_INIT, O_FB,
       O_OPTIM, O_LR, O_WD, O_CLIP, O_SCHED, O_DECAY, O_AFTER, O_WARM, O_BATCH, O_EPOCHS, O_PAT, O_RESET,
       O_TLIM, O_RESUME, O_SEED, O_THREADS, O_LOG, O_LOGEVERY, O_NOOVERLAP, O_SOFTMAX, O_CUTOFFS, O_DIV, O_PEEP, O_ATT,
       O_DROP_IN, O_DROP_HID, O_LOCKED, O_NOLOCKED, O_DROP_WORDS, O_WDROP, O_AR, O_TAR, O_END };


typedef struct {
    const char *train_path, *valid_path, *out_path, *resume_path, *log_path;
    unsigned char seen[O_END - O_VALID]; /* long options given on the command line, by O_* - O_VALID */
    long mem_budget_mb;
    lstm_train_config c;
    int tie_set, emb_set, lr_set, decay_set, sched_set, quiet, force, no_overlap;
    const char *cutoffs; /* as given */
} opts_t;



static const char *optim_name(int k) { return k == LSTM_OPT_SGD ? "sgd" : k == LSTM_OPT_ADAMW ? "adamw" : "adam"; }

static void parse_args(opts_t *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    lstm_train_config_default(&o->c);
    o->c.valid_frac = -1;
    o->mem_budget_mb = 2048;
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
        {"log-every", required_argument, 0, O_LOGEVERY}, {"no-overlap", no_argument, 0, O_NOOVERLAP},
        {"softmax", required_argument, 0, O_SOFTMAX}, {"cutoffs", required_argument, 0, O_CUTOFFS},
        {"div", required_argument, 0, O_DIV}, {"peephole", no_argument, 0, O_PEEP},
        {"attention", required_argument, 0, O_ATT},
        {"dropout-in", required_argument, 0, O_DROP_IN}, {"dropout-hidden", required_argument, 0, O_DROP_HID},
        {"locked-dropout", no_argument, 0, O_LOCKED}, {"no-locked-dropout", no_argument, 0, O_NOLOCKED},
        {"dropout-words", required_argument, 0, O_DROP_WORDS}, {"weight-drop", required_argument, 0, O_WDROP},
        {"ar", required_argument, 0, O_AR}, {"tar", required_argument, 0, O_TAR},
        {"output", required_argument, 0, 'o'},
        {"force", no_argument, 0, 'f'}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"verbose", no_argument, 0, 'v'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int ch;
    opterr = 0; /* getopt's own messages would start with the full argv[0] */
    while ((ch = getopt_long(argc, argv, ":o:fqvhV", lo, NULL)) != -1) {
        if (ch >= O_VALID && ch < O_END) o->seen[ch - O_VALID] = 1;
        switch (ch) {
        case O_VALID: o->valid_path = optarg; break;
        case O_VFRAC: o->c.valid_frac = tool_parse_double(optarg, "--valid-frac", 0, 0.9); break;
        case O_MEM: o->mem_budget_mb = tool_parse_long(optarg, "--mem-budget", 0, 1L << 30); break;
        case O_CELL:
            if ((o->c.model.cell = lstm_cell_from_name(optarg)) < 0) tool_die(2, "--cell: expected lstm, gru, rnn, cifg or lnlstm, got '%s'", optarg);
            break;
        case O_LAYERS: o->c.model.L = (int)tool_parse_long(optarg, "--layers", 1, LSTM_MAX_LAYERS); break;
        case O_HIDDEN: o->c.model.H = (int)tool_parse_long(optarg, "--hidden", 1, 16384); break;
        case O_EMB: o->c.model.E = (int)tool_parse_long(optarg, "--emb", 1, 16384); o->emb_set = 1; break;
        case O_TIE: o->c.model.tie = 1; o->tie_set = 1; break;
        case O_NOTIE: o->c.model.tie = 0; o->tie_set = 1; break;
        case O_DROP: o->c.model.dropout = (float)tool_parse_double(optarg, "--dropout", 0, 0.95); break;
        case O_DROP_IN: o->c.model.dropout_in = (float)tool_parse_double(optarg, "--dropout-in", 0, 0.95); break;
        case O_DROP_HID: o->c.model.dropout_hidden = (float)tool_parse_double(optarg, "--dropout-hidden", 0, 0.95); break;
        case O_LOCKED: o->c.model.locked = 1; break;
        case O_NOLOCKED: o->c.model.locked = 0; break;
        case O_DROP_WORDS: o->c.model.dropout_words = (float)tool_parse_double(optarg, "--dropout-words", 0, 0.95); break;
        case O_WDROP: o->c.model.weight_drop = (float)tool_parse_double(optarg, "--weight-drop", 0, 0.95); break;
        case O_AR: o->c.model.ar = (float)tool_parse_double(optarg, "--ar", 0, 1e6); break;
        case O_TAR: o->c.model.tar = (float)tool_parse_double(optarg, "--tar", 0, 1e6); break;
        case O_INIT: o->c.model.init_scale = (float)tool_parse_double(optarg, "--init-scale", 0, 10); break;
        case O_FB: o->c.model.forget_bias = (float)tool_parse_double(optarg, "--forget-bias", -100, 100); break;
        case O_OPTIM:
            if (!strcmp(optarg, "sgd")) o->c.optim = LSTM_OPT_SGD;
            else if (!strcmp(optarg, "adam")) o->c.optim = LSTM_OPT_ADAM;
            else if (!strcmp(optarg, "adamw")) o->c.optim = LSTM_OPT_ADAMW;
            else tool_die(2, "--optim: expected sgd, adam or adamw, got '%s'", optarg);
            break;
        case O_LR: o->c.lr = tool_parse_double(optarg, "--lr", 1e-12, 1e30); o->lr_set = 1; break;
        case O_WD: o->c.weight_decay = tool_parse_double(optarg, "--weight-decay", 0, 10); break;
        case O_CLIP: o->c.clip = tool_parse_double(optarg, "--clip", 0, 1e9); break;
        case O_SCHED:
            if (!strcmp(optarg, "const")) o->c.schedule = LSTM_SCHED_CONST;
            else if (!strcmp(optarg, "step")) o->c.schedule = LSTM_SCHED_STEP;
            else if (!strcmp(optarg, "plateau")) o->c.schedule = LSTM_SCHED_PLATEAU;
            else if (!strcmp(optarg, "cosine")) o->c.schedule = LSTM_SCHED_COSINE;
            else tool_die(2, "--schedule: expected const, step, plateau or cosine, got '%s'", optarg);
            o->sched_set = 1;
            break;
        case O_DECAY: o->c.lr_decay = tool_parse_double(optarg, "--lr-decay", 1, 1e6); o->decay_set = 1; break;
        case O_AFTER:
            o->c.decay_after = (int)tool_parse_long(optarg, "--decay-after", 0, 1000000);
            if (!o->sched_set) o->c.schedule = LSTM_SCHED_STEP;
            break;
        case O_WARM: o->c.warmup = tool_parse_long(optarg, "--warmup", 0, 1L << 40); break;
        case O_BATCH: o->c.batch = (int)tool_parse_long(optarg, "--batch", 1, 65536); break;
        case O_EPOCHS: o->c.epochs = (int)tool_parse_long(optarg, "--epochs", 1, 1000000); break;
        case O_PAT: o->c.patience = (int)tool_parse_long(optarg, "--patience", 0, 1000000); break;
        case O_RESET: o->c.reset_state = 1; break;
        case O_TLIM: o->c.time_limit = tool_parse_double(optarg, "--time-limit", 0, 1e9); break;
        case O_RESUME: o->resume_path = optarg; break;
        case O_SEED: o->c.seed = (uint64_t)tool_parse_long(optarg, "--seed", 0, 0x7fffffffffffffffL); break;
        case O_THREADS: o->c.threads = (int)tool_parse_long(optarg, "--threads", 1, 1024); break;
        case O_LOG: o->log_path = optarg; break;
        case O_LOGEVERY: o->c.log_every = tool_parse_long(optarg, "--log-every", 1, 1L << 40); break;
        case O_NOOVERLAP: o->no_overlap = 1; break;
        case O_SOFTMAX:
            if (!strcmp(optarg, "full")) o->c.model.softmax = LSTM_SOFTMAX_FULL;
            else if (!strcmp(optarg, "adaptive")) o->c.model.softmax = LSTM_SOFTMAX_ADAPTIVE;
            else tool_die(2, "--softmax: expected full or adaptive, got '%s'", optarg);
            break;
        case O_CUTOFFS:
            if (lstm_asm_parse_cutoffs(optarg, o->c.model.cutoffs, &o->c.model.n_cutoffs))
                tool_die(2, "--cutoffs: expected 1 to %d comma-separated ids such as 2000,10000, got '%s'",
                    LSTM_MAX_CLUSTERS, optarg);
            for (int i = 1; i < o->c.model.n_cutoffs; i++)
                if (o->c.model.cutoffs[i] <= o->c.model.cutoffs[i - 1])
                    tool_die(2, "--cutoffs: each cutoff must be above the one before, got '%s'", optarg);
            if (o->c.model.cutoffs[0] < 1) tool_die(2, "--cutoffs: the shortlist (below the first cutoff) cannot be empty");
            o->cutoffs = optarg;
            break;
        case O_PEEP: o->c.model.peephole = 1; break;
        case O_ATT: o->c.model.attention = (int)tool_parse_long(optarg, "--attention", 0, LSTM_MAX_ATTENTION); break;
        case O_DIV: o->c.model.div = (float)tool_parse_double(optarg, "--div", 1, 1e6); break;
        case 'o': o->out_path = optarg; break;
        case 'f': o->force = 1; break;
        case 'q': o->quiet = 1, tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'h': usage(stdout); exit(0);
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (argc - optind > 1) tool_die(2, "one training input at most (got %d)", argc - optind);
    o->train_path = optind < argc ? argv[optind] : NULL;
    if (!o->emb_set) o->c.model.E = o->c.model.H;
    if (o->c.model.peephole && o->c.model.cell != LSTM_CELL_LSTM)
        tool_die(2, "--peephole: only with --cell lstm (got --cell %s)", lstm_cell_name(o->c.model.cell));
    if (o->cutoffs && !o->seen[O_SOFTMAX - O_VALID]) o->c.model.softmax = LSTM_SOFTMAX_ADAPTIVE;
    if (o->c.model.softmax == LSTM_SOFTMAX_ADAPTIVE) {
        if (!o->cutoffs) tool_die(2, "--softmax adaptive needs --cutoffs, e.g. --cutoffs 2000,10000");
        if (o->tie_set && o->c.model.tie)
            tool_die(2, "--tie: the adaptive softmax has no single output matrix to share with the embedding");
        o->tie_set = 1, o->c.model.tie = 0;
        lstm_asm_shape sh;
        int big[LSTM_MAX_CLUSTERS];
        for (int i = 0; i < o->c.model.n_cutoffs; i++) big[i] = i + 1; /* the vocabulary is checked later */
        if (lstm_asm_shape_init(&sh, o->c.model.n_cutoffs + 1, o->c.model.H, big, o->c.model.n_cutoffs, o->c.model.div))
            tool_die(2, "--div %g: cluster %d would be projected to less than 1 of --hidden %d dimensions",
                (double)o->c.model.div, o->c.model.n_cutoffs, o->c.model.H);
    } else if (o->cutoffs || o->seen[O_DIV - O_VALID])
        tool_die(2, "%s: only with --softmax adaptive", o->cutoffs ? "--cutoffs" : "--div");
    if (!o->tie_set) o->c.model.tie = o->c.model.E == o->c.model.H;
    if (o->c.model.tie && o->c.model.E != o->c.model.H) tool_die(2, "--tie needs --emb equal to --hidden (%d vs %d)", o->c.model.E, o->c.model.H);
    if (!o->lr_set) o->c.lr = o->c.optim == LSTM_OPT_SGD ? 20 : 0.002;
    if (!o->decay_set) o->c.lr_decay = o->c.schedule == LSTM_SCHED_PLATEAU ? 4 : 2;
    if (o->c.valid_frac < 0) o->c.valid_frac = o->valid_path ? 0 : 0.05;
    if (o->valid_path && o->c.valid_frac > 0) tool_die(2, "--valid and --valid-frac exclude each other");
    if (o->c.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o->c.threads = n > 0 ? (int)n : 1;
    }
}
/* Whether a long option was given (in any spelling getopt accepts: --name, --name=V, an abbreviation). */
static int given_opt(const opts_t *o, int opt) { return o->seen[opt - O_VALID]; }

/* The flags given again, as the trainer's LSTM_TF_* bits. */
static uint32_t given_mask(const opts_t *o)
{
    static const struct { int opt; uint32_t bit; } map[] = {
        {O_CELL, LSTM_TF_CELL}, {O_LAYERS, LSTM_TF_LAYERS}, {O_HIDDEN, LSTM_TF_HIDDEN}, {O_EMB, LSTM_TF_EMB},
        {O_TIE, LSTM_TF_TIE}, {O_NOTIE, LSTM_TF_TIE}, {O_INIT, LSTM_TF_INIT}, {O_FB, LSTM_TF_FB},
        {O_DROP, LSTM_TF_DROPOUT}, {O_OPTIM, LSTM_TF_OPTIM}, {O_LR, LSTM_TF_LR}, {O_WD, LSTM_TF_WD},
        {O_CLIP, LSTM_TF_CLIP}, {O_SCHED, LSTM_TF_SCHEDULE}, {O_DECAY, LSTM_TF_DECAY}, {O_AFTER, LSTM_TF_AFTER},
        {O_WARM, LSTM_TF_WARMUP}, {O_BATCH, LSTM_TF_BATCH}, {O_EPOCHS, LSTM_TF_EPOCHS}, {O_PAT, LSTM_TF_PATIENCE},
        {O_RESET, LSTM_TF_RESET}, {O_SEED, LSTM_TF_SEED}, {O_VFRAC, LSTM_TF_VALID_FRAC}, {O_VALID, LSTM_TF_VALID},
        {O_SOFTMAX, LSTM_TF_SOFTMAX}, {O_CUTOFFS, LSTM_TF_SOFTMAX}, {O_DIV, LSTM_TF_SOFTMAX}, {O_PEEP, LSTM_TF_PEEP},
        {O_ATT, LSTM_TF_ATT}};
    uint32_t m = 0;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (given_opt(o, map[i].opt)) m |= map[i].bit;
    return m;
}

/* The regularization flags given again, as the trainer's LSTM_TR_* bits. */
static uint32_t given_reg_mask(const opts_t *o)
{
    static const struct { int opt; uint32_t bit; } map[] = {
        {O_DROP_IN, LSTM_TR_DROPOUT_IN}, {O_DROP_HID, LSTM_TR_DROPOUT_HIDDEN}, {O_LOCKED, LSTM_TR_LOCKED},
        {O_NOLOCKED, LSTM_TR_LOCKED}, {O_DROP_WORDS, LSTM_TR_DROPOUT_WORDS}, {O_WDROP, LSTM_TR_WEIGHT_DROP},
        {O_AR, LSTM_TR_AR}, {O_TAR, LSTM_TR_TAR}};
    uint32_t m = 0;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (given_opt(o, map[i].opt)) m |= map[i].bit;
    return m;
}

/* ------------------------------------------------------------------ messages */

/* The dropout and regularization of the start line: "0.2", or e.g. "0.4 locked (in 0.5, hidden 0.2),
 * words 0.1, weight drop 0.5, AR 2, TAR 1". */
static const char *reg_desc(const lstm_model_config *c, char *buf, size_t cap)
{
    size_t k = 0;
#define ADD(...) (k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, __VA_ARGS__), k = k < cap ? k : cap - 1)
    buf[0] = 0;
    ADD("%g%s", (double)c->dropout, c->locked ? " locked" : "");
    if (c->dropout_in >= 0 || c->dropout_hidden >= 0)
        ADD(" (in %g, hidden %g)", (double)lstm_model_p_in(c), (double)lstm_model_p_hidden(c));
    if (c->dropout_words > 0) ADD(", words %g", (double)c->dropout_words);
    if (c->weight_drop > 0) ADD(", weight drop %g", (double)c->weight_drop);
    if (c->ar > 0) ADD(", AR %g", (double)c->ar);
    if (c->tar > 0) ADD(", TAR %g", (double)c->tar);
#undef ADD
    return buf;
}

/* ", adaptive softmax 2000,10000 div 4" or "" for the start line. */
static const char *softmax_desc(const lstm_model_config *c, char *buf, size_t cap)
{
    buf[0] = 0;
    if (c->softmax != LSTM_SOFTMAX_ADAPTIVE) return buf;
    int k = snprintf(buf, cap, ", adaptive softmax ");
    for (int i = 0; i < c->n_cutoffs && k >= 0 && (size_t)k < cap; i++)
        k += snprintf(buf + k, cap - (size_t)k, i ? ",%d" : "%d", c->cutoffs[i]);
    if (k >= 0 && (size_t)k < cap) snprintf(buf + k, cap - (size_t)k, " div %g", (double)c->div);
    return buf;
}


static double safe_ppl(double loss) { return lstm_eval_ppl(loss); }

/* What a stopped run leaves: the best model only if one was written. */
static const char *kept_msg(char *buf, size_t cap, const char *out_path, int saved)
{
    if (saved) snprintf(buf, cap, "%s kept the last good model", out_path);
    else snprintf(buf, cap, "no model was saved");
    return buf;
}

/* A flag given again on resume that the checkpoint fixes (exit 2). */
static _Noreturn void die_conflict(uint32_t bit, const opts_t *o, const lstm_train_ckpt *ck)
{
    const lstm_model_config *c = &ck->f.model.cfg;
    const lstm_train_config *s = &ck->cfg;
    char model[128];
    snprintf(model, sizeof model, "the checkpoint's model is %s %dx%d, emb %d, %s", lstm_cell_name(c->cell), c->L, c->H,
             c->E, c->tie ? "tied" : "untied");
    const char *shape = bit == LSTM_TF_CELL ? "--cell" : bit == LSTM_TF_LAYERS ? "--layers" : bit == LSTM_TF_HIDDEN ? "--hidden"
                      : bit == LSTM_TF_EMB ? "--emb" : bit == LSTM_TF_TIE ? (given_opt(o, O_TIE) ? "--tie" : "--no-tie") : NULL;
    if (shape) tool_die(2, "%s cannot change when resuming (%s)", shape, model);
    if (bit == LSTM_TF_PEEP) tool_die(2, "--peephole cannot change when resuming (%s, %s)", model,
        c->peephole ? "with peepholes" : "without peepholes");
    if (bit == LSTM_TF_ATT) {
        if (c->attention > 0) tool_die(2, "--attention cannot change when resuming (%s, --attention %d)", model, c->attention);
        tool_die(2, "--attention cannot change when resuming (%s, without attention)", model);
    }
    if (bit == LSTM_TF_SOFTMAX) {
        char cuts[64] = "";
        for (int i = 0, k = 0; i < c->n_cutoffs && k >= 0 && k < (int)sizeof cuts; i++)
            k += snprintf(cuts + k, sizeof cuts - (size_t)k, i ? ",%d" : "%d", c->cutoffs[i]);
        if (c->softmax == LSTM_SOFTMAX_ADAPTIVE)
            tool_die(2, "--softmax, --cutoffs and --div cannot change when resuming (the checkpoint's model has an "
                "adaptive softmax, --cutoffs %s --div %g)", cuts, (double)c->div);
        tool_die(2, "--softmax, --cutoffs and --div cannot change when resuming (the checkpoint's model has a full softmax)");
    }
    if (bit == LSTM_TF_INIT)
        tool_die(2, "--init-scale cannot change when resuming (the checkpoint's model was initialised with --init-scale %g)",
            (double)c->init_scale);
    if (bit == LSTM_TF_FB)
        tool_die(2, "--forget-bias cannot change when resuming (the checkpoint's model was initialised with --forget-bias %g)",
            (double)c->forget_bias);
    if (bit == LSTM_TF_SEED)
        tool_die(2, "--seed cannot change when resuming (the checkpoint continues the random stream of --seed %llu)",
            (unsigned long long)s->seed);
    if (bit == LSTM_TF_OPTIM)
        tool_die(2, "--optim: the checkpoint was trained with %s; resuming with another optimizer is not supported",
            optim_name(s->optim));
    if (bit == LSTM_TF_BATCH) tool_die(2, "--batch: cannot change the batch in the middle of an epoch");
    if (bit == LSTM_TF_RESET) tool_die(2, "--reset-state: cannot change in the middle of an epoch");
    tool_die(2, "%s: cannot change the held-out windows in the middle of an epoch (the checkpoint holds out %g)",
        bit == LSTM_TF_VALID_FRAC ? "--valid-frac" : "--valid", s->valid_frac);
}

static _Noreturn void die_too_big(const lstm_train_error *e, const char *what, const char *hint)
{
    tool_die(1, "%s need about %.0f MB, more than this machine's %.0f MB allow: %s", what, e->need / 1048576, e->have / 1048576,
        hint);
}

/* The message for a failed create, resume or run (the callbacks' own failures have said theirs). */
static _Noreturn void die_train(const lstm_train_error *e, const opts_t *o, const char *tname, const char *vname)
{
    char what[96];
    int rc = e->rc;
    switch (e->at) {
    case LSTM_TRAIN_AT_CONFIG:
        if (o->c.model.softmax == LSTM_SOFTMAX_ADAPTIVE)
            tool_die(2, "--cutoffs %s: every cutoff must be below the vocabulary size, %ld ids in %s", o->cutoffs, e->a, tname);
        tool_die(2, "invalid model configuration");
    case LSTM_TRAIN_AT_MODEL_SIZE:
        die_too_big(e, "the model's parameters, gradients and optimizer state", "lower --hidden, --emb or --layers");
    case LSTM_TRAIN_AT_MODEL: tool_die(1, "model: %s", lstm_strerror(rc));
    case LSTM_TRAIN_AT_VOCAB: tool_die(1, "%s: vocabulary size %ld differs from the model's %ld", tname, e->a, e->b);
    case LSTM_TRAIN_AT_OPTIM: tool_die(1, "optimizer: %s", lstm_strerror(rc));
    case LSTM_TRAIN_AT_MOMENTS: tool_die(1, "%s: no optimizer moments saved", o->resume_path);
    case LSTM_TRAIN_AT_ACTS_SIZE:
        snprintf(what, sizeof what, "activations for batch %ld x %ld", e->a, e->b);
        die_too_big(e, what, "lower --batch or make shorter windows (lstm-window -L)");
    case LSTM_TRAIN_AT_ACTS: tool_die(1, "allocating activations for batch %ld x %ld: %s", e->a, e->b, lstm_strerror(rc));
    case LSTM_TRAIN_AT_LANES: tool_die(1, "%s: saved state has %ld lanes, not %ld", o->resume_path, e->a, e->b);
    case LSTM_TRAIN_AT_DATA: tool_die(1, "%s: %s", tname, lstm_strerror(rc));
    case LSTM_TRAIN_AT_FORWARD: tool_die(1, "forward: %s", lstm_strerror(rc));
    case LSTM_TRAIN_AT_BACKWARD: tool_die(1, "backward: %s", lstm_strerror(rc));
    case LSTM_TRAIN_AT_PADDING:
        tool_die(1, "%s: every target of the training windows is padding: nothing to train on, no model saved", tname);
    case LSTM_TRAIN_AT_VALID: tool_die(1, "%s: %s", vname, lstm_strerror(rc));
    case LSTM_TRAIN_AT_SAVE:
        if (dist_rank() > 0) tool_die(1, "%s: rank 0 could not write it", e->path);
        tool_die(1, "%s: %s", e->path, rc == LSTM_E_IO ? strerror(e->sys_errno) : lstm_strerror(rc));
    case LSTM_TRAIN_AT_RANKS:
        tool_die(2, "--batch %ld: fewer lanes than the %ld ranks (each rank trains lanes of its own): give --batch %ld or "
                 "more, or fewer ranks", e->a, e->b, e->b);
    case LSTM_TRAIN_AT_DIST: tool_die(1, "MPI: a collective across the ranks failed (a rank stopped?): stopping");
    case LSTM_TRAIN_AT_DIVERGED:
        tool_die(1, "the ranks' weights differ at the end of epoch %d (their reductions did not give every rank the "
                 "same sum): stopping without saving it; the checkpoints of the epoch before are kept",
                 (int)e->a);
    case LSTM_TRAIN_AT_CALLBACK: exit(1);
    default: tool_die(1, "out of memory");
    }
}

/* ------------------------------------------------------------------ progress, through the trainer's callbacks */

typedef struct {
    const opts_t *o;
    const lstm_trainer *t;
    FILE *logf;
    int tty, n_tensors;
    double t0, last_print;
} run_t;

static void on_batch_capped(void *ctx, int batch, uint64_t windows)
{
    const run_t *r = ctx;
    if (!r->o->quiet)
        fprintf(stderr, PROG ": --batch %d is more than the %llu training windows: using %llu\n", batch,
                (unsigned long long)windows, (unsigned long long)windows);
}

static int on_log(void *ctx, const lstm_train_progress *p)
{
    run_t *r = ctx;
    double l = p->log_loss;
    fprintf(r->logf, "step\t%d\t%llu\t%llu\t%.3f\t%.6g\t%.6f\t%.4f\t\t\t%.6g\t%.1f", p->epoch,
            (unsigned long long)p->global_step, (unsigned long long)p->tokens, p->train_time, p->lr, l, safe_ppl(l),
            p->grad_norm, (double)p->epoch_tokens / p->epoch_time);
    for (int i = 0; i < r->n_tensors; i++) fprintf(r->logf, "\t%.6g", p->tensor_norms[i]);
    fputc('\n', r->logf);
    return 0;
}

/* The \r line on a terminal, at most twice a second. */
static int on_step(void *ctx, const lstm_train_progress *p)
{
    run_t *r = ctx;
    double tnow = tool_now(), limit = lstm_trainer_config(r->t)->time_limit;
    int lines = !r->tty && tool_verbosity >= TOOL_VERBOSE; /* -v into a file: a line every 30 s */
    if ((!r->tty && !lines) || r->o->quiet || tnow - r->last_print <= (lines ? 30 : 0.5)) return 0;
    r->last_print = tnow;
    double frac = (double)(p->step + 1) / (double)p->steps, rate = (double)p->epoch_tokens / p->epoch_time;
    double left = p->epoch_time / frac * (1 - frac);
    if (limit > 0 && left > limit - p->train_time) left = limit - p->train_time; /* the run ends at the limit */
    char eta[32];
    tool_fmt_duration(eta, sizeof eta, left > 0 ? left : 0);
    fprintf(stderr, "%s" PROG ": epoch %d/%d %5.1f%% loss %.3f ppl %.1f lr %.3g %.0f tok/s ETA %s%s", lines ? "" : "\r",
            p->epoch, p->epochs, 100 * frac, p->epoch_loss, safe_ppl(p->epoch_loss), p->lr, rate, eta, lines ? "\n" : "   ");
    return 0;
}

static int on_steps_done(void *ctx)
{
    run_t *r = ctx;
    r->last_print = 0;
    if (r->tty && !r->o->quiet) fputs("\r\033[K", stderr);
    return 0;
}

static int on_epoch(void *ctx, const lstm_train_epoch_report *e)
{
    run_t *r = ctx;
    char el[32];
    tool_fmt_duration(el, sizeof el, tool_now() - r->t0);
    double rate = e->epoch_time > 0 ? (double)e->epoch_tokens / e->epoch_time : 0, tl = e->train_loss, vl = e->valid_loss;
    if (!r->o->quiet) {
        if (e->has_valid)
            fprintf(stderr, PROG ": epoch %d/%d: train loss %.4f ppl %.2f | valid loss %.4f ppl %.2f%s | lr %.4g | %.0f tok/s | %s\n",
                    e->epoch, e->epochs, tl, safe_ppl(tl), vl, safe_ppl(vl), e->improved ? " *" : "", e->lr, rate, el);
        else
            fprintf(stderr, PROG ": epoch %d/%d: train loss %.4f ppl %.2f | lr %.4g | %.0f tok/s | %s\n", e->epoch,
                    e->epochs, tl, safe_ppl(tl), e->lr, rate, el);
    }
    if (r->logf) {
        fprintf(r->logf, "epoch\t%d\t%llu\t%llu\t%.3f\t%.6g\t%.6f\t%.4f\t%.6f\t%.4f\t%.6g\t%.1f", e->epoch,
                (unsigned long long)e->global_step, (unsigned long long)e->tokens, e->train_time, e->lr, tl, safe_ppl(tl),
                vl, safe_ppl(vl), e->grad_norm, rate);
        for (int i = 0; i < r->n_tensors; i++) fputs("\t", r->logf);
        fputc('\n', r->logf);
        if (fflush(r->logf) != 0 || ferror(r->logf)) tool_die(1, "%s: %s", r->o->log_path, strerror(errno));
    }
    if (e->stop_early && !r->o->quiet)
        fprintf(stderr, PROG ": no validation improvement for %d epochs: stopping early\n",
                lstm_trainer_config(r->t)->patience);
    if (e->time_up && !r->o->quiet) fprintf(stderr, PROG ": time limit reached\n");
    return 0;
}

/* ------------------------------------------------------------------ set-up */

static lstm_lock out_lock = {-1, NULL};
static void release_lock(void) { lstm_lock_release(&out_lock); }

/* Output paths, checked before any work so a long run cannot fail at the end; then the lock. Only
 * the writer (rank 0) checks the files and takes the lock; the other ranks need the names. */
static void check_outputs(opts_t *o, char *out_path, size_t ocap, char *last_path, size_t lcap, int writer)
{
    if (o->out_path) snprintf(out_path, ocap, "%s", o->out_path);
    else if (o->resume_path) {
        snprintf(out_path, ocap, "%s", o->resume_path);
        size_t n = strlen(out_path);
        if (n > 5 && !strcmp(out_path + n - 5, ".last")) out_path[n - 5] = 0;
        o->force = 1; /* resuming continues the same run */
    } else snprintf(out_path, ocap, "model.ckpt");
    snprintf(last_path, lcap, "%s.last", out_path);
    if (!strcmp(out_path, "-"))
        tool_die(2, "-o -: a checkpoint and its .last training state need real files (give -o FILE)");
    if (lstm_out_in_place(out_path))
        tool_die(2, "%s: a checkpoint and its .last training state need real files (give -o FILE)", out_path);
    if (!writer) return;
    /* No two outputs and no output and input may name one file. */
    const char *ins[3] = {o->train_path, o->valid_path, o->resume_path};
    const char *ouns[3] = {out_path, last_path, o->log_path};
    const char *onames[3] = {"-o", "-o's .last", "--log"}, *inames[3] = {"the training input", "--valid", "--resume"};
    for (int i = 0; i < 3; i++) {
        for (int j = i + 1; j < 3; j++)
            if (lstm_same_file(ouns[i], ouns[j])) tool_die(2, "%s and %s name the same file (%s)", onames[i], onames[j], ouns[j]);
        for (int j = 0; j < 3; j++) {
            if (j == 2 && i < 2) continue; /* resuming writes its own run's checkpoints again */
            if (lstm_same_file(ouns[i], ins[j])) tool_die(2, "%s names %s (%s): it would be overwritten", onames[i], inames[j], ouns[i]);
        }
    }
    if (o->log_path && !o->force && !o->resume_path && !lstm_out_in_place(o->log_path) && !access(o->log_path, F_OK))
        tool_die(1, "%s: file exists (use -f to overwrite, or --log another file)", o->log_path);
    if (!o->force && !access(out_path, F_OK)) tool_die(1, "%s: file exists (use -f to overwrite, or -o another file)", out_path);
    /* ...including that they can be created at all (a missing directory, a read-only one): a temp file
     * beside each, removed at once. */
    const char *outs[2] = {out_path, last_path};
    for (int i = 0; i < 2; i++) {
        lstm_out probe;
        int prc = lstm_out_open(&probe, outs[i], 1);
        if (prc) tool_die(1, "%s: %s", outs[i], prc == LSTM_E_IO ? strerror(errno) : lstm_strerror(prc));
        lstm_out_abort(&probe);
    }
    long holder;
    int lrc = lstm_lock_take(&out_lock, out_path, &holder);
    if (lrc == LSTM_E_BUSY && holder > 0) tool_die(1, "%s: another process (pid %ld) is training into it", out_path, holder);
    if (lrc == LSTM_E_BUSY) tool_die(1, "%s: another process is training into it", out_path);
    if (lrc) tool_die(1, "%s.lock: %s", out_path, lrc == LSTM_E_IO ? strerror(errno) : lstm_strerror(lrc));
    atexit(release_lock);
}

/* The training windows, with the tokenizer every checkpoint of the run will carry. */
static lstm_dataset *open_train(const opts_t *o, const char *tname, int nranks)
{
    lstm_dataset *d;
    uint32_t kind;
    char msg[4400];
    int from_stdin = !(o->train_path && strcmp(o->train_path, "-")), rc;
    if (nranks > 1 && from_stdin && dist_rank() > 0) { /* rank 0 reads stdin: its header, its windows later */
        uint8_t *h = NULL;
        size_t hl = 0;
        if ((rc = dist_bcast(&h, &hl)) || (rc = lstm_dataset_from_header(&d, h, hl)))
            tool_die(1, "stdin: the windows' header from rank 0: %s", lstm_strerror(rc));
        free(h);
        return d;
    }
    /* A rank holds only its lanes' windows: the file is counted, its share loaded by the trainer. */
    if (nranks > 1) rc = lstm_dataset_open_lazy(&d, o->train_path, (size_t)o->mem_budget_mb << 20, &kind);
    else rc = lstm_dataset_open(&d, o->train_path, (size_t)o->mem_budget_mb << 20, &kind);
    if (rc == LSTM_E_TEXT && o->train_path && strcmp(o->train_path, "-"))
        tool_die(1, "%s: a text/CSV file, not windows: tokenize it and cut it into windows (lstm-tok %s | "
               "lstm-window -L 15 | lstm-train ...)", tname, tname);
    if (rc == LSTM_E_TEXT)
        tool_die(1, "stdin: text/CSV, not windows: tokenize it and cut it into windows (... | lstm-tok | "
               "lstm-window -L 15 | lstm-train ...)");
    if (rc) tool_die(1, "%s", lstm_dataset_open_message(rc, kind, tname, msg, sizeof msg));
    size_t tok_len;
    const uint8_t *tok = lstm_meta_get(lstm_dataset_meta(d), "tokenizer", &tok_len);
    if (!tok) tool_die(1, "%s: the stream carries no tokenizer", tname);
    /* Never write a checkpoint that lstm-eval and lstm-sample would refuse. */
    if ((rc = lstm_tokenizer_blob_check(tok, tok_len)))
        tool_die(1, "%s: the stream's tokenizer is invalid (%s): tokenize the text again with lstm-tok", tname, lstm_strerror(rc));
    if (lstm_dataset_count(d) == 0) tool_die(1, "%s: no windows to train on", tname);
    if (nranks > 1 && from_stdin) {
        uint8_t *h;
        size_t hl;
        if ((rc = lstm_dataset_header(d, &h, &hl)) || (rc = dist_bcast(&h, &hl)))
            tool_die(1, "stdin: sending the windows' header to the other ranks: %s", lstm_strerror(rc));
        free(h);
    }
    return d;
}

/* How the windows' documents were read (lstm-window --reverse, --reverse-turns: fill.h). */
static int windows_reversed(const lstm_dataset *d)
{
    int r = lstm_meta_reverse(lstm_dataset_meta(d));
    if (r < 0) tool_die(1, "the windows' \"reverse\" metadata is neither docs nor turns: cut them again with lstm-window");
    return r;
}

static const char *direction(int reverse) { return lstm_reverse_desc(reverse); }

/* The checkpoint to resume, with the flags given again applied to its saved ones. */
static void open_resume(lstm_train_ckpt *ck, opts_t *o, lstm_dataset *train, const char *tname)
{
    size_t tok_len;
    const uint8_t *tok = lstm_meta_get(lstm_dataset_meta(train), "tokenizer", &tok_len);
    int rc = lstm_train_ckpt_open(ck, o->resume_path, tok, tok_len);
    if (rc == LSTM_E_NAN)
        tool_die(1, "%s: weights are NaN/Inf (tensor %s): the training that wrote it diverged", o->resume_path, ck->f.bad_tensor);
    if (rc == LSTM_E_VOCAB)
        tool_die(1, "%s: tokenizer does not match the checkpoint %s's: tokenize with lstm-tok -m %s", tname, o->resume_path,
            o->resume_path);
    if (rc == LSTM_E_NOTFOUND) tool_die(1, "%s: no training state to resume from", o->resume_path);
    if (rc == LSTM_E_KIND)
        tool_die(1, "%s: an exported model (lstm-export), not a checkpoint: --resume needs the checkpoint lstm-train wrote",
                 o->resume_path);
    if (rc) tool_die(1, "%s: %s", o->resume_path, rc == LSTM_E_IO ? strerror(errno) : lstm_strerror(rc));
    uint32_t conflict = 0;
    if (lstm_train_ckpt_apply(ck, &o->c, given_mask(o), &conflict)) die_conflict(conflict, o, ck);
    lstm_train_ckpt_apply_reg(ck, &o->c, given_reg_mask(o));
    /* Validation data: a new --valid or --valid-frac replaces the saved choice; else the saved file is reopened. */
    if (!given_opt(o, O_VALID) && !given_opt(o, O_VFRAC) && ck->valid_path[0]) o->valid_path = ck->valid_path;
}

/* The --valid windows: tokenized like the training data, windows of the same length. */
static lstm_dataset *open_valid(const opts_t *o, const lstm_dataset *train, const char *tname, int from_ckpt,
                                char *abs /* (PATH_MAX + 1) */, const char **saved)
{
    lstm_dataset *v;
    uint32_t kind;
    char msg[4400];
    const char *vname = o->valid_path;
    int T = (int)lstm_dataset_T(train);
    int rc = dist_size() > 1 ? lstm_dataset_open_lazy(&v, vname, (size_t)o->mem_budget_mb << 20, &kind)
                             : lstm_dataset_open(&v, vname, (size_t)o->mem_budget_mb << 20, &kind);
    if (rc && from_ckpt)
        tool_die(1, "%s (the validation windows of %s: give --valid FILE or --valid-frac F)",
            lstm_dataset_open_message(rc, kind, vname, msg, sizeof msg), o->resume_path);
    if (rc == LSTM_E_TEXT) /* it must be tokenized like the training data: a window stream names its tokenizer */
        tool_die(1, "%s: a text/CSV file, not windows: tokenize it like the training data and cut it into windows "
               "(lstm-tok -m %s %s | lstm-window -L %d > valid.win)",
            vname, o->train_path && strcmp(o->train_path, "-") ? tname : "<vocab or checkpoint>", vname, T);
    if (rc) tool_die(1, "%s", lstm_dataset_open_message(rc, kind, vname, msg, sizeof msg));
    /* Saved absolute, so that a resume from another directory finds it again. */
    *saved = realpath(vname, abs) ? abs : vname;
    if (strchr(*saved, '\n') || strlen(*saved) > PATH_MAX)
        tool_die(2, "--valid: a path with a newline or longer than %d bytes cannot be saved for --resume", PATH_MAX);
    size_t vl, tl;
    const uint8_t *vb = lstm_meta_get(lstm_dataset_meta(v), "tokenizer", &vl);
    const uint8_t *tb = lstm_meta_get(lstm_dataset_meta(train), "tokenizer", &tl);
    if (!vb || vl != tl || memcmp(vb, tb, tl))
        tool_die(1, "%s: tokenizer does not match %s's: tokenize it with lstm-tok -m <vocab or checkpoint>", vname, tname);
    if ((int)lstm_dataset_T(v) != T) tool_die(1, "%s: window length %u differs from %s's %d", vname, lstm_dataset_T(v), tname, T);
    if (windows_reversed(v) != windows_reversed(train))
        tool_die(1, "%s: documents %s, but %s's are %s: cut both the same way", vname, direction(windows_reversed(v)), tname,
                 direction(windows_reversed(train)));
    if (lstm_dataset_count(v) == 0) tool_die(1, "%s: no windows to validate on", vname);
    return v;
}

/* The stream's provenance, the checkpoint's when resuming, plus this command. */
static char *provenance(const lstm_dataset *train, const lstm_train_ckpt *ck, int argc, char **argv)
{
    lstm_meta prov;
    lstm_meta_init(&prov);
    lstm_meta_copy(&prov, lstm_dataset_meta(train));
    if (ck && ck->f.provenance) lstm_meta_set(&prov, "provenance", ck->f.provenance, ck->f.provenance_len);
    lstm_meta_add_provenance(&prov, argc, argv);
    size_t pl;
    const uint8_t *pv = lstm_meta_get(&prov, "provenance", &pl);
    char *s = pv ? strndup((const char *)pv, pl) : NULL;
    lstm_meta_free(&prov);
    return s;
}

static FILE *open_log(const opts_t *o, const lstm_model *m)
{
    FILE *f = fopen(o->log_path, o->resume_path ? "a" : "w");
    if (!f) tool_die(1, "%s: %s", o->log_path, strerror(errno));
    if (!o->resume_path || ftell(f) == 0) {
        fprintf(f, "kind\tepoch\tstep\ttokens\telapsed_s\tlr\tloss\tppl\tvalid_loss\tvalid_ppl\tgrad_norm\ttok_per_s");
        for (int i = 0; i < m->n_tensors; i++) fprintf(f, "\tgn:%s", m->tensors[i].name);
        fputc('\n', f);
    }
    return f;
}

/* The last lines of a run that ended well: the best model, and where the memory went (parameters,
 * gradients and optimizer moments share one layout). */
static void report_done(const lstm_trainer *t, const char *out_path, double t0)
{
    lstm_train_info in;
    lstm_trainer_info(t, &in);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char el[32];
    tool_fmt_duration(el, sizeof el, tool_now() - t0);
    int valid = in.valid_windows > 0;
    if (valid && isfinite(in.best_valid) && access(out_path, F_OK) != 0) /* resumed into a new -o, never beaten */
        fprintf(stderr, PROG ": best valid ppl %.2f (epoch %d, before the resume) not beaten: %s not written; %s\n",
                safe_ppl(in.best_valid), in.best_epoch, out_path, el);
    else if (valid && isfinite(in.best_valid))
        fprintf(stderr, PROG ": best valid ppl %.2f (epoch %d) saved to %s; %s\n", safe_ppl(in.best_valid), in.best_epoch,
                out_path, el);
    else
        fprintf(stderr, PROG ": model saved to %s; %s\n", out_path, el);
    double mb = 1.0 / (1 << 20), pb = (double)in.params_bytes * mb, ob = (double)in.optim_bytes * mb;
    double ab = (double)in.acts_bytes * mb;
    fprintf(stderr,
            PROG ": memory: parameters %.1f MB + gradients %.1f MB + optimizer %.1f MB + activations %.1f MB "
            "= %.1f MB; peak resident %.1f MB\n",
            pb, pb, ob, ab, 2 * pb + ob + ab, (double)ru.ru_maxrss / 1024);
}

int main(int argc, char **argv)
{
    opts_t o;
    tool_init(PROG);
    if (lstm_reserve_std_fds(NULL)) tool_die(1, "cannot open /dev/null for a closed standard stream");
    parse_args(&o, argc, argv);
    const char *grace = getenv("LSTM_STOP_GRACE");
    if (grace) {
        long g;
        if (lstm_parse_long(grace, 1, 86400, &g)) tool_die(2, "LSTM_STOP_GRACE: expected seconds from 1 to 86400, got '%s'", grace);
        stop_grace = (unsigned)g;
    }
    /* ---- under mpirun: this process's rank; the others stay silent but for their errors ---- */
    int nranks = dist_init(&argc, &argv), rank = dist_rank();
    if (nranks < 0)
        tool_die(1, "started by mpirun as one rank of several, but built without MPI: install libopenmpi-dev and "
                 "build again (make)");
    static char rank_prog[64];
    if (rank > 0) {
        snprintf(rank_prog, sizeof rank_prog, PROG ": rank %d", rank);
        tool_init(rank_prog);
        o.quiet = 1;
        tool_verbosity = TOOL_QUIET;
        o.log_path = NULL;
    }
    if (nranks > 1 && !given_opt(&o, O_THREADS)) { /* the machine's cores are shared by its ranks */
        long n = sysconf(_SC_NPROCESSORS_ONLN) / dist_local_size();
        o.c.threads = n > 0 ? (int)n : 1;
    }
    char out_path[4096], last_path[4200];
    check_outputs(&o, out_path, sizeof out_path, last_path, sizeof last_path, rank == 0);
    const char *tname = o.train_path && strcmp(o.train_path, "-") ? o.train_path : "stdin";
    int from_stdin = !(o.train_path && strcmp(o.train_path, "-"));
    if (from_stdin && rank == 0 && isatty(0))
        tool_die(2, "reading windows from a terminal: give a file or a pipe (see --help)");

    /* ---- data, and the checkpoint to continue ---- */
    lstm_dataset *train = open_train(&o, tname, nranks), *valid = NULL;
    o.c.model.reverse = windows_reversed(train); /* a right-to-left model says so in its config */
    lstm_train_ckpt ck;
    memset(&ck, 0, sizeof ck);
    int valid_from_ckpt = 0;
    if (o.resume_path) {
        open_resume(&ck, &o, train, tname);
        valid_from_ckpt = o.valid_path == ck.valid_path;
        if (ck.f.model.cfg.reverse != windows_reversed(train))
            tool_die(1, "%s: documents %s, but %s was trained on documents %s", tname, direction(windows_reversed(train)),
                     o.resume_path, direction(ck.f.model.cfg.reverse));
        if (ck.state.ranks != nranks)
            tool_warn("%s was saved by a run on %d rank%s, this one has %d: the batches, lanes and dropout masks are "
                      "the same, but the gradients are summed in another order, so the run continues it to float "
                      "rounding, not bit for bit", o.resume_path, ck.state.ranks, ck.state.ranks == 1 ? "" : "s", nranks);
    }
    char valid_abs[PATH_MAX + 1];
    const char *valid_saved = NULL;
    if (o.valid_path) valid = open_valid(&o, train, tname, valid_from_ckpt, valid_abs, &valid_saved);

    /* ---- the trainer ---- */
    run_t run = {&o, NULL, NULL, isatty(2), 0, 0, 0};
    char *prov = provenance(train, o.resume_path ? &ck : NULL, argc, argv);
    lstm_train_io io = {train, valid, valid_saved, out_path, last_path, o.resume_path && access(out_path, F_OK) == 0,
                        prov, &stop_requested, {&run, on_step, NULL, on_steps_done, on_epoch}, on_batch_capped, NULL, 0};
    if (o.log_path) io.cb.on_log = on_log;
    io.dist = dist_hooks(!o.no_overlap);
    io.train_on_rank0 = nranks > 1 && from_stdin; /* mpirun gives stdin to rank 0 */
    if (rank > 0) { /* rank 0 speaks for the run */
        memset(&io.cb, 0, sizeof io.cb);
        io.on_batch_capped = NULL;
    }
    lstm_trainer *t;
    lstm_train_error err;
    int rc = o.resume_path ? lstm_trainer_resume(&t, &ck, &io, &err) : lstm_trainer_create(&t, &o.c, &io, &err);
    if (rc) die_train(&err, &o, tname, o.valid_path);
    lstm_train_ckpt_close(&ck);
    const char *vname = valid ? o.valid_path : "held-out windows";
    const lstm_model *model = lstm_trainer_model(t);
    const lstm_train_config *c = lstm_trainer_config(t);
    run.t = t;
    run.n_tensors = model->n_tensors;
    if (o.log_path && rank == 0) run.logf = open_log(&o, model);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    if (rank == 0) {
        lstm_out_remove_stale(out_path, o.resume_path);
        lstm_out_remove_stale(last_path, o.resume_path);
    }

    lstm_train_info in;
    lstm_trainer_info(t, &in);
    char sm[96], rg[160], att[32] = "";
    if (c->model.attention > 0) snprintf(att, sizeof att, " attention %d", c->model.attention);
    if (!o.quiet)
        fprintf(stderr,
                PROG ": %s: %llu windows of %d (%s%s), vocabulary %d; %s %dx%d emb %d%s%s%s dropout %s, %zu parameters; "
                "%s lr %g, batch %d%s\n",
                tname, (unsigned long long)in.windows, in.T, in.K == 1 ? "last-token" : "next-token",
                in.streaming ? ", streamed" : "", in.V, c->model.peephole ? "lstm+peephole" : lstm_cell_name(c->model.cell),
                c->model.L, c->model.H,
                c->model.E, c->model.tie ? " tied" : "", att, softmax_desc(&c->model, sm, sizeof sm), reg_desc(&c->model, rg, sizeof rg),
                in.weights, optim_name(c->optim),
                c->lr, in.B, in.valid_windows ? "" : ", no validation data");
    if (!o.quiet && in.ranks > 1)
        fprintf(stderr, PROG ": %d ranks (%s), %d threads each: rank r trains lanes r, r+%d, ... (%d on rank 0); "
                "%zu bytes of gradients summed per step (%s)\n", in.ranks, dist_library(), c->threads, in.ranks, in.lanes,
                in.params_bytes, o.no_overlap ? "one MPI_Allreduce after backward" : "MPI_Iallreduce per layer, during backward");
    if (tool_verbosity >= TOOL_VERBOSE)
        fprintf(stderr, PROG ": kernels: %s, picked for this CPU at run time (LSTM_KERNEL=avx512, avx2 or scalar asks "
                "for one)\n", lstm_gemm_kernel());
    if (!o.quiet && in.ranks > 1 && in.held_max == 0)
        fprintf(stderr, PROG ": every rank streams its lanes' windows from %s (above --mem-budget)\n", tname);
    else if (!o.quiet && in.ranks > 1)
        fprintf(stderr, PROG ": windows in memory: %llu to %llu per rank of %llu (its lanes' share%s)\n",
                (unsigned long long)in.held_min, (unsigned long long)in.held_max, (unsigned long long)in.all_windows,
                from_stdin ? ", sent by rank 0 from stdin" : "");

    run.t0 = tool_now();
    rc = lstm_trainer_run(t);
    const lstm_train_end *end = lstm_trainer_end(t);
    char kept[4200];
    lstm_trainer_info(t, &in);
    if (rank > 0 && (rc == LSTM_E_NAN || rc == LSTM_TRAIN_STOPPED)) { /* every rank stops alike: rank 0 says how */
    } else if (rc == LSTM_E_NAN && end->nan <= LSTM_TRAIN_NAN_GRAD) {
        fprintf(stderr, "%s" PROG ": %s at epoch %d step %llu (lr %g): stopping; %s (try a lower --lr or --clip)\n",
                run.tty ? "\n" : "", end->nan == LSTM_TRAIN_NAN_GRAD ? "gradient norm is NaN/Inf" : "loss is NaN/Inf",
                end->epoch, (unsigned long long)end->step, end->lr, kept_msg(kept, sizeof kept, out_path, in.best_saved));
    } else if (rc == LSTM_E_NAN) {
        char when[64];
        if (end->mid_epoch) snprintf(when, sizeof when, "at epoch %d step %llu", end->epoch, (unsigned long long)end->step);
        else snprintf(when, sizeof when, "at the end of epoch %d", end->epoch);
        fprintf(stderr, PROG ": %s %s (lr %g): stopping; %s (try a lower --lr or --clip)\n",
                end->nan == LSTM_TRAIN_NAN_VALID ? "validation loss is NaN/Inf" : "parameters are NaN/Inf", when, end->lr,
                kept_msg(kept, sizeof kept, out_path, in.best_saved));
    } else if (rc == LSTM_TRAIN_STOPPED && end->mid_epoch) {
        fprintf(stderr, PROG ": interrupted at epoch %d step %llu: state saved to %s (continue with --resume %s)\n",
                end->epoch, (unsigned long long)end->step, last_path, last_path);
    } else if (rc == LSTM_TRAIN_STOPPED) {
        fprintf(stderr, PROG ": interrupted after epoch %d: state saved to %s (continue with --resume %s)\n", end->epoch,
                last_path, last_path);
    } else if (rc < 0) {
        die_train(lstm_trainer_error(t), &o, tname, vname);
    }
    if (run.logf && (ferror(run.logf) | fclose(run.logf)) != 0) tool_die(1, "%s: %s", o.log_path, strerror(errno));
    if (rc == LSTM_TRAIN_DONE && !o.quiet) report_done(t, out_path, run.t0);
    if (in.ranks > 1 && tool_verbosity >= TOOL_VERBOSE) {
        double bytes, wait;
        long steps;
        dist_stats(&bytes, &wait, &steps);
        fprintf(stderr, PROG ": allreduce: %.0f bytes per step, %.3f ms per step waiting for it after backward (%ld steps)\n",
                bytes, 1e3 * wait, steps);
    }
    free(prov);
    lstm_trainer_free(t);
    if (valid) lstm_dataset_free(valid);
    lstm_dataset_free(train);
    release_lock(); /* before MPI_Finalize: mpirun may end a stopped job's ranks while they finalize */
    dist_finish();
    /* A signal after the last check finds everything saved: still report the interruption. */
    return rc == LSTM_E_NAN ? 1 : rc == LSTM_TRAIN_STOPPED || stop_requested ? 130 : 0;
}
