/* burn.c — see burn.h. */
#include "burn.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Requests admitted that no listing shows with a price yet. */
#define BUDGET_INFLIGHT_MAX 64
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *what; /* "pods/<name>" or "disks/<name>" */
	double price;
	bool held; /* its mkdir still runs (burn_done not called) */
} inflight[BUDGET_INFLIGHT_MAX];

/* What a pod that bills adds to the burn rate, or -1 when it does not
 * bill (or its price is not known yet). */
static double pod_rate(const struct pod *p)
{
	if (!p->status)
		return -1;
	if (!strcmp(p->status, "STOPPED")) {
		struct num n = pod_price(p);
		return n.set ? n.d : -1;
	}
	if (!pod_bills(p) || !p->price_hr.set)
		return -1;
	return p->price_hr.d;
}

static double disk_rate(const struct pod *d)
{
	if (d->price_hr.set)
		return d->price_hr.d;
	struct num n = pod_price(d);
	return n.set ? n.d : -1;
}

/* Whether an in-flight record no longer counts on its own: what it names
 * is listed with a price now (that price counts), or, its mkdir over, is
 * not listed at all (gone, or refused). */
static bool settled(const struct snap *pods, const struct snap *disks, size_t i)
{
	const char *what = inflight[i].what;
	const struct snap *s = !strncmp(what, "pods/", 5) ? pods : disks;
	if (!s)
		return false;
	const struct pod *p = snap_pod(s, strchr(what, '/') + 1);
	if (!p)
		return !inflight[i].held;
	return s == pods ? p->price_hr.set : disk_rate(p) >= 0;
}

/* The snapshots the burn rate is read from (NULL: none to be had); taken
 * before the lock, as taking them may wait for a fetch. */
static void take(struct cache *c, struct snap **pods, struct snap **disks)
{
	if (cache_get(c, SNAP_PODS, CACHE_TTL, pods))
		*pods = NULL;
	if (cache_get(c, SNAP_DISKS, CACHE_TTL, disks))
		*disks = NULL;
}

static void put(struct snap *pods, struct snap *disks)
{
	if (pods)
		snap_put(pods);
	if (disks)
		snap_put(disks);
}

/* Called with mu held. */
static double burn_locked(const struct snap *pods, const struct snap *disks,
			  struct buf *detail)
{
	double sum = 0, pods_sum = 0, disks_sum = 0, flight_sum = 0;
	size_t np = 0, nd = 0, nf = 0;
	for (size_t i = 0; pods && i < snap_n_pods(pods); i++) {
		double r = pod_rate(snap_pod_at(pods, i));
		if (r >= 0) {
			pods_sum += r;
			np++;
		}
	}
	for (size_t i = 0; disks && i < snap_n_pods(disks); i++) {
		double r = disk_rate(snap_pod_at(disks, i));
		if (r >= 0) {
			disks_sum += r;
			nd++;
		}
	}
	for (size_t i = 0; i < BUDGET_INFLIGHT_MAX; i++) {
		if (!inflight[i].what)
			continue;
		if (settled(pods, disks, i)) {
			free(inflight[i].what);
			inflight[i].what = NULL;
			continue;
		}
		flight_sum += inflight[i].price;
		nf++;
	}
	sum = pods_sum + disks_sum + flight_sum;
	if (detail)
		buf_printf(detail,
			   "%zu pods %.4f + %zu disks %.4f + %zu requests in "
			   "flight %.4f = %.4f USD/h",
			   np, pods_sum, nd, disks_sum, nf, flight_sum, sum);
	return sum;
}

double burn_hourly(struct cache *c, struct buf *detail)
{
	struct snap *pods, *disks;
	take(c, &pods, &disks);
	pthread_mutex_lock(&mu);
	double sum = burn_locked(pods, disks, detail);
	pthread_mutex_unlock(&mu);
	put(pods, disks);
	return sum;
}

bool burn_max_hourly(struct template_store *tmpl, double *out)
{
	struct buf v;
	buf_init(&v);
	bool set = tmpl && template_store_get(tmpl, NULL, "max_hourly", &v);
	if (set)
		*out = strtod(v.data, NULL); /* checked when the template was */
	buf_free(&v);
	return set;
}

int burn_admit(struct cache *c, struct template_store *tmpl, const char *what,
	       double price, const char *path)
{
	double max;
	bool capped = burn_max_hourly(tmpl, &max);
	struct buf detail;
	buf_init(&detail);
	int rc = 0;
	struct snap *pods = NULL, *disks = NULL;
	if (capped)
		take(c, &pods, &disks);
	pthread_mutex_lock(&mu);
	if (capped) {
		double burn = burn_locked(pods, disks, &detail);
		if (burn + price > max + 1e-9) {
			rc = -EDQUOT;
			buf_printf(&detail,
				   "; + %.4f USD/h for %s = %.4f USD/h, above "
				   "max_hourly = %g",
				   price, what, burn + price, max);
		}
	}
	if (rc == 0) {
		size_t slot = 0;
		for (size_t i = 0; i < BUDGET_INFLIGHT_MAX; i++)
			if (!inflight[i].what) {
				slot = i;
				break;
			}
		free(inflight[slot].what);
		inflight[slot].what = xstrdup(what);
		inflight[slot].price = price;
		inflight[slot].held = true;
	}
	pthread_mutex_unlock(&mu);
	put(pods, disks);
	if (rc)
		plog("mkdir", path,
		     "refused, nothing was sent: the burn rate "
		     "would pass max_hourly: %s",
		     detail.data);
	buf_free(&detail);
	return rc;
}

void burn_done(const char *what, bool keep)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < BUDGET_INFLIGHT_MAX; i++)
		if (inflight[i].what && !strcmp(inflight[i].what, what)) {
			inflight[i].held = false;
			if (!keep) {
				free(inflight[i].what);
				inflight[i].what = NULL;
			}
		}
	pthread_mutex_unlock(&mu);
}

double burn_spent_24h(const struct wallet *w, time_t now)
{
	double sum = 0;
	for (size_t i = 0; w && i < w->n_rows; i++) {
		const struct billing_row *b = &w->rows[i];
		time_t at = b->last_billed != -1 ? b->last_billed : b->created;
		if (at != -1 && now - at <= 24 * 3600)
			sum += b->amount_usd;
	}
	return sum;
}
