/* guards.c — see guards.h. One mutex guards the table; the timer thread
 * waits on a condition until the earliest due time (a deadline, the end of
 * an idle count, a released lease's grace, a predicted max_cost crossing,
 * a retry, or a poll for what cannot be predicted), woken early when a job
 * starts or ends, a listing comes or a guard changes; it takes what is due
 * out under the lock, and evaluates and terminates with the lock released.
 * Idle needs no API call once it counts: its start is the latest of the
 * guard's setting, the first listing that showed the pod billing, and the
 * end of the pod's last job (jobs' activity hook). max_cost is predicted
 * from the cost and price now, and checked against a fresh listing at the
 * crossing (the held one, if the call budget holds the read).
 * Each pod's guards are one file, DIR/guards/<id>, replaced atomically
 * (atomic_write_file) whenever they change; a change that cannot be saved
 * is not made (statedir.h). */
#include "guards.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifecycle.h"
#include "log.h"
#include "nodes.h"
#include "jobs.h"
#include "template.h"

#define RETRY_MIN 1.0
#define RETRY_MAX 60.0

struct guard {
	char *id, *name;
	char *was; /* the placeholder key it had (guards_rekey), or NULL */
	time_t deadline;   /* 0: none */
	double idle;	   /* seconds; < 0: none */
	time_t idle_since; /* the later of arming, ACTIVE and the last job */
	bool seen_active;
	bool running;	    /* a job of the pod runs (as last looked) */
	bool dirty;	    /* look again now: a job, a listing, a change */
	time_t idle_looked; /* the idle due time looked at without firing
			       (the pod unlisted or not billing): not again
			       before something changes */
	double cost_due;    /* the predicted max_cost crossing; 0: none */
	double max_cost;    /* USD; < 0: none */
	bool lease;	    /* armed: it has been held */
	int holders;
	time_t released; /* when the last holder let go; 0 while held */
	/* Terminating: which guard fired, and when to try again. */
	const char *firing;
	double backoff;
	time_t retry_at;
};

struct guards {
	struct guards_opts o;
	char *dir; /* DIR/guards, for messages */
	int fd;	   /* DIR/guards, open; -errno if it cannot be used */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, started;
	pthread_t thread;
	struct guard **v;
	size_t n;
	double last_poll;
};

static const char *const kind_names[G_KINDS] = {"deadline", "idle", "max_cost",
						"lease"};

static bool armed(const struct guard *x)
{
	return x->deadline || x->idle >= 0 || x->max_cost >= 0 || x->lease;
}

static struct guard *find(struct guards *g, const char *id)
{
	for (size_t i = 0; i < g->n; i++)
		if (!strcmp(g->v[i]->id, id))
			return g->v[i];
	return NULL;
}

static struct guard *find_or_add(struct guards *g, const char *id,
				 const char *name)
{
	struct guard *x = find(g, id);
	if (!x) {
		x = xcalloc(1, sizeof *x);
		x->id = xstrdup(id);
		x->idle = x->max_cost = -1;
		g->v = xrealloc(g->v, (g->n + 1) * sizeof *g->v);
		g->v[g->n++] = x;
	}
	if (name && (!x->name || strcmp(x->name, name))) {
		free(x->name);
		x->name = xstrdup(name);
	}
	return x;
}

static void guard_free(struct guard *x)
{
	free(x->was);
	free(x->id);
	free(x->name);
	free(x);
}

static void drop(struct guards *g, struct guard *x)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->v[i] == x) {
			g->v[i] = g->v[--g->n];
			break;
		}
	guard_free(x);
}

/* ---- the state directory ---- */

static void unsave(struct guards *g, const char *id)
{
	if (g->fd >= 0)
		unlinkat(g->fd, id, 0);
}

/* Under g->mu (a small local file): 0 or -errno, the file as it was (the
 * caller logs, without the lock). A pod with nothing armed has none. */
static int save(struct guards *g, const struct guard *x)
{
	if (!g->dir) /* no state directory: in memory only */
		return 0;
	if (!armed(x)) {
		unsave(g, x->id);
		return 0;
	}
	if (g->fd < 0)
		return g->fd;
	struct buf f;
	buf_init(&f);
	buf_printf(&f, "name %s\n", x->name ? x->name : x->id);
	if (x->deadline)
		buf_printf(&f, "deadline %lld\n", (long long)x->deadline);
	if (x->idle >= 0)
		buf_printf(&f, "idle %.17g %lld %d\n", x->idle,
			   (long long)x->idle_since, x->seen_active);
	if (x->max_cost >= 0)
		buf_printf(&f, "max_cost %.17g\n", x->max_cost);
	if (x->lease)
		buf_printf(&f, "lease %lld\n",
			   (long long)(x->holders ? 0 : x->released));
	int rc = atomic_write_file(g->fd, x->id, f.data, f.len);
	buf_free(&f);
	return rc;
}

static void log_unsaved(struct guards *g, const char *id, int rc)
{
	if (rc)
		plog("guard", g->dir, "cannot save the guards of pod %s: %s",
		     id, strerror(-rc));
}

static void load_one(struct guards *g, const char *id, time_t now)
{
	int fd = openat_nofollow(g->fd, id, O_RDONLY, 0);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct guard *x = find_or_add(g, id, NULL);
	char line[512];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "name") && safe_name(v)) {
			free(x->name);
			x->name = xstrdup(v);
		} else if (!strcmp(line, "deadline")) {
			x->deadline = (time_t)strtoll(v, NULL, 10);
		} else if (!strcmp(line, "idle")) {
			char *end;
			x->idle = strtod(v, &end);
			x->idle_since = (time_t)strtoll(end, &end, 10);
			x->seen_active = strtol(end, NULL, 10) == 1;
			if (!isfinite(x->idle) || x->idle <= 0)
				x->idle = -1;
		} else if (!strcmp(line, "max_cost")) {
			x->max_cost = strtod(v, NULL);
			if (!isfinite(x->max_cost) || x->max_cost < 0)
				x->max_cost = -1;
		} else if (!strcmp(line, "lease")) {
			/* Held at unmount: its holders lost it then, so its
			 * grace counts from this mount. */
			time_t r = (time_t)strtoll(v, NULL, 10);
			x->lease = true;
			x->released = r > 0 ? r : now;
		}
	}
	fclose(f);
	x->dirty = true;
	if (!armed(x))
		drop(g, x);
}

static void load(struct guards *g)
{
	int fd = openat(g->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d)))
		if (safe_name(e->d_name) && !strstr(e->d_name, ".tmp"))
			load_one(g, e->d_name, now);
	closedir(d);
}

/* ---- the timer ---- */

/* The wall clock, to the nanosecond: guards fall due at wall times. */
static double now_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static time_t lease_due(const struct guards *g, const struct guard *x)
{
	if (!x->lease || x->holders || !x->released)
		return 0;
	return x->released + (time_t)ceil(g->o.lease_grace);
}

/* When the idle guard fires if no job starts: 0 while it does not count
 * (not yet seen billing, or a job runs). */
static time_t idle_due(const struct guard *x)
{
	if (x->idle < 0 || !x->seen_active || x->running)
		return 0;
	return x->idle_since + (time_t)ceil(x->idle);
}

/* Whether the guard needs a listing now and then: an idle guard until its
 * pod is seen billing, a max_cost guard (a price may change unseen). */
static bool needs_poll(const struct guard *x)
{
	/* An idle due time looked at without firing (the listing held then
	 * lacked the pod: a partial one, or it did not bill) is looked at
	 * again against a listing of the API's, not only when one comes. */
	bool idle_unjudged =
	    x->idle >= 0 && x->idle_looked && x->idle_looked == idle_due(x);
	return !x->firing && ((x->idle >= 0 && !x->seen_active) ||
			      idle_unjudged || x->max_cost >= 0);
}

/* The earliest time something is due; 0 for nothing at all. */
static double next_due(struct guards *g)
{
	double next = 0;
#define EARLIER(t)                                                             \
	do {                                                                   \
		double t_ = (double)(t);                                       \
		if (t_ > 0 && (!next || t_ < next))                            \
			next = t_;                                             \
	} while (0)
	for (size_t i = 0; i < g->n; i++) {
		struct guard *x = g->v[i];
		if (x->firing) {
			EARLIER(x->retry_at);
			continue;
		}
		if (x->dirty)
			EARLIER(1); /* now */
		EARLIER(x->deadline);
		EARLIER(lease_due(g, x));
		if (idle_due(x) != x->idle_looked)
			EARLIER(idle_due(x));
		if (x->max_cost >= 0)
			EARLIER(x->cost_due);
		if (needs_poll(x))
			EARLIER(g->last_poll + ceil(g->o.check_every));
	}
#undef EARLIER
	return next;
}

struct work {
	char *id, *name;
	const char *why; /* set: terminate now */
	bool first;	 /* the guard fired just now (not a retry) */
	bool check;	 /* evaluate idle and cost */
	bool fresh;	 /* ... against the API (a poll, a crossing) */
	bool crossing;	 /* the predicted max_cost crossing is due */
	double idle, max_cost;
};

/* Under g->mu: what is due now. */
static size_t collect(struct guards *g, double now, struct work **out)
{
	bool poll = g->last_poll + ceil(g->o.check_every) <= now;
	struct work *w = xcalloc(g->n ? g->n : 1, sizeof *w);
	size_t n = 0;
	bool polled = false;
	for (size_t i = 0; i < g->n; i++) {
		struct guard *x = g->v[i];
		struct work *k = &w[n];
		time_t idle_at =
		    idle_due(x) != x->idle_looked ? idle_due(x) : 0;
		bool crossing =
		    x->max_cost >= 0 && x->cost_due > 0 && x->cost_due <= now;
		if (x->firing) {
			if (x->retry_at > now)
				continue;
			k->why = x->firing;
		} else if (x->deadline && x->deadline <= now) {
			k->why = x->firing = "deadline";
			k->first = true;
		} else if (lease_due(g, x) && lease_due(g, x) <= now) {
			k->why = x->firing = "lease";
			k->first = true;
		} else if (x->dirty || crossing ||
			   (idle_at && idle_at <= now) ||
			   (poll && needs_poll(x))) {
			k->check = true;
			k->crossing = crossing;
			k->fresh = crossing || (poll && needs_poll(x));
			polled |= poll && needs_poll(x);
			k->idle = x->idle;
			k->max_cost = x->max_cost;
			x->dirty = false;
			if (idle_at && idle_at <= now)
				x->idle_looked = idle_at;
			if (crossing)
				x->cost_due = 0; /* evaluate sets the next */
		} else {
			continue;
		}
		if (k->why)
			x->retry_at = (time_t)now + 3600; /* until it ends */
		k->id = xstrdup(x->id);
		k->name = xstrdup(x->name ? x->name : x->id);
		n++;
	}
	if (polled || poll)
		g->last_poll = now;
	*out = w;
	return n;
}

/* Whether the idle time starts counting (DESIGN.md, "Guards"): the pod
 * bills and could have run a job, or never will (ACTIVE, INSTALL_FAILED,
 * STOPPED); not while it is still coming up (PROVISIONING, PENDING,
 * INSTALLING). Once counting, it fires in any state that bills. */
static bool idle_starts(const struct pod *p)
{
	const char *s = pod_status(p);
	return pod_bills(p) &&
	       (!strcmp(s, "ACTIVE") || !strcmp(s, "INSTALL_FAILED") ||
		!strcmp(s, "STOPPED"));
}

struct activity {
	struct jobs *jobs;
	const char *pod_id;
	bool running;
	time_t last_end;
};

static int add_activity(void *ctx, const char *name)
{
	struct activity *a = ctx;
	struct job *jb = jobs_get(a->jobs, a->pod_id, name);
	if (!jb)
		return 0;
	enum job_state s = job_state(jb);
	if (s == JOB_RUNNING)
		a->running = true;
	else if (s == JOB_EXITED || s == JOB_LOST) {
		time_t e = job_ended(jb);
		if (e > a->last_end)
			a->last_end = e;
	}
	job_put(jb);
	return 0;
}

/* Without g->mu: whether an idle or cost guard fires now, and when it
 * falls due next (the idle count's start, the predicted crossing), noted
 * back in the table. */
static void evaluate(struct guards *g, struct work *k, const struct snap *s,
		     double now)
{
	const struct pod *p = s ? snap_pod(s, k->id) : NULL;
	if (!p && !(k->crossing && !s))
		return; /* not listed (yet, or any more): nothing to judge */
	/* A job on any node of a multi-node pod counts (nodes.h's keys). */
	struct activity a = {.jobs = g->o.jobs};
	size_t nodes = p && nodes_count(p) > 1 ? nodes_count(p) : 1;
	for (size_t i = 0; p && k->idle >= 0 && g->o.jobs && i < nodes; i++) {
		char *key = node_key(k->id, i);
		a.pod_id = key;
		jobs_list(g->o.jobs, key, add_activity, &a);
		free(key);
	}
	a.pod_id = k->id;
	/* Cost at a whole second, so that the crossing is one too: at it
	 * the cost has reached max_cost if the price held. */
	time_t t = (time_t)floor(now);
	double cost = 0;
	bool cost_known = p && k->max_cost >= 0 && g->o.cost &&
			  g->o.cost(g->o.cost_arg, p, k->fresh, t, &cost) == 0;
	struct num price = p ? pod_price(p) : (struct num){0};
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, k->id);
	if (!x || x->firing) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	if (x->max_cost >= 0) {
		/* No listing to check against at the crossing: the
		 * prediction is trusted. */
		bool reached = !p || (cost_known && cost >= x->max_cost);
		if (reached) {
			x->firing = k->why = "max_cost";
			x->retry_at = t + 3600;
			k->first = true;
		} else if (cost_known && pod_bills(p) && price.set &&
			   price.d > 0) {
			double secs = (x->max_cost - cost) / price.d * 3600;
			double due = (double)t + ceil(secs);
			x->cost_due = due > t ? due : t + 1;
		} else {
			x->cost_due = 0; /* the next listing or poll guesses */
		}
	}
	if (p && x->idle >= 0 && !x->firing) {
		if (idle_starts(p) && !x->seen_active) {
			x->seen_active = true;
			if (x->idle_since < t)
				x->idle_since = t;
		}
		if (a.last_end > x->idle_since)
			x->idle_since = a.last_end;
		x->running = a.running;
		time_t due = idle_due(x);
		if (pod_bills(p) && due && due <= now) {
			x->firing = k->why = "idle";
			x->retry_at = t + 3600;
			k->first = true;
		}
	}
	pthread_mutex_unlock(&g->mu);
}

static void fire(struct guards *g, struct work *k)
{
	if (k->first) {
		stats_count(ST_GUARDS_FIRED);
		struct buf path;
		buf_init(&path);
		buf_printf(&path, "/pods/%s", k->name);
		plog("guard", path.data,
		     "%s guard fired: terminating pod %s (id %s)", k->why,
		     k->name, k->id);
		buf_free(&path);
	}
	int rc = pod_terminate(g->o.life, k->id, k->name, k->why);
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, k->id);
	if (x && rc == 0) {
		drop(g, x);
		unsave(g, k->id);
	} else if (x) {
		x->backoff =
		    x->backoff ? fmin(x->backoff * 2, RETRY_MAX) : RETRY_MIN;
		x->retry_at = time(NULL) + (time_t)x->backoff;
	}
	double wait = x ? x->backoff : 0;
	pthread_mutex_unlock(&g->mu);
	if (rc)
		plog("guard", k->id,
		     "terminating pod %s (%s guard) failed (%s); trying again "
		     "in %g s",
		     k->name, k->why, strerror(-rc), wait);
}

/* The listing to judge by: a fresh one (within its freshness window, as
 * far as the call budget allows; else the held one) for a poll or a
 * crossing, else the one held (no API call), fetched only if none is. */
static struct snap *listing(struct guards *g, bool fresh)
{
	struct snap *s = NULL;
	if (!fresh && cache_get(g->o.cache, SNAP_PODS, CACHE_HELD, &s) == 0)
		return s;
	if (cache_get(g->o.cache, SNAP_PODS, CACHE_TTL, &s) != 0)
		s = NULL;
	return s;
}

static void *timer(void *arg)
{
	struct guards *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		double now = now_wall();
		double next = next_due(g);
		if (!next || next > now) {
			double until = next ? next : now + 3600;
			struct timespec ts = {.tv_sec = (time_t)floor(until)};
			ts.tv_nsec = (long)((until - floor(until)) * 1e9);
			pthread_cond_timedwait(&g->cv, &g->mu, &ts);
			continue;
		}
		struct work *w;
		size_t n = collect(g, now, &w);
		pthread_mutex_unlock(&g->mu);
		bool check = false, fresh = false;
		for (size_t i = 0; i < n; i++) {
			check |= w[i].check;
			fresh |= w[i].fresh;
		}
		struct snap *s = check ? listing(g, fresh) : NULL;
		for (size_t i = 0; i < n; i++) {
			if (w[i].check)
				evaluate(g, &w[i], s, now_wall());
			if (w[i].why)
				fire(g, &w[i]);
			free(w[i].id);
			free(w[i].name);
		}
		if (s)
			snap_put(s);
		free(w);
		pthread_mutex_lock(&g->mu);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

void guards_listing(struct guards *g, const struct snap *s)
{
	(void)s; /* judged from the cache's held listing, this one or newer */
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	bool any = false;
	for (size_t i = 0; i < g->n; i++) {
		struct guard *x = g->v[i];
		if (!x->firing && (x->idle >= 0 || x->max_cost >= 0))
			any = x->dirty = true;
	}
	if (any)
		pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void guards_job_activity(void *arg, const char *pod_id)
{
	struct guards *g = arg;
	/* A node's jobs are keyed <pod id>-<n> (n > 0): the pod's guard. */
	size_t len = strlen(pod_id), d = len;
	while (d && isdigit((unsigned char)pod_id[d - 1]))
		d--;
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, pod_id);
	if (!x && d > 1 && d < len && pod_id[d - 1] == '-') {
		char *id = xstrndup(pod_id, d - 1);
		x = find(g, id);
		free(id);
	}
	if (x && x->idle >= 0 && !x->firing) {
		x->dirty = true;
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
}

/* ---- the interface ---- */

struct guards *guards_new(const struct guards_opts *o)
{
	struct guards *g = xcalloc(1, sizeof *g);
	g->o = *o;
	if (g->o.check_every < 1)
		g->o.check_every = 1;
	if (g->o.lease_grace < 0)
		g->o.lease_grace = 0;
	g->fd = -1;
	if (o->dir) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s/guards", o->dir);
		g->dir = buf_steal(&b);
		g->fd = o->dir_fd > 0 ? mkdir_p(o->dir_fd, "guards", false)
				      : mkdir_p(AT_FDCWD, g->dir, true);
		if (g->fd < 0) {
			plog("guard", g->dir,
			     "cannot keep guards here: %s; setting one fails",
			     strerror(-g->fd));
		} else
			load(g);
	}
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (g->n)
		plog("guard", "/", "%zu pod(s) with guards re-armed from %s",
		     g->n, g->dir);
	return g;
}

void guards_start(struct guards *g)
{
	if (g && !g->started && pthread_create(&g->thread, NULL, timer, g) == 0)
		g->started = true;
}

/* What is armed, for the warning at unmount (the journal keeps it under
 * systemd): "deadline 2026-...Z, idle 1800s, max_cost 25 USD, lease". */
static void describe(struct buf *b, const struct guard *x)
{
	const char *sep = "";
	if (x->deadline) {
		char iso[32];
		fmt_iso8601(iso, x->deadline);
		buf_printf(b, "deadline %s", iso);
		sep = ", ";
	}
	if (x->idle >= 0) {
		buf_printf(b, "%sidle %gs", sep, x->idle);
		sep = ", ";
	}
	if (x->max_cost >= 0) {
		buf_printf(b, "%smax_cost %g USD", sep, x->max_cost);
		sep = ", ";
	}
	if (x->lease)
		buf_printf(b, "%slease", sep);
}

void guards_free(struct guards *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	if (g->started)
		pthread_join(g->thread, NULL);
	struct buf names;
	buf_init(&names);
	size_t n = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct guard *x = g->v[i];
		if (armed(x)) {
			/* A lease still held is released by the unmount. */
			if (x->lease && x->holders) {
				x->holders = 0;
				x->released = time(NULL);
			}
			log_unsaved(g, x->id, save(g, x));
			buf_printf(&names, "%s%s", n++ ? ", " : "",
				   x->name ? x->name : x->id);
			buf_adds(&names, " (");
			describe(&names, x);
			buf_addc(&names, ')');
		}
		guard_free(x);
	}
	if (n) {
		plog("unmount", "/",
		     "warning: %zu pod(s) have armed guards (%s) that act only "
		     "while primefs is mounted; they fire at the next mount "
		     "with the same state directory",
		     n, names.data);
		fprintf(stderr,
			"primefs: warning: %zu pod(s) have armed guards (%s) "
			"that act only while primefs is mounted\n",
			n, names.data);
	}
	buf_free(&names);
	free(g->v);
	free(g->dir);
	if (g->fd >= 0)
		close(g->fd);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
}

static void trim(const char **s, size_t *len)
{
	while (*len && isspace((unsigned char)**s))
		(*s)++, (*len)--;
	while (*len && isspace((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* The value written to a guard file of kind k (trimmed; len 0: off):
 * NULL and *deadline (G_DEADLINE) or *d (G_IDLE, G_MAX_COST), or why it
 * is refused. */
static const char *parse_value(enum guard_kind k, const char *text, size_t len,
			       time_t now, time_t *deadline, double *d)
{
	char v[128];
	*deadline = 0;
	*d = -1;
	if (len >= sizeof v || memchr(text, '\0', len))
		return "too long";
	if (!len) /* off; a lease is not let go by a write */
		return NULL;
	memcpy(v, text, len);
	v[len] = '\0';
	switch (k) {
	case G_DEADLINE:
		*d = parse_duration(v);
		if (*d >= 0)
			*deadline = now + (time_t)ceil(*d);
		else if ((*deadline = parse_iso8601(v)) < 0)
			return "not a time: write a duration from now "
			       "(45s, 90m, +2h, 1d) or an ISO-8601 "
			       "time (2026-05-01T12:00:00Z)";
		else if (*deadline < now)
			return "that time has passed";
		return NULL;
	case G_IDLE:
		*d = parse_duration(v);
		return *d <= 0 ? "not a duration: write a positive number "
				 "with s, m, h or d (45s, 90m, 2h)"
			       : NULL;
	case G_MAX_COST: {
		char *end;
		*d = strtod(v, &end);
		return end == v || *end || !isfinite(*d) || *d < 0
			   ? "not an amount: write USD as a "
			     "non-negative number (5, 12.50)"
			   : NULL;
	}
	case G_LEASE:
	default:
		return "the lease is held by opening it for writing "
		       "(exec 9>lease), not by what is written";
	}
}

int guards_set(struct guards *g, const char *pod_id, const char *pod_name,
	       enum guard_kind k, const char *text, size_t len)
{
	trim(&text, &len);
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s/%s", pod_name, kind_names[k]);
	bool off = len == 0;
	time_t now = time(NULL);
	time_t deadline;
	double d;
	const char *bad = parse_value(k, text, len, now, &deadline, &d);
	if (bad) {
		plog("write", path.data, "refused: %s", bad);
		buf_free(&path);
		return -EINVAL;
	}
	pthread_mutex_lock(&g->mu);
	bool known = find(g, pod_id) != NULL;
	struct guard *x = find_or_add(g, pod_id, pod_name);
	struct guard was = *x; /* kept if the change cannot be saved */
	switch (k) {
	case G_DEADLINE:
		x->deadline = off ? 0 : deadline;
		break;
	case G_IDLE:
		x->idle = off ? -1 : d;
		if (!off)
			x->idle_since = now;
		break;
	case G_MAX_COST:
		x->max_cost = off ? -1 : d;
		x->cost_due = 0;
		break;
	default:
		break;
	}
	x->dirty = true;
	int rc = save(g, x);
	if (rc) {
		x->deadline = was.deadline;
		x->idle = was.idle;
		x->idle_since = was.idle_since;
		x->max_cost = was.max_cost;
	}
	if ((rc && !known) || (!armed(x) && !x->firing && !x->holders))
		drop(g, x);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	if (rc)
		plog("write", path.data,
		     "refused: the guard cannot be kept in %s: %s (it stays "
		     "as it was)",
		     g->dir, strerror(-rc));
	buf_free(&path);
	return rc;
}

void guards_arm(struct guards *g, const char *pod_id, const char *pod_name,
		double deadline_in, double idle, double max_cost)
{
	if (!g || (deadline_in < 0 && idle <= 0 && max_cost < 0))
		return;
	pthread_mutex_lock(&g->mu);
	struct guard *x = find_or_add(g, pod_id, pod_name);
	time_t now = time(NULL);
	if (deadline_in >= 0)
		x->deadline = now + (time_t)ceil(deadline_in);
	if (idle > 0) {
		x->idle = idle;
		x->idle_since = now;
	}
	if (max_cost >= 0)
		x->max_cost = max_cost;
	x->dirty = true;
	/* The pod is rented already: its guards act while mounted even if
	 * they cannot be kept for the next mount. */
	int rc = save(g, x);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	log_unsaved(g, pod_id, rc);
}

static void add_duration(struct buf *b, double s)
{
	if (s >= 3600 && fmod(s, 3600) == 0)
		buf_printf(b, "%.0fh", s / 3600);
	else if (s >= 60 && fmod(s, 60) == 0)
		buf_printf(b, "%.0fm", s / 60);
	else {
		fmt_number(b, s);
		buf_addc(b, 's');
	}
}

static void add_time(struct buf *b, time_t t)
{
	char iso[32];
	fmt_iso8601(iso, t);
	buf_adds(b, iso);
}

void guards_render(struct guards *g, const char *pod_id, enum guard_kind k,
		   struct buf *out)
{
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, pod_id);
	if (x) {
		switch (k) {
		case G_DEADLINE:
			if (x->deadline)
				add_time(out, x->deadline);
			break;
		case G_IDLE:
			if (x->idle >= 0)
				add_duration(out, x->idle);
			break;
		case G_MAX_COST:
			if (x->max_cost >= 0)
				fmt_number(out, x->max_cost);
			break;
		default:
			if (x->lease)
				buf_adds(out, x->holders ? "held" : "released");
			break;
		}
	}
	buf_addc(out, '\n');
	pthread_mutex_unlock(&g->mu);
}

void guards_list(struct guards *g, const char *pod_id, struct buf *out)
{
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, pod_id);
	if (x && x->firing) {
		buf_printf(out, "%s: fired, terminating; next try at ",
			   x->firing);
		add_time(out, x->retry_at);
		buf_addc(out, '\n');
	} else if (x) {
		if (x->deadline) {
			buf_adds(out, "deadline: terminates at ");
			add_time(out, x->deadline);
			buf_addc(out, '\n');
		}
		if (x->idle >= 0 && !x->seen_active) {
			buf_adds(out, "idle: terminates after ");
			add_duration(out, x->idle);
			buf_adds(out, " with no job running, counted from when "
				      "this mount first sees the pod ACTIVE, "
				      "INSTALL_FAILED or STOPPED (none has "
				      "yet)\n");
		} else if (x->idle >= 0 && x->running) {
			buf_adds(out, "idle: a job is running; terminates ");
			add_duration(out, x->idle);
			buf_adds(out, " after the last one ends\n");
		} else if (x->idle >= 0) {
			buf_adds(out, "idle: idle since ");
			add_time(out, x->idle_since);
			buf_adds(out, "; terminates at ");
			add_time(out, idle_due(x));
			buf_adds(out, " (after ");
			add_duration(out, x->idle);
			buf_adds(out, " with no job running)\n");
		}
		if (x->max_cost >= 0) {
			buf_adds(out,
				 "max_cost: terminates when cost reaches ");
			fmt_number(out, x->max_cost);
			buf_adds(out, " USD");
			if (x->cost_due > 0) {
				buf_adds(out, ", at ");
				add_time(out, (time_t)x->cost_due);
				buf_adds(out, " at the current price");
			}
			buf_addc(out, '\n');
		}
		if (x->lease && x->holders) {
			buf_printf(out,
				   "lease: held by %d open(s); terminates %g s "
				   "after the last one closes\n",
				   x->holders, g->o.lease_grace);
		} else if (x->lease) {
			buf_adds(out, "lease: released; terminates at ");
			add_time(out, lease_due(g, x));
			buf_adds(out, " unless it is held again\n");
		}
	}
	pthread_mutex_unlock(&g->mu);
}

void guards_lease_hold(struct guards *g, const char *pod_id,
		       const char *pod_name)
{
	pthread_mutex_lock(&g->mu);
	struct guard *x = find_or_add(g, pod_id, pod_name);
	bool first = !x->holders;
	x->holders++;
	x->lease = true;
	x->released = 0;
	int rc = first ? save(g, x) : 0;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	log_unsaved(g, pod_id, rc);
}

void guards_lease_release(struct guards *g, const char *pod_id)
{
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, pod_id);
	int rc = 0;
	/* Held on a placeholder that has settled since: the pod's now. */
	for (size_t i = 0; !x && i < g->n; i++)
		if (g->v[i]->was && !strcmp(g->v[i]->was, pod_id))
			x = g->v[i];
	if (x && x->holders && !--x->holders) {
		x->released = time(NULL);
		rc = save(g, x);
	}
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	log_unsaved(g, pod_id, rc);
}

void guards_forget(struct guards *g, const char *pod_id)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, pod_id);
	if (x) {
		unsave(g, pod_id);
		/* A lease still open keeps its entry (its holders release
		 * it), with nothing armed. */
		if (x->holders) {
			x->deadline = 0;
			x->idle = x->max_cost = -1;
			x->lease = false;
			x->firing = NULL;
		} else {
			drop(g, x);
		}
	}
	pthread_mutex_unlock(&g->mu);
}

void guards_rekey(struct guards *g, const char *from, const char *to)
{
	if (!g || !strcmp(from, to))
		return;
	pthread_mutex_lock(&g->mu);
	struct guard *x = find(g, from);
	if (x) {
		struct guard *y = find(g, to);
		if (y) {
			/* Re-keyed before a crash that left both: the pod's
			 * win; the placeholder's open leases move to it. */
			y->holders += x->holders;
			if (x->holders) {
				y->lease = true;
				y->released = 0;
				free(y->was);
				y->was = xstrdup(from);
			}
			drop(g, x);
		} else {
			free(x->id);
			x->id = xstrdup(to);
			free(x->was);
			x->was = xstrdup(from);
			if (x->firing) /* it fell due on the placeholder */
				x->retry_at = time(NULL);
			x->dirty = true;
			save(g, x); /* before the old file goes */
		}
		unsave(g, from);
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
}

void guards_doom(struct guards *g, const char *pod_id, const char *pod_name,
		 const char *why)
{
	pthread_mutex_lock(&g->mu);
	struct guard *x = find_or_add(g, pod_id, pod_name);
	time_t now = time(NULL);
	/* Kept as a deadline that has passed: a restart fires it too. */
	x->deadline = now;
	x->firing = why;
	x->retry_at = now;
	x->backoff = 0;
	save(g, x);
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}
