/* cost.c — see cost.h. */
#include "cost.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* How old a held wallet may be and still give cost its billing rows. An
 * older answer only moves money from the rows to the running part (price
 * × time since the last bill), so a crawl of every pod's cost is served by
 * one wallet fetch, as `balance` is. */
#define COST_WALLET_MAX_AGE 60.0

/* Whether every billing row of p was read: the wallet was had, and paged
 * back past the pod's creation (rows are newest first). */
static bool rows_complete(const struct pod *p, const struct wallet *w)
{
	return w && (!w->unread_until ||
		     (p->created_t != -1 && p->created_t > w->unread_until));
}

int cost_of_pod(const struct pod *p, const struct wallet *w, time_t now,
		double *out, bool *estimate)
{
	*estimate = false;
	int rc = pod_cost(p, w, now, out);
	if (p->history || !pod_bills(p) || rows_complete(p, w))
		return rc == 0 ? 0 : -1;
	*estimate = true;
	if (p->price_hr.set && p->created_t != -1) {
		double hours = difftime(now, p->created_t) / 3600.0;
		double least = p->price_hr.d * (hours > 0 ? hours : 0);
		if (rc != 0 || *out < least)
			*out = least;
		rc = 0;
	}
	return rc == 0 ? 0 : -1;
}

/* The pods whose cost `log` has called an estimate, so that it says so
 * once (again only after the cost was exact meanwhile). */
static pthread_mutex_t told_mu = PTHREAD_MUTEX_INITIALIZER;
static char **told;
static size_t n_told;

/* Whether the pod's estimate is to be logged now. */
static bool tell_estimate(const char *id, bool estimate)
{
	bool tell = false;
	pthread_mutex_lock(&told_mu);
	size_t i = 0;
	while (i < n_told && strcmp(told[i], id))
		i++;
	if (estimate && i == n_told) {
		told = xrealloc(told, (n_told + 1) * sizeof *told);
		told[n_told++] = xstrdup(id);
		tell = true;
	} else if (!estimate && i < n_told) {
		free(told[i]);
		told[i] = told[--n_told];
	}
	pthread_mutex_unlock(&told_mu);
	return tell;
}

/* cost needs two snapshots, the pod's and the wallet's billing rows. */
int cost_pod_now(void *cache, const struct pod *p, double *out)
{
	return cost_pod_at(cache, p, true, time(NULL), out);
}

int cost_pod_at(void *cache, const struct pod *p, bool fetch, time_t now,
		double *out)
{
	struct snap *w = NULL;
	if (!p->history && cache) {
		if (cache_get(cache, SNAP_WALLET, CACHE_HELD, &w) == 0 &&
		    fetch &&
		    now_monotonic() - w->fetched_mono > COST_WALLET_MAX_AGE) {
			snap_put(w);
			w = NULL;
		}
		if (!w && fetch && cache_get(cache, SNAP_WALLET, CACHE_TTL, &w))
			w = NULL;
	}
	bool estimate;
	int rc = cost_of_pod(p, w ? &w->wallet : NULL, now, out, &estimate);
	if (w)
		snap_put(w);
	if (p->id && !p->history && tell_estimate(p->id, estimate)) {
		struct buf path;
		buf_init(&path);
		buf_printf(&path, "/pods/%s", p->dir ? p->dir : p->id);
		plog("cost", path.data,
		     "an estimate: not every billing row of pod %s could be "
		     "read, so cost is at least priceHr × the hours since its "
		     "creation",
		     p->name ? p->name : p->id);
		buf_free(&path);
	}
	return rc;
}
