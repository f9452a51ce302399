/* test_csv.c: the RFC 4180 reader, fed through every read size from 1 byte up so that quotes,
 * doubled quotes, CRLF pairs and newlines inside fields fall on buffer edges. */
#include <string.h>
#include "check.h"
#include "csv.h"

typedef struct {
    const char *p;
    size_t n, pos, chunk; /* chunk: most bytes returned per read, whatever the caller asks */
} mem;

static ssize_t mem_read(void *ctx, void *buf, size_t cap)
{
    mem *m = ctx;
    size_t k = m->n - m->pos;
    if (k > cap) k = cap;
    if (k > m->chunk) k = m->chunk;
    memcpy(buf, m->p + m->pos, k);
    m->pos += k;
    return (ssize_t)k;
}

/* Parses text and renders it as "f1|f2;f1|f2;" with the start line of each record "@line". */
static char DELIM = ','; /* the separator render() sets */

static int render(const char *text, size_t bufsize, size_t chunk, char *out, size_t cap, uint64_t *err_line)
{
    mem m = {text, strlen(text), 0, chunk};
    lstm_csv *c;
    int k;
    size_t o = 0;
    out[0] = '\0';
    if (lstm_csv_open(&c, mem_read, &m, bufsize)) return -100;
    if (lstm_csv_set_delimiter(c, DELIM)) return -101;
    while ((k = lstm_csv_next(c)) == 1) {
        o += (size_t)snprintf(out + o, cap - o, "@%llu:", (unsigned long long)lstm_csv_line(c));
        for (size_t i = 0; i < lstm_csv_nfields(c); i++) {
            size_t n;
            const char *f = lstm_csv_field(c, i, &n);
            if (o + n + 2 < cap) {
                memcpy(out + o, f, n);
                o += n;
                out[o++] = i + 1 < lstm_csv_nfields(c) ? '|' : ';';
                out[o] = '\0';
            }
        }
    }
    if (err_line) *err_line = lstm_csv_line(c);
    CHECK(lstm_csv_next(c) == k); /* errors and the end are sticky */
    lstm_csv_free(c);
    return k;
}

static void expect(const char *text, const char *want)
{
    char got[1024];
    for (size_t bs = 1; bs <= 9; bs++) {
        for (size_t chunk = 1; chunk <= 3; chunk++) {
            int k = render(text, bs, chunk, got, sizeof got, NULL);
            CHECK_EQ_INT(k, 0);
            if (strcmp(got, want)) {
                fprintf(stderr, "bufsize %zu chunk %zu: got '%s' want '%s'\n", bs, chunk, got, want);
                CHECK(!"csv mismatch");
                return;
            }
        }
    }
    CHECK_EQ_INT(render(text, 0, 1 << 20, got, sizeof got, NULL), 0);
    CHECK(strcmp(got, want) == 0);
}

int main(void)
{
    char got[1024];
    uint64_t line = 0;

    expect("", "");
    expect("a,b,c\n", "@1:a|b|c;");
    expect("a,b,c", "@1:a|b|c;");                   /* no final newline */
    expect("a,b\r\nc,d\r\n", "@1:a|b;@2:c|d;");      /* CRLF */
    expect("a,,\n", "@1:a||;");                     /* empty fields */
    expect("\"x,y\",z\n", "@1:x,y|z;");             /* comma inside quotes */
    expect("\"say \"\"hi\"\"\",2\n", "@1:say \"hi\"|2;"); /* doubled quotes */
    expect("\"\"\"\"\n", "@1:\";");
    expect("\"\",b\n", "@1:|b;");                   /* quoted empty field */
    expect("\"l1\nl2\",b\nc,d\n", "@1:l1\nl2|b;@3:c|d;"); /* newline inside a field */
    expect("\"l1\r\nl2\",b\r\nc,d\r\n", "@1:l1\r\nl2|b;@3:c|d;");
    expect("a\n\n\nb\n", "@1:a;@4:b;");             /* empty lines skipped, lines still counted */
    expect("a\rb,c\n", "@1:a\rb|c;");               /* a lone CR is data */
    expect("ab\"c,d\n", "@1:ab\"c|d;");             /* quote inside an unquoted field is data */
    expect("\"ab\"c,d\n", "@1:abc|d;");             /* text after a closing quote is kept */
    expect("x,\"\"\r\n", "@1:x|;");

    /* an unterminated quoted field reports the line where it opened */
    for (size_t bs = 1; bs <= 5; bs++) {
        CHECK_EQ_INT(render("h,t\na,b\nc,\"open\nmore\nlines\n", bs, 2, got, sizeof got, &line), LSTM_E_CSV);
        CHECK_EQ_INT(line, 3);
    }
    CHECK_EQ_INT(render("\"", 0, 100, got, sizeof got, &line), LSTM_E_CSV);
    CHECK_EQ_INT(line, 1);

    /* NUL bytes are data */
    {
        static const char nul[] = "a\0b,c\n";
        mem m = {nul, sizeof nul - 1, 0, 2};
        lstm_csv *c;
        size_t n;
        const char *f;
        CHECK_EQ_INT(lstm_csv_open(&c, mem_read, &m, 3), 0);
        CHECK_EQ_INT(lstm_csv_next(c), 1);
        f = lstm_csv_field(c, 0, &n);
        CHECK_EQ_INT(n, 3);
        CHECK(memcmp(f, "a\0b", 3) == 0);
        CHECK(lstm_csv_field(c, 2, &n) == NULL);
        CHECK_EQ_INT(lstm_csv_next(c), 0);
        lstm_csv_free(c);
    }
    /* another separator: commas are data, a quoted tab or newline is kept, CRLF still ends a record */
    DELIM = '\t';
    expect("speaker\ttext\r\nuser\thi, there\nagent\t\"a\tquoted\ntab\"\n", "@1:speaker|text;@2:user|hi, there;@3:agent|a\tquoted\ntab;");
    DELIM = ';';
    expect("a;b,c;\"d;e\"\n", "@1:a|b,c|d;e;");
    DELIM = ',';
    {
        mem m = {"", 0, 0, 1};
        lstm_csv *c;
        CHECK_EQ_INT(lstm_csv_open(&c, mem_read, &m, 0), 0);
        CHECK_EQ_INT(lstm_csv_set_delimiter(c, '"'), LSTM_E_ARG);
        CHECK_EQ_INT(lstm_csv_set_delimiter(c, '\n'), LSTM_E_ARG);
        CHECK_EQ_INT(lstm_csv_set_delimiter(c, '\t'), 0);
        lstm_csv_free(c);
    }
    CHECK_DONE("test_csv");
}
