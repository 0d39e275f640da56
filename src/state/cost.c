/* cost.c — see cost.h. */
#include "cost.h"

#include <time.h>

#include "util.h"

/* How old a held wallet may be and still give cost its billing rows. An
 * older answer only moves money from the rows to the running part (price
 * × time since the last bill), so a crawl of every pod's cost is served by
 * one wallet fetch, as `balance` is. */
#define COST_WALLET_MAX_AGE 60.0

/* cost needs two snapshots, the pod's and the wallet's billing rows.
 * While the wallet cannot be had, the rows count as none. */
int cost_pod_now(void *cache, const struct pod *p, double *out)
{
	struct snap *w = NULL;
	if (!p->history && cache) {
		if (cache_get(cache, SNAP_WALLET, CACHE_HELD, &w) == 0 &&
		    now_monotonic() - w->fetched_mono > COST_WALLET_MAX_AGE) {
			snap_put(w);
			w = NULL;
		}
		if (!w && cache_get(cache, SNAP_WALLET, CACHE_TTL, &w))
			w = NULL;
	}
	int rc = pod_cost(p, w ? &w->wallet : NULL, time(NULL), out);
	if (w)
		snap_put(w);
	return rc == 0 ? 0 : -1;
}
