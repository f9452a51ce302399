/* embed.c: liblstm in a program of its own: load a checkpoint, print the K most likely next words
 * (or completions of a partly typed last word) for a prompt, one "word<TAB>probability" per line,
 * as `lstm-sample -m MODEL --suggest K PROMPT` prints them.   usage: embed MODEL.ckpt K PROMPT
 * The suggestion engine (engine.h) is what lstm-sample and its --serve protocol run on: one request
 * in, one reply out; a server keeps one engine per worker thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <engine.h>
#include <errors.h>

int main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[2]) < 1 || atoi(argv[2]) > 100) {
        fprintf(stderr, "usage: embed MODEL.ckpt K PROMPT   (K from 1 to 100)\n");
        return 2;
    }
    static lstm_engine e; /* large: its buffers are sized once, so no request allocates */
    lstm_request req;
    lstm_reply rep;
    char msg[1024];
    int rc;

    lstm_set_threads(1); /* one prompt is a chain of small products: threads only add latency */
    if ((rc = lstm_engine_open(&e, argv[1], 8))) {
        fprintf(stderr, "embed: %s\n", lstm_engine_open_error(&e, rc, argv[1], msg, sizeof msg));
        return 1;
    }
    lstm_request_default(&req);
    req.mode = LSTM_MODE_SUGGEST; /* a prompt ending inside a word asks for words completing it */
    req.text = argv[3];
    req.len = strlen(argv[3]);
    req.k = atoi(argv[2]);
    if (lstm_engine_run(&e, &req, &rep)) {
        fprintf(stderr, "embed: %s\n", rep.error);
        lstm_engine_close(&e);
        return 1;
    }
    for (int i = 0; i < rep.n; i++) printf("%s\t%.6f\n", rep.sg[i].word, rep.sg[i].p);
    lstm_engine_close(&e);
    return 0;
}
