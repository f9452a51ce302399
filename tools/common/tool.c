/* tool.c: see tool.h. */
#include "tool.h"
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fileio.h"
#include "numparse.h"

int tool_verbosity = TOOL_NORMAL;
static const char *prog = "lstm";
static void (*at_die)(void);

void tool_init(const char *name) { prog = name; }
const char *tool_prog(void) { return prog; }
void tool_at_die(void (*fn)(void)) { at_die = fn; }

static void vmsg(const char *pre, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: %s", prog, pre);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void tool_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
}

void tool_warn(const char *fmt, ...)
{
    va_list ap;
    if (tool_verbosity < TOOL_NORMAL) return;
    va_start(ap, fmt);
    vmsg("warning: ", fmt, ap);
    va_end(ap);
}

void tool_die(int code, const char *fmt, ...)
{
    va_list ap;
    void (*fn)(void) = at_die;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    at_die = NULL; /* once, even if the clean-up dies */
    if (fn) fn();
    exit(code);
}

long tool_parse_long(const char *s, const char *flag, long lo, long hi)
{
    long v;
    if (lstm_parse_long(s, lo, hi, &v)) tool_die(2, "%s: expected an integer from %ld to %ld, got '%s'", flag, lo, hi, s);
    return v;
}

double tool_parse_double(const char *s, const char *flag, double lo, double hi)
{
    double v;
    if (lstm_parse_double(s, lo, hi, &v)) tool_die(2, "%s: expected a number from %g to %g, got '%s'", flag, lo, hi, s);
    return v;
}

void tool_bad_option(int ch, char **argv)
{
    if (ch == ':') tool_die(2, "option '%s' needs an argument (try '%s --help')", argv[optind - 1], prog);
    if (optopt) tool_die(2, "unknown option '-%c' (try '%s --help')", optopt, prog);
    tool_die(2, "unknown option '%s' (try '%s --help')", argv[optind - 1], prog);
}

void tool_version(void)
{
    printf("%s %s\n", prog, LSTM_VERSION);
    exit(0);
}

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tool_fmt_duration(char *buf, size_t cap, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%.1fs", s);
}

static void on_signal(int sig)
{
    (void)sig;
    lstm_out_unlink_pending();
    _exit(130);
}

void tool_exit_on_signals(void)
{
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
}

int tool_open_input(const char *path, const char *what)
{
    int stdin_ = !path || !strcmp(path, "-"), fd;
    if (stdin_ && isatty(0)) tool_die(2, "reading %s from a terminal: give a file or a pipe (see --help)", what);
    if ((fd = lstm_in_open(path)) < 0) tool_die(1, "%s: %s", stdin_ ? "stdin" : path, strerror(errno));
    return fd;
}
