/* lstm-export: turn a training checkpoint into an inference-only model file (formats/model.md): the
 * config, the tokenizer and the parameters, without the optimizer moments and the training state,
 * with the embedding and the output layer optionally quantized (int8 with a scale per row, or bf16).
 * The writing is lib/lm/modelfile.c's; this file parses the flags, checks the paths and reports. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "lm.h"
#include "stream.h"
#include "tool.h"

#define PROG "lstm-export"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " -m CHECKPOINT -o MODEL [options]\n"
            "Write an inference-only model from a checkpoint of lstm-train: no optimizer state, no training\n"
            "state, the embedding and the output layer (and the recurrent weights) optionally quantized.\n"
            "lstm-eval, lstm-sample, lstm-serve, lstm-inspect and lstm-dump read it wherever they read a\n"
            "checkpoint (-m MODEL); lstm-train --resume does not (a resume needs the checkpoint).\n"
            "\n"
            "  -m, --model FILE       checkpoint to export (required)\n"
            "  -o, --output FILE      the model file to write (required; - = stdout, not a terminal)\n"
            "      --quantize Q       none (every weight fp32, answers bit-identical to the checkpoint),\n"
            "                         int8 (embedding and output weight: int8, one fp32 scale per row) or\n"
            "                         bf16 (the same two as bfloat16); the recurrent weights stay fp32\n"
            "                         (default none)\n"
            "      --quantize-recurrent\n"
            "                         with int8 or bf16: the layers' w_ih and w_hh too (biases stay fp32)\n"
            "  -f, --force            overwrite an existing FILE\n"
            "  -q, --quiet            no summary line\n"
            "  -v, --verbose          the summary line even when stderr is not a terminal, and the kernel\n"
            "                         the readers of the export will use on this CPU\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n"
            "\n"
            "The file is written to a temp file beside FILE and renamed when whole (devices, FIFOs and\n"
            "/dev/stdout are written in place). Its XXH64 checksum is verified by every reader.\n"
            "\n"
            "Examples:\n"
            "  " PROG " -m chat.ckpt -o chat.lstm --quantize int8\n"
            "  lstm-sample -m chat.lstm --suggest 5 'i was charged twice for my '\n");
}

/* The file's size for the summary, or -1 (not a regular file). */
static long long size_of(const char *path)
{
    struct stat st;
    return path && strcmp(path, "-") && !stat(path, &st) && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
}

/* The checkpoint's provenance plus this command line. */
static char *provenance(const lstm_modelfile *f, int argc, char **argv)
{
    lstm_meta prov;
    lstm_meta_init(&prov);
    if (f->provenance) lstm_meta_set(&prov, "provenance", f->provenance, f->provenance_len);
    lstm_meta_add_provenance(&prov, argc, argv);
    size_t pl;
    const uint8_t *pv = lstm_meta_get(&prov, "provenance", &pl);
    char *s = pv ? strndup((const char *)pv, pl) : NULL;
    lstm_meta_free(&prov);
    return s;
}

int main(int argc, char **argv)
{
    int closed = 0;
    lstm_reserve_std_fds(&closed);
    const char *model = NULL, *out = NULL;
    int force = 0, quant = LSTM_Q_NONE, recurrent = 0;
    enum { O_QUANT = 256, O_RECUR };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},
        {"quantize", required_argument, 0, O_QUANT}, {"quantize-recurrent", no_argument, 0, O_RECUR},
        {"force", no_argument, 0, 'f'},
        {"quiet", no_argument, 0, 'q'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, 'V'}, {0, 0, 0, 0}};
    int ch;
    tool_init(PROG);
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":m:o:fqvhV", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case O_QUANT:
            if ((quant = lstm_quant_from_name(optarg)) < 0)
                tool_die(2, "--quantize: expected none, int8 or bf16, got '%s'", optarg);
            break;
        case O_RECUR: recurrent = 1; break;
        case 'f': force = 1; break;
        case 'q': tool_verbosity = TOOL_QUIET; break;
        case 'v': tool_verbosity = TOOL_VERBOSE; break;
        case 'h': usage(stdout); return 0;
        case 'V': tool_version();
        default: tool_bad_option(ch, argv);
        }
    }
    if (optind < argc) tool_die(2, "unexpected argument '%s' (the checkpoint is -m FILE, see --help)", argv[optind]);
    if (!model) tool_die(2, "no checkpoint: give -m MODEL.ckpt (see --help)");
    if (!out) tool_die(2, "no output: give -o FILE (see --help)");
    if (recurrent && quant == LSTM_Q_NONE) tool_die(2, "--quantize-recurrent needs --quantize int8 or bf16");
    int to_stdout = !strcmp(out, "-");
    if (to_stdout && (closed & 2)) tool_die(2, "-o -: stdout is closed");
    if (to_stdout && isatty(1)) tool_die(2, "-o -: not writing a binary model to a terminal (redirect it or give -o FILE)");
    if (!strcmp(model, "-")) tool_die(2, "-m -: give the checkpoint as a file");
    if (lstm_same_file(model, out)) tool_die(2, "-o names the checkpoint -m (%s): it would be overwritten", out);
    if (!force && !to_stdout && !lstm_out_in_place(out) && !access(out, F_OK))
        tool_die(1, "%s: file exists (use -f to overwrite, or -o another file)", out);
    tool_exit_on_signals();

    double t0 = tool_now();
    lstm_lm lm;
    char msg[1024];
    int rc = lstm_lm_open(&lm, model);
    if (rc) tool_die(1, "%s", lstm_lm_open_error(&lm, rc, model, msg, sizeof msg));
    if (lm.f.kind == LSTM_CK_KIND_MODEL)
        tool_die(1, "%s: already an exported model (%s): export the checkpoint lstm-train wrote", model,
                 lstm_quant_name(lm.f.quant));
    char *prov = provenance(&lm.f, argc, argv);
    lstm_modelfile_save_args a = {lm.m, lm.f.tokenizer, lm.f.tokenizer_len, NULL, NULL, NULL, prov};
    rc = lstm_modelfile_export(out, force, &a, quant, recurrent);
    free(prov);
    if (rc == LSTM_E_EXISTS) tool_die(1, "%s: file exists (use -f to overwrite, or -o another file)", out);
    if (rc == LSTM_E_IO) tool_die(1, "%s: %s", out, strerror(errno));
    if (rc) tool_die(1, "%s: %s", out, lstm_strerror(rc));

    if (tool_verbosity >= TOOL_VERBOSE || (tool_verbosity >= TOOL_NORMAL && isatty(2))) {
        const lstm_model_config *c = &lm.m->cfg;
        long long in_size = size_of(model), out_size = size_of(out);
        char sizes[96] = "";
        if (in_size > 0 && out_size > 0)
            snprintf(sizes, sizeof sizes, ", %lld -> %lld bytes (%.2fx smaller)", in_size, out_size,
                     (double)in_size / (double)out_size);
        char what[96] = "fp32";
        if (quant != LSTM_Q_NONE)
            snprintf(what, sizeof what, "%s embedding%s output layer%s", lstm_quant_name(quant), recurrent ? "," : " and",
                     recurrent ? " and recurrent weights" : "");
        tool_msg("%s -> %s: %s, %d ids, %d x %d %s%s%s in %.1f ms", model, to_stdout ? "stdout" : out, what, c->V, c->L,
                 c->H, lstm_cell_name(c->cell), c->tie ? " (tied)" : "", sizes, (tool_now() - t0) * 1e3);
    }
    if (tool_verbosity >= TOOL_VERBOSE && quant != LSTM_Q_NONE)
        tool_msg("quantized kernels on this CPU: %s", lstm_quant_kernel());
    lstm_lm_close(&lm);
    return 0;
}
