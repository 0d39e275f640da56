/* log.c — see log.h. The log is a ring of lines under one mutex held only
 * for memory operations; the per-endpoint table is tiny and fixed-size. */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char **ring;
static size_t ring_cap, ring_start, ring_len;
static bool echo;

void log_init(size_t max_lines, bool echo_stderr)
{
	pthread_mutex_lock(&log_lock);
	if (!ring) {
		ring_cap = max_lines ? max_lines : 1;
		ring = xcalloc(ring_cap, sizeof *ring);
	}
	echo = echo_stderr;
	pthread_mutex_unlock(&log_lock);
}

void log_shutdown(void)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; ring && i < ring_cap; i++)
		free(ring[i]);
	free(ring);
	ring = NULL;
	ring_cap = ring_start = ring_len = 0;
	pthread_mutex_unlock(&log_lock);
}

void plog(const char *op, const char *path, const char *fmt, ...)
{
	struct buf b;
	char when[32];
	buf_init(&b);
	fmt_iso8601(when, time(NULL));
	buf_printf(&b, "%s %s %s: ", when, op ? op : "-",
		   path && *path ? path : "-");
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* One entry is one line, whatever a server put in its message. */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
			b.data[i] = ' ';
	char *line = buf_steal(&b);

	pthread_mutex_lock(&log_lock);
	if (echo)
		fprintf(stderr, "primefs: %s\n", line);
	if (!ring) {
		pthread_mutex_unlock(&log_lock);
		free(line);
		return;
	}
	size_t slot = (ring_start + ring_len) % ring_cap;
	if (ring_len == ring_cap) {
		free(ring[ring_start]);
		ring_start = (ring_start + 1) % ring_cap;
		slot = (ring_start + ring_len - 1) % ring_cap;
	} else {
		ring_len++;
	}
	ring[slot] = line;
	pthread_mutex_unlock(&log_lock);
}

void log_render(struct buf *out)
{
	pthread_mutex_lock(&log_lock);
	for (size_t i = 0; i < ring_len; i++) {
		buf_adds(out, ring[(ring_start + i) % ring_cap]);
		buf_addc(out, '\n');
	}
	pthread_mutex_unlock(&log_lock);
}

/* ---- stats ---- */

#define MAX_ENDPOINTS 32

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counters[ST_COUNTERS];
static struct {
	char name[64];
	unsigned long calls;
} endpoints[MAX_ENDPOINTS];
static size_t n_endpoints;

static const char *const counter_names[ST_COUNTERS] = {
    [ST_RETRIES] = "retries",		[ST_RATE_LIMITED] = "rate_limited",
    [ST_API_ERRORS] = "api_errors",	[ST_CACHE_HITS] = "cache_hits",
    [ST_CACHE_MISSES] = "cache_misses", [ST_STALE_SERVED] = "stale_served",
    [ST_SSH_SESSIONS] = "ssh_sessions", [ST_SSH_COMMANDS] = "ssh_commands",
    [ST_SSH_LOST] = "ssh_lost",
};

void stats_count(enum stat_counter c)
{
	pthread_mutex_lock(&stats_lock);
	counters[c]++;
	pthread_mutex_unlock(&stats_lock);
}

void stats_api_call(const char *endpoint)
{
	pthread_mutex_lock(&stats_lock);
	size_t i;
	for (i = 0; i < n_endpoints; i++)
		if (!strcmp(endpoints[i].name, endpoint))
			break;
	if (i == n_endpoints && n_endpoints < MAX_ENDPOINTS) {
		snprintf(endpoints[i].name, sizeof endpoints[i].name, "%s",
			 endpoint);
		n_endpoints++;
	}
	if (i < n_endpoints)
		endpoints[i].calls++;
	pthread_mutex_unlock(&stats_lock);
}

void stats_render(struct buf *out)
{
	pthread_mutex_lock(&stats_lock);
	unsigned long total = 0;
	for (size_t i = 0; i < n_endpoints; i++)
		total += endpoints[i].calls;
	buf_printf(out, "api_calls %lu\n", total);
	for (size_t i = 0; i < n_endpoints; i++)
		buf_printf(out, "%s %lu\n", endpoints[i].name,
			   endpoints[i].calls);
	for (int c = 0; c < ST_COUNTERS; c++)
		buf_printf(out, "%s %lu\n", counter_names[c], counters[c]);
	pthread_mutex_unlock(&stats_lock);
}
