/* tool.h: what every lstm-* tool shares and the library does not do (it never prints or exits): the
 * program name and version, one-line messages and dying with clean-up, numeric flag parsing with the
 * usage error, the -q / -v levels, getopt's errors in the tools' words, and time formatting. */
#ifndef LSTM_TOOL_H
#define LSTM_TOOL_H
#include <stddef.h>

#define LSTM_VERSION "1.0"

/* Verbosity: -q lowers it to TOOL_QUIET (no warnings, no summary), -v raises it to TOOL_VERBOSE
 * (the summary line even when stderr is not a terminal). */
enum { TOOL_QUIET = 0, TOOL_NORMAL = 1, TOOL_VERBOSE = 2 };
extern int tool_verbosity;

/* The program name of every message ("lstm-tok"). */
void tool_init(const char *prog);
const char *tool_prog(void);
/* A clean-up run once before tool_die exits (removing partial output, a lock, ...). */
void tool_at_die(void (*fn)(void));

/* "prog: message" on stderr. */
void tool_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: warning: message" on stderr, unless -q. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: message", the clean-up, exit(code). */
void tool_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

/* A numeric flag value in [lo, hi], or the usage error (exit 2):
 * "prog: FLAG: expected an integer from LO to HI, got 'S'" / "expected a number from LO to HI". */
long tool_parse_long(const char *s, const char *flag, long lo, long hi);
double tool_parse_double(const char *s, const char *flag, double lo, double hi);

/* getopt_long's ':' (missing argument) and '?' (unknown option) cases, in the tools' words
 * ("option '-o' needs an argument", "unknown option '--bogus'", both with "(try 'prog --help')"),
 * exit 2. Call with opterr = 0 and, for ':', an optstring starting with ':'. */
void tool_bad_option(int ch, char **argv) __attribute__((noreturn));
/* "prog VERSION" on stdout, exit 0. */
void tool_version(void) __attribute__((noreturn));

/* SIGINT, SIGTERM and SIGHUP remove the temp files of the outputs being written (every lstm_out still
 * open: lstm_out_unlink_pending) and exit 130, so a stopped tool leaves nothing half-written. */
void tool_exit_on_signals(void);

/* The fd of an input (NULL or "-": stdin; a named file is opened), or the tools' messages: "reading
 * WHAT from a terminal: give a file or a pipe (see --help)" (exit 2) for a terminal on stdin, "NAME:
 * strerror" (exit 1) when it cannot be opened. */
int tool_open_input(const char *path, const char *what);

/* Seconds on the monotonic clock. */
double tool_now(void);
/* A duration for people: "12.3s", "4m05s", "2h03m07s". */
void tool_fmt_duration(char *buf, size_t cap, double seconds);

#endif
