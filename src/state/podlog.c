/* podlog.c — see podlog.h. One mutex guards the entries (sorted by id)
 * and the bucket; the fetch runs unlocked, and a second reader of a pod
 * whose log is on the wire waits (with a deadline) for that answer rather
 * than sending another request. */
#include "podlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A reader waits this long at most for another reader's fetch. */
#define PODLOG_WAIT 30.0

void bucket_init(struct bucket *b, double burst, double rate, double now)
{
	b->tokens = b->burst = burst;
	b->rate = rate;
	b->last = now;
}

bool bucket_take(struct bucket *b, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
	}
	b->last = now;
	if (b->tokens < 1)
		return false;
	b->tokens -= 1;
	return true;
}

struct entry {
	char *id;
	char *text; /* NULL until a fetch succeeded */
	double fetched;
	bool fetching;
};

struct podlog {
	struct api *api;
	double ttl;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct bucket bucket;
	bool limit_logged; /* said once per spell of refusals */
	struct entry *v;
	size_t n;
};

struct podlog *podlog_new(struct api *api, const struct podlog_opts *o)
{
	struct podlog *pl = xcalloc(1, sizeof *pl);
	pl->api = api;
	pl->ttl = o->ttl;
	pthread_mutex_init(&pl->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pl->cv, &ca);
	pthread_condattr_destroy(&ca);
	double burst = o->burst > 0 ? o->burst : PODLOG_BURST;
	double per_minute =
	    o->per_minute > 0 ? o->per_minute : PODLOG_PER_MINUTE;
	bucket_init(&pl->bucket, burst, per_minute / 60.0, now_monotonic());
	return pl;
}

void podlog_free(struct podlog *pl)
{
	if (!pl)
		return;
	for (size_t i = 0; i < pl->n; i++) {
		free(pl->v[i].id);
		free(pl->v[i].text);
	}
	free(pl->v);
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->cv);
	free(pl);
}

/* Where id is, or would go, in the entries (sorted by id). */
static size_t entry_pos(const struct podlog *pl, const char *id, bool *found)
{
	size_t lo = 0, hi = pl->n;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pl->v[mid].id, id);
		if (!c) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The pod's entry, made if need be; the oldest idle one makes room. A
 * lookup is a binary search: a crawl reads every pod's log. */
static struct entry *entry_of(struct podlog *pl, const char *id)
{
	bool found;
	size_t at = entry_pos(pl, id, &found);
	if (found)
		return &pl->v[at];
	if (pl->n >= PODLOG_MAX_PODS) {
		size_t old = pl->n;
		for (size_t i = 0; i < pl->n; i++)
			if (!pl->v[i].fetching &&
			    (old == pl->n ||
			     pl->v[i].fetched < pl->v[old].fetched))
				old = i;
		if (old < pl->n) {
			free(pl->v[old].id);
			free(pl->v[old].text);
			memmove(&pl->v[old], &pl->v[old + 1],
				(pl->n - old - 1) * sizeof *pl->v);
			pl->n--;
			if (old < at)
				at--;
		}
	}
	pl->v = xrealloc(pl->v, (pl->n + 1) * sizeof *pl->v);
	memmove(&pl->v[at + 1], &pl->v[at], (pl->n - at) * sizeof *pl->v);
	pl->n++;
	struct entry *e = &pl->v[at];
	memset(e, 0, sizeof *e);
	e->id = xstrdup(id);
	return e;
}

static void wait_a_while(struct podlog *pl, double deadline)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double step = deadline - now_monotonic();
	if (step > 0.2)
		step = 0.2;
	if (step <= 0)
		return;
	ts.tv_nsec += (long)(step * 1e9);
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&pl->cv, &pl->mu, &ts);
}

int podlog_read(struct podlog *pl, const char *id, struct buf *out)
{
	double deadline = now_monotonic() + PODLOG_WAIT;
	pthread_mutex_lock(&pl->mu);
	struct entry *e = entry_of(pl, id);
	while (e->fetching && now_monotonic() < deadline) {
		wait_a_while(pl, deadline);
		e = entry_of(pl, id); /* the array may have moved */
	}
	double now = now_monotonic();
	if (e->fetching || (e->text && now - e->fetched < pl->ttl)) {
		if (e->text)
			buf_adds(out, e->text);
		pthread_mutex_unlock(&pl->mu);
		stats_count(ST_CACHE_HITS);
		return 0;
	}
	if (!bucket_take(&pl->bucket, now)) {
		bool say = !pl->limit_logged;
		pl->limit_logged = true;
		if (e->text)
			buf_adds(out, e->text);
		pthread_mutex_unlock(&pl->mu);
		if (say)
			plog("log", id,
			     "pod log fetches are rate-limited (a burst of "
			     "%.0f, then %.0f a minute): serving the last "
			     "fetched text, or nothing, until then",
			     pl->bucket.burst, pl->bucket.rate * 60);
		return 0;
	}
	pl->limit_logged = false;
	e->fetching = true;
	pthread_mutex_unlock(&pl->mu);

	stats_count(ST_CACHE_MISSES);
	struct buf text;
	buf_init(&text);
	int rc = api_pod_log(pl->api, id, PODLOG_TAIL, &text);
	if (rc == -ENOENT) { /* no such pod, or no log: an empty file */
		buf_reset(&text);
		rc = 0;
	}

	pthread_mutex_lock(&pl->mu);
	e = entry_of(pl, id);
	e->fetching = false;
	if (rc == 0) {
		free(e->text);
		e->text = buf_steal(&text);
		e->fetched = now_monotonic();
		buf_adds(out, e->text);
	} else if (e->text) {
		buf_adds(out, e->text); /* the API fails: the last answer */
		rc = 0;
	}
	pthread_cond_broadcast(&pl->cv);
	pthread_mutex_unlock(&pl->mu);
	buf_free(&text);
	return rc;
}

void podlog_refresh(struct podlog *pl)
{
	if (!pl)
		return;
	pthread_mutex_lock(&pl->mu);
	for (size_t i = 0; i < pl->n; i++)
		pl->v[i].fetched = -1e18;
	pthread_mutex_unlock(&pl->mu);
}
