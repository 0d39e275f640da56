/* t.h — a minimal TAP harness for the core's unit tests: CHECK records a
 * failure with its line and goes on; t_done() prints the plan and returns
 * the exit status. */
#ifndef PRIMEFS_T_H
#define PRIMEFS_T_H

#include <stdio.h>
#include <string.h>

static int t_run, t_failed;

/* A value on one line, so that TAP stays TAP. */
static inline void t_esc(const char *s)
{
	if (!s) {
		printf("(null)");
		return;
	}
	putchar('"');
	for (; *s; s++)
		if (*s == '\n')
			printf("\\n");
		else if ((unsigned char)*s < 0x20)
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	putchar('"');
}

#define CHECK(cond)                                                            \
	do {                                                                   \
		t_run++;                                                       \
		if (cond) {                                                    \
			printf("ok %d - %s\n", t_run, #cond);                  \
		} else {                                                       \
			t_failed++;                                            \
			printf("not ok %d - %s (%s:%d)\n", t_run, #cond,       \
			       __FILE__, __LINE__);                            \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                        \
	do {                                                                   \
		const char *t_a = (a), *t_b = (b);                             \
		t_run++;                                                       \
		if (t_a && t_b && !strcmp(t_a, t_b)) {                         \
			printf("ok %d - %s\n", t_run, #a);                     \
		} else {                                                       \
			t_failed++;                                            \
			printf("not ok %d - %s (%s:%d)\n# got  ", t_run, #a,   \
			       __FILE__, __LINE__);                            \
			t_esc(t_a);                                            \
			printf("\n# want ");                                   \
			t_esc(t_b);                                            \
			printf("\n");                                          \
		}                                                              \
	} while (0)

static inline int t_done(void)
{
	printf("1..%d\n# %d passed, %d failed\n", t_run, t_run - t_failed,
	       t_failed);
	return t_failed ? 1 : 0;
}

#endif
