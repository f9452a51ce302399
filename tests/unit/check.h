/* check.h: the unit tests' assertion macro. A failed CHECK prints file:line and the expression,
 * counts the failure, and the test's main returns non-zero through CHECK_DONE(). */
#ifndef LSTM_TEST_CHECK_H
#define LSTM_TEST_CHECK_H
#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            check_failures++;                                                           \
        }                                                                               \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                              \
    do {                                                                                                \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                                 \
        if (check_a_ != check_b_) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #b, \
                    check_a_, check_b_);                                                                \
            check_failures++;                                                                           \
        }                                                                                               \
    } while (0)

#define CHECK_DONE(name)                                                               \
    do {                                                                               \
        if (check_failures) {                                                          \
            fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);        \
            return 1;                                                                  \
        }                                                                              \
        printf("%s: ok\n", name);                                                      \
        return 0;                                                                      \
    } while (0)

#endif
