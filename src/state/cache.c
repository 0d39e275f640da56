/* cache.c — see cache.h. Each kind has a slot: the held snapshot, whether
 * a fetch is under way, and the failures so far. The slot's mutex guards
 * those fields only; the fetch itself runs unlocked on a detached thread of
 * its own, and readers that must wait for it wait on the slot's condition
 * variable (monotonic clock, in slices so that they notice their caller
 * giving up). */
#include "cache.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "disks.h"
#include "log.h"
#include "pending.h"

struct slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cache *c;
	enum snap_kind kind;
	double ttl;
	struct snap *snap;
	/* A snapshot whose fetch started before this is stale whatever its
	 * age (cache_refresh). */
	double valid_after;
	bool fetching;
	double fetch_started;
	unsigned long fetch_changes; /* `changes` when that fetch started */
	unsigned long changes;	     /* bumped by cache_pods_change */
	/* The last fetch failed (0: it did not). */
	int fail_errno;
	double fail_started; /* when the failed fetch started */
	unsigned fails;	     /* consecutive failures */
	double retry_at;     /* no fetch for a TTL reader before this */
	/* The API's call budget (budget.h): the calls the last fetch took,
	 * whether a refresh waits for its turn now, and whether the log said
	 * so since the budget last let one go at once. */
	int cost;
	bool paced, paced_noted;
};

struct cache {
	struct api *api;
	struct slot slots[SNAP_KINDS];
	pthread_mutex_t mu; /* guards the fields below */
	pthread_cond_t cv;
	int threads; /* fetch threads running */
	double wait_limit;
	bool (*interrupted)(void *arg);
	void *interrupted_arg;
	void (*pods_hook)(void *arg, const struct snap *s);
	void *pods_hook_arg;
	void (*replace_hook)(void *arg, const struct snap *old,
			     const struct snap *fresh);
	void *replace_hook_arg;
	/* Pods this mount terminated that no history listing has shown yet
	 * (guarded by the history slot's mutex). */
	struct pod_list terminated;
	/* Pods this mount asked for that no listing has shown yet
	 * (pending.h): the overlay of every pods snapshot; set once. */
	struct pending *pending;
};

static const char *const kind_names[SNAP_KINDS] = {
    [SNAP_OFFERS] = "availability",
    [SNAP_PODS] = "pods",
    [SNAP_HISTORY] = "history",
    [SNAP_WALLET] = "balance",
    [SNAP_KEYS] = "ssh_keys",
    /* the account's (disks.h) */
    [SNAP_DISKS] = "disks",
    [SNAP_DISK_OFFERS] = "disk_offers",
};

static void cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

struct cache *cache_new(struct api *api, const double ttl[SNAP_KINDS])
{
	struct cache *c = xcalloc(1, sizeof *c);
	c->api = api;
	c->wait_limit = CACHE_WAIT_DEFAULT;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	for (int k = 0; k < SNAP_KINDS; k++) {
		struct slot *sl = &c->slots[k];
		pthread_mutex_init(&sl->mu, NULL);
		cond_init_monotonic(&sl->cv);
		sl->c = c;
		sl->kind = (enum snap_kind)k;
		sl->ttl = ttl[k];
		sl->valid_after = -INFINITY;
		sl->cost = 1;
	}
	return c;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	while (c->threads)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	for (int k = 0; k < SNAP_KINDS; k++) {
		if (c->slots[k].snap)
			snap_put(c->slots[k].snap);
		pthread_mutex_destroy(&c->slots[k].mu);
		pthread_cond_destroy(&c->slots[k].cv);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pod_list_free(&c->terminated);
	free(c);
}

void cache_set_wait_limit(struct cache *c, double seconds)
{
	pthread_mutex_lock(&c->mu);
	c->wait_limit = seconds;
	pthread_mutex_unlock(&c->mu);
}

void cache_set_interrupt(struct cache *c, bool (*interrupted)(void *arg),
			 void *arg)
{
	pthread_mutex_lock(&c->mu);
	c->interrupted = interrupted;
	c->interrupted_arg = arg;
	pthread_mutex_unlock(&c->mu);
	if (c->api && c->api->http)
		http_set_interrupt(c->api->http, interrupted, arg);
}

void cache_set_pods_hook(struct cache *c,
			 void (*fn)(void *arg, const struct snap *s), void *arg)
{
	pthread_mutex_lock(&c->mu);
	c->pods_hook = fn;
	c->pods_hook_arg = arg;
	pthread_mutex_unlock(&c->mu);
}

void cache_set_pending(struct cache *c, struct pending *p)
{
	c->pending = p;
}

void cache_set_replace_hook(struct cache *c,
			    void (*fn)(void *arg, const struct snap *old,
				       const struct snap *fresh),
			    void *arg)
{
	pthread_mutex_lock(&c->mu);
	c->replace_hook = fn;
	c->replace_hook_arg = arg;
	pthread_mutex_unlock(&c->mu);
}

/* The replace hook told of a fetched listing, under its slot's mutex (the
 * hook takes no cache lock); the references stay the caller's. */
static void replaced_locked(struct cache *c, const struct snap *old,
			    const struct snap *fresh)
{
	pthread_mutex_lock(&c->mu);
	void (*hook)(void *, const struct snap *, const struct snap *) =
	    c->replace_hook;
	void *arg = c->replace_hook_arg;
	pthread_mutex_unlock(&c->mu);
	if (hook)
		hook(arg, old, fresh);
}

/* The held snapshot went from old to fresh: the replace hook is told.
 * Called with no lock held; takes both references (either may be NULL). */
static void replaced(struct cache *c, struct snap *old, struct snap *fresh)
{
	pthread_mutex_lock(&c->mu);
	void (*hook)(void *, const struct snap *, const struct snap *) =
	    c->replace_hook;
	void *arg = c->replace_hook_arg;
	pthread_mutex_unlock(&c->mu);
	if (hook && fresh)
		hook(arg, old, fresh);
	if (old)
		snap_put(old);
	if (fresh)
		snap_put(fresh);
}

/* ---- history: the listing plus what this mount terminated ---- */

/* A listed pod with no id is left out: every snapshot's pod has one. */
static void drop_idless(struct pod_list *l)
{
	size_t kept = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].id)
			l->v[kept++] = l->v[i];
		else
			pod_free(&l->v[i]);
	}
	l->n = kept;
}

/* A copy of a pod as a history pod, from its own JSON; none for a pod
 * with no id (a placeholder, pending.h: nothing was terminated). */
static bool history_copy(const struct pod *p, struct pod *out)
{
	json_object *o = json_tokener_parse(p->json);
	int rc = pod_parse(o, true, out);
	json_object_put(o);
	if (rc == 0 && !out->id) {
		pod_free(out);
		return false;
	}
	return rc == 0;
}

static bool listed(const struct pod_list *l, const char *id)
{
	if (!id)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id && !strcmp(l->v[i].id, id))
			return true;
	return false;
}

/* The history snapshot of listing `l` (taken): the pods this mount
 * terminated that `l` does not show yet are added; those it shows are
 * forgotten, as the API has them now. Locks the history slot briefly. */
static struct snap *history_snap(struct cache *c, struct pod_list *l)
{
	drop_idless(l);
	struct slot *sl = &c->slots[SNAP_HISTORY];
	pthread_mutex_lock(&sl->mu);
	struct pod_list *t = &c->terminated;
	size_t kept = 0;
	l->v = xrealloc(l->v, (l->n + t->n + 1) * sizeof *l->v);
	size_t listed_n = l->n;
	for (size_t i = 0; i < t->n; i++) {
		struct pod_list shown = {l->v, listed_n};
		if (listed(&shown, t->v[i].id)) {
			pod_free(&t->v[i]);
			continue;
		}
		if (history_copy(&t->v[i], &l->v[l->n]))
			l->n++;
		t->v[kept++] = t->v[i];
	}
	t->n = kept;
	pthread_mutex_unlock(&sl->mu);
	return snap_from_pods(l, true);
}

/* How many terminated pods are kept waiting for the history to list them. */
#define CACHE_TERMINATED_MAX 1000

void cache_history_add(struct cache *c, const char *id)
{
	struct snap *pods;
	if (cache_get(c, SNAP_PODS, CACHE_HELD, &pods))
		return;
	const struct pod *p = snap_pod_id(pods, id);
	struct pod copy;
	if (!p || !history_copy(p, &copy)) {
		snap_put(pods);
		return;
	}
	snap_put(pods);
	struct slot *sl = &c->slots[SNAP_HISTORY];
	pthread_mutex_lock(&sl->mu);
	struct pod_list *t = &c->terminated;
	if (t->n >= CACHE_TERMINATED_MAX) {
		pod_free(&t->v[0]);
		memmove(t->v, t->v + 1, --t->n * sizeof *t->v);
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof *t->v);
	t->v[t->n++] = copy;
	struct snap *old = sl->snap, *replaced_s = NULL;
	if (old) {
		/* The held history, with the pod added at once. */
		struct pod_list l = {
		    xcalloc(old->pods.n + 1, sizeof(struct pod)), 0};
		for (size_t i = 0; i < old->pods.n; i++)
			if (strcmp(old->pods.v[i].id, id) &&
			    history_copy(&old->pods.v[i], &l.v[l.n]))
				l.n++;
		if (history_copy(&copy, &l.v[l.n]))
			l.n++;
		struct snap *s = snap_from_pods(&l, true);
		s->fetched = old->fetched;
		s->fetched_mono = old->fetched_mono;
		sl->snap = snap_ref(s);
		/* The slot's reference to old is ours now. */
		replaced_s = s;
	}
	/* A listing on the wire now may predate the termination. */
	sl->changes++;
	pthread_mutex_unlock(&sl->mu);
	if (old)
		replaced(c, old, replaced_s);
}

/* ---- pods: the listing plus the creates no listing shows yet ---- */

/* The pods snapshot of listing `l` (taken), with the overlay of pending
 * creates (pending.h): what the listing shows of them settles them, the
 * others are added. Whenever the listing started: what it shows exists.
 * Locks the pods slot briefly. */
static struct snap *pods_snap(struct cache *c, struct pod_list *l)
{
	struct slot *sl = &c->slots[SNAP_PODS];
	drop_idless(l);
	if (c->pending) {
		pthread_mutex_lock(&sl->mu);
		pending_overlay(c->pending, l);
		pthread_mutex_unlock(&sl->mu);
		pending_settle(c->pending);
	}
	return snap_from_pods(l, false);
}

/* ---- fetching ---- */

static int fetch(struct cache *c, enum snap_kind kind, struct snap **out)
{
	int rc;
	switch (kind) {
	case SNAP_OFFERS: {
		struct offer_list l;
		if ((rc = api_list_offers(c->api, &l)))
			return rc;
		*out = snap_from_offers(&l);
		return 0;
	}
	case SNAP_PODS:
	case SNAP_HISTORY: {
		struct pod_list l;
		if ((rc = api_list_pods(c->api, kind == SNAP_HISTORY, &l)))
			return rc;
		*out = kind == SNAP_HISTORY ? history_snap(c, &l)
					    : pods_snap(c, &l);
		return 0;
	}
	case SNAP_KEYS: {
		struct key_list l;
		if ((rc = api_list_keys(c->api, &l)))
			return rc;
		*out = snap_from_keys(&l);
		return 0;
	}
	case SNAP_DISKS: {
		struct pod_list l;
		if ((rc = api_list_disks(c->api, &l)))
			return rc;
		drop_idless(&l);
		*out = snap_from_pods(&l, false);
		(*out)->kind = SNAP_DISKS;
		return 0;
	}
	case SNAP_DISK_OFFERS: {
		struct offer_list l;
		if ((rc = api_list_disk_offers(c->api, &l)))
			return rc;
		*out = snap_from_offers(&l);
		(*out)->kind = SNAP_DISK_OFFERS;
		return 0;
	}
	default: {
		/* Billing rows as far back as the oldest pod held. */
		time_t since = -1;
		struct snap *pods;
		if (cache_get(c, SNAP_PODS, CACHE_HELD, &pods) == 0) {
			for (size_t i = 0; i < pods->pods.n; i++) {
				time_t t = pods->pods.v[i].created_t;
				if (t != -1 && (since == -1 || t < since))
					since = t;
			}
			snap_put(pods);
		}
		struct wallet w;
		if ((rc = api_get_wallet(c->api, since, &w)))
			return rc;
		*out = snap_new(SNAP_WALLET);
		(*out)->wallet = w;
		return 0;
	}
	}
}

static double backoff(unsigned fails)
{
	double d = CACHE_BACKOFF_MIN * pow(2, fails > 10 ? 10 : fails - 1);
	return d < CACHE_BACKOFF_MAX ? d : CACHE_BACKOFF_MAX;
}

/* The fetch thread: fetches, installs or records the failure, wakes the
 * waiters, then tells whoever asked to know. */
static void *fetch_main(void *arg)
{
	struct slot *sl = arg;
	struct cache *c = sl->c;
	pthread_mutex_lock(&sl->mu);
	double started = sl->fetch_started;
	unsigned long changes = sl->fetch_changes;
	pthread_mutex_unlock(&sl->mu);
	time_t started_wall = time(NULL);

	struct snap *fresh = NULL;
	unsigned long calls = budget_thread_calls();
	int rc = fetch(c, sl->kind, &fresh);
	calls = budget_thread_calls() - calls;
	if (rc == 0) {
		fresh->fetched = started_wall;
		fresh->fetched_mono = started;
	}

	struct snap *old = NULL, *installed = NULL;
	double held_age = -1, next_try = 0;
	double free_at = rc ? budget_free_at(c->api->budget) : 0;
	pthread_mutex_lock(&sl->mu);
	sl->fetching = false;
	if (calls)
		sl->cost = (int)calls;
	if (rc == 0) {
		if (changes == sl->changes || !sl->snap) {
			old = sl->snap;
			sl->snap = fresh; /* the slot takes our reference */
			installed = snap_ref(fresh);
			fresh = NULL;
		}
		/* Else our own change came after this listing left: the held
		 * snapshot is the newer truth, and the listing is dropped. */
		sl->fail_errno = 0;
		sl->fails = 0;
		sl->retry_at = 0;
	} else {
		sl->fail_errno = -rc;
		sl->fail_started = started;
		/* A fetch that left before a refresh is not the refresh's
		 * try: that one is still to be made. */
		if (started >= sl->valid_after) {
			sl->fails++;
			next_try = backoff(sl->fails);
			sl->retry_at = now_monotonic() + next_try;
		}
		/* Refused by the budget or a hold: no try before it ends. */
		if (free_at > sl->retry_at) {
			next_try = free_at - now_monotonic();
			sl->retry_at = free_at;
		}
		if (sl->snap)
			held_age = now_monotonic() - sl->snap->fetched_mono;
	}
	/* Told before any waiter wakes to the new answer, so that a reader
	 * who sees it sees the change told (the hook only queues). */
	if (installed)
		replaced_locked(c, old, installed);
	pthread_cond_broadcast(&sl->cv);
	pthread_mutex_unlock(&sl->mu);

	if (held_age >= 0 && held_age < CACHE_STALE_MAX)
		plog("cache", kind_names[sl->kind],
		     "serving the answer of %.0f s ago while the API fails "
		     "(next try in %.0f s)",
		     held_age, next_try);
	if (fresh)
		snap_put(fresh);
	if (old)
		snap_put(old);
	pthread_mutex_lock(&c->mu);
	void (*hook)(void *, const struct snap *) = c->pods_hook;
	void *hook_arg = c->pods_hook_arg;
	pthread_mutex_unlock(&c->mu);
	if (installed && sl->kind == SNAP_PODS && hook)
		hook(hook_arg, installed);
	if (installed)
		snap_put(installed);

	/* This thread's libcurl handle goes now, not in a thread-exit
	 * destructor that cache_free (and then http_free) would not wait
	 * for. */
	http_thread_done(c->api->http);
	pthread_mutex_lock(&c->mu);
	c->threads--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Starts a fetch for the slot; called with sl->mu held. */
static void start_fetch(struct slot *sl)
{
	struct cache *c = sl->c;
	sl->fetching = true;
	sl->fetch_started = now_monotonic();
	sl->fetch_changes = sl->changes;
	stats_count(ST_CACHE_MISSES);
	pthread_mutex_lock(&c->mu);
	c->threads++;
	pthread_mutex_unlock(&c->mu);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int e = pthread_create(&t, &a, fetch_main, sl);
	pthread_attr_destroy(&a);
	if (e) {
		/* No thread: the fetch fails as a network call would. */
		sl->fetching = false;
		sl->fail_errno = EAGAIN;
		sl->fail_started = sl->fetch_started;
		sl->fails++;
		sl->retry_at = now_monotonic() + backoff(sl->fails);
		pthread_mutex_lock(&c->mu);
		c->threads--;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
}

/* Whether a refresh of the held answer may start now (budget.h's pace);
 * called with sl->mu held. When the budget says to wait, the held answer
 * is served meanwhile, and `note` gets the line for the log, once (again
 * only after the budget has let a refresh go at once). */
static bool pace(struct slot *sl, double now, char *note, size_t size)
{
	double until;
	enum budget_verdict v =
	    budget_pace(sl->c->api->budget, sl->cost, &until);
	if (v == BUDGET_OK) {
		if (!sl->paced)
			sl->paced_noted = false;
		sl->paced = false;
		return true;
	}
	sl->paced = true;
	if (sl->paced_noted)
		return false;
	sl->paced_noted = true;
	struct budget_state b;
	budget_state(sl->c->api->budget, &b);
	double age = now - sl->snap->fetched_mono;
	if (v == BUDGET_HELD)
		snprintf(note, size,
			 "serving the answer of %.0f s ago: the API holds "
			 "calls for %.0f s more (Retry-After)",
			 age, until - now);
	else
		snprintf(note, size,
			 "serving the answer of %.0f s ago: the API's call "
			 "budget is tight (%d of %d calls in the last hour); "
			 "refreshed as it allows",
			 age, b.counted, b.per_hour);
	return false;
}

/* Called with sl->mu held; releases it. */
static int serve(struct slot *sl, struct snap **out, int counter)
{
	*out = snap_ref(sl->snap);
	pthread_mutex_unlock(&sl->mu);
	stats_count(counter);
	return 0;
}

int cache_get(struct cache *c, enum snap_kind kind, enum cache_mode mode,
	      struct snap **out)
{
	struct slot *sl = &c->slots[kind];
	double began = now_monotonic();
	pthread_mutex_lock(&c->mu);
	double deadline = began + c->wait_limit;
	double limit = c->wait_limit;
	bool (*interrupted)(void *) = c->interrupted;
	void *iarg = c->interrupted_arg;
	pthread_mutex_unlock(&c->mu);

	pthread_mutex_lock(&sl->mu);
	for (;;) {
		double now = now_monotonic();
		struct snap *s = sl->snap;
		if (mode == CACHE_HELD) {
			if (s)
				return serve(sl, out, ST_CACHE_HITS);
			pthread_mutex_unlock(&sl->mu);
			return -ENOENT;
		}
		bool valid = s && s->fetched_mono >= sl->valid_after;
		bool usable = s && now - s->fetched_mono < CACHE_STALE_MAX;
		if (mode == CACHE_NOWAIT) {
			if (!s) {
				pthread_mutex_unlock(&sl->mu);
				return -ENOENT;
			}
			char note[200] = "";
			if ((!valid || now - s->fetched_mono >= sl->ttl) &&
			    !sl->fetching && now >= sl->retry_at &&
			    pace(sl, now, note, sizeof note))
				start_fetch(sl);
			return serve(sl, out, ST_CACHE_HITS);
		}
		/* A listing fetched since this call began is as fresh as the
		 * call can ask (with a freshness window shorter than a fetch,
		 * waiting for a younger one would never end). */
		if (mode == CACHE_FRESH
			? s && s->fetched_mono >= began
			: valid && (now - s->fetched_mono < sl->ttl ||
				    s->fetched_mono >= began))
			return serve(sl, out, ST_CACHE_HITS);
		double until = deadline;
		if (mode == CACHE_TTL && valid && usable) {
			/* Stale while revalidate: a fetch behind the held
			 * answer (unless one runs, we back off, or the API's
			 * call budget says to wait: then the freshness window
			 * stretches). One that answers within a moment is
			 * waited for, so that a healthy API shows fresh data;
			 * a slow one is not. */
			char note[200] = "";
			if (!sl->fetching && now >= sl->retry_at &&
			    pace(sl, now, note, sizeof note))
				start_fetch(sl);
			double grace =
			    sl->fetch_started + CACHE_REVALIDATE_WAIT;
			if (!sl->fetching || now >= grace) {
				int rc = serve(sl, out, ST_STALE_SERVED);
				if (note[0]) /* no lock held now */
					plog("cache", kind_names[kind], "%s",
					     note);
				return rc;
			}
			if (grace < until)
				until = grace;
		} else {
			/* Nothing usable held, or marked stale by a refresh,
			 * or the caller wants a fetch of its own: it waits for
			 * one. A failure that answers this call ends the
			 * wait. */
			if (sl->fail_errno && !sl->fetching &&
			    (mode == CACHE_FRESH ? sl->fail_started >= began
						 : now < sl->retry_at)) {
				int e = sl->fail_errno;
				/* Held back by the API's call budget or a
				 * Retry-After: the held answer, however old. */
				if (mode == CACHE_TTL &&
				    (usable || (s && e == EAGAIN)))
					return serve(sl, out, ST_STALE_SERVED);
				pthread_mutex_unlock(&sl->mu);
				return -e;
			}
			if (!sl->fetching)
				start_fetch(sl);
			if (sl->fetching && mode == CACHE_FRESH &&
			    sl->fetch_started >= began &&
			    sl->fetch_started + limit > deadline)
				/* The fetch this call needs started after an
				 * older one ended: it gets its own full time
				 * limit. */
				deadline = until = sl->fetch_started + limit;
		}
		if (now >= until || (interrupted && interrupted(iarg))) {
			int e = now >= until ? ETIMEDOUT : EINTR;
			if (mode == CACHE_TTL && usable)
				return serve(sl, out, ST_STALE_SERVED);
			pthread_mutex_unlock(&sl->mu);
			plog("cache", kind_names[kind], "%s",
			     e == EINTR ? "interrupted while waiting for the "
					  "listing"
					: "gave up waiting for the listing "
					  "(timeout)");
			return -e;
		}
		if (now + 0.1 < until)
			until = now + 0.1;
		struct timespec ts = {
		    (time_t)until,
		    (long)((until - (double)(time_t)until) * 1e9)};
		pthread_cond_timedwait(&sl->cv, &sl->mu, &ts);
	}
}

void cache_refresh(struct cache *c)
{
	for (int k = 0; k < SNAP_KINDS; k++) {
		struct slot *sl = &c->slots[k];
		pthread_mutex_lock(&sl->mu);
		/* A fetch that started before now is stale too: a listing in
		 * flight is installed (newer than what is held) but does not
		 * count as the refresh. */
		sl->valid_after = now_monotonic();
		sl->fail_errno = 0;
		sl->fails = 0;
		sl->retry_at = 0;
		pthread_mutex_unlock(&sl->mu);
	}
}

void cache_install(struct cache *c, struct snap *s)
{
	struct slot *sl = &c->slots[s->kind];
	pthread_mutex_lock(&sl->mu);
	struct snap *old = sl->snap;
	sl->snap = s;
	sl->fail_errno = 0;
	sl->fails = 0;
	sl->retry_at = 0;
	snap_ref(s);
	pthread_mutex_unlock(&sl->mu);
	replaced(c, old, s);
}

/* What change_held replaced, for replaced() once the slot is unlocked. */
struct change {
	struct snap *old, *fresh;
};

/* The held pods snapshot with the pods whose id is `rm1` or `rm2` left out
 * and `add` (taken, may be NULL) appended; called with the pods slot's
 * mutex held. A listing that was on the wire meanwhile is dropped when it
 * comes, as it may predate the change. The old and new snapshots go to
 * *ch (referenced) for the caller to pass to replaced() after unlocking. */
static void change_held(struct slot *sl, struct pod *add, const char *rm1,
			const char *rm2, struct change *ch)
{
	struct snap *old = sl->snap;
	sl->changes++;
	ch->old = ch->fresh = NULL;
	if (!old) {
		/* Nothing held: the next access fetches (and the overlay of
		 * pending creates applies to what it gets). */
		sl->valid_after = now_monotonic();
		if (add)
			pod_free(add);
		return;
	}
	/* A copy made from each pod's own JSON: pods are immutable once in a
	 * snapshot, and mkdir and rmdir are rare. */
	struct pod_list l = {xcalloc(old->pods.n + 1, sizeof(struct pod)), 0};
	for (size_t i = 0; i < old->pods.n; i++) {
		const struct pod *p = &old->pods.v[i];
		if ((rm1 && !strcmp(p->id, rm1)) ||
		    (rm2 && !strcmp(p->id, rm2)))
			continue;
		json_object *o = json_tokener_parse(p->json);
		if (pod_parse(o, false, &l.v[l.n]) == 0) {
			/* A placeholder's JSON has no id: it keeps its own. */
			if (!l.v[l.n].id)
				l.v[l.n].id = xstrdup(p->id);
			l.n++;
		}
		json_object_put(o);
	}
	if (add)
		l.v[l.n++] = *add;
	struct snap *s = snap_from_pods(&l, false);
	s->kind = sl->kind; /* pods, or disks (cache_disks_change) */
	/* It is as fresh as the listing it came from. */
	s->fetched = old->fetched;
	s->fetched_mono = old->fetched_mono;
	sl->snap = s;
	ch->old = old; /* the slot's reference; readers hold their own */
	ch->fresh = snap_ref(s);
}

void cache_pods_change(struct cache *c, struct pod *add, const char *remove)
{
	struct slot *sl = &c->slots[SNAP_PODS];
	pthread_mutex_lock(&sl->mu);
	struct change ch;
	change_held(sl, add, remove, NULL, &ch);
	pthread_mutex_unlock(&sl->mu);
	replaced(c, ch.old, ch.fresh);
}

void cache_disks_change(struct cache *c, struct pod *add, const char *remove)
{
	struct slot *sl = &c->slots[SNAP_DISKS];
	pthread_mutex_lock(&sl->mu);
	struct change ch;
	change_held(sl, add, remove, NULL, &ch);
	pthread_mutex_unlock(&sl->mu);
	replaced(c, ch.old, ch.fresh);
}

void cache_stale(struct cache *c, enum snap_kind kind)
{
	struct slot *sl = &c->slots[kind];
	pthread_mutex_lock(&sl->mu);
	sl->valid_after = now_monotonic();
	sl->fail_errno = 0;
	sl->fails = 0;
	sl->retry_at = 0;
	pthread_mutex_unlock(&sl->mu);
}
