/* guards.h — pods that stop themselves (DESIGN.md, "Guards"): a deadline,
 * an idle limit, a cost limit and a lease per pod, kept one small file per
 * pod id in the state directory, and one timer thread that terminates a
 * pod when one of its guards falls due, retrying until the API confirms.
 * FUSE-free; the thread holds no lock across network I/O or logging. */
#ifndef PRIMEFS_GUARDS_H
#define PRIMEFS_GUARDS_H

#include "cache.h"
#include "util.h"

struct lifecycle;
struct jobs;

enum guard_kind { G_DEADLINE, G_IDLE, G_MAX_COST, G_LEASE, G_KINDS };

struct guards_opts {
	const char *dir;    /* the state directory: guards in DIR/guards/ */
	int dir_fd;	    /* > 0: dir, open and checked (statedir.h),
			       borrowed; else dir is opened by its path */
	double lease_grace; /* seconds a released lease waits to be retaken */
	/* Seconds between the checks that need a listing: an idle guard's
	 * until the pod is first seen billing, a max_cost guard's re-guess
	 * of its crossing. Idle, once counting, and a predicted crossing are
	 * timers of their own. */
	double check_every;
	struct cache *cache;	/* pods' status and cost */
	struct lifecycle *life; /* terminates (pod_terminate) */
	struct jobs *jobs;	/* for idle; may be NULL */
	/* The pod's cost at `now`, as its `cost` file says (cost_pod_at);
	 * without `fetch`, from what is held (no API call): 0, or -1. */
	int (*cost)(void *arg, const struct pod *p, bool fetch, time_t now,
		    double *out);
	void *cost_arg;
};

struct guards;

/* Reads the guards kept in the state directory. */
struct guards *guards_new(const struct guards_opts *o);
/* Starts the timer thread (after the daemon has forked): a guard that fell
 * due while unmounted fires at once. */
void guards_start(struct guards *g);
/* Stops the thread; with guards still armed, warns (log and stderr). */
void guards_free(struct guards *g);

/* A write to a pod's guard file: the whole new content. White space only
 * disarms. 0, or -EINVAL (logged, with the accepted forms), or the errno
 * of a change that cannot be kept in the state directory (ENOSPC: logged,
 * and the guard stays as it was). */
int guards_set(struct guards *g, const char *pod_id, const char *pod_name,
	       enum guard_kind k, const char *text, size_t len);
/* Arms a pod's guards from its template (mkdir): seconds from now, seconds,
 * USD; a negative value leaves that guard unarmed. */
void guards_arm(struct guards *g, const char *pod_id, const char *pod_name,
		double deadline_in, double idle, double max_cost);
/* A guard file's content (one line), and the `guards` list. */
void guards_render(struct guards *g, const char *pod_id, enum guard_kind k,
		   struct buf *out);
void guards_list(struct guards *g, const char *pod_id, struct buf *out);
/* The lease file opened for writing (held), and such a handle closed. */
void guards_lease_hold(struct guards *g, const char *pod_id,
		       const char *pod_name);
void guards_lease_release(struct guards *g, const char *pod_id);
/* A placeholder's guards (kept under its key, pending.h) become the pod's
 * with id `to`; a lease held on the placeholder is released by either. */
void guards_rekey(struct guards *g, const char *from, const char *to);
/* The pod is to be terminated now (`why`, a static string, names the
 * reason in `log`), retrying as a guard that fired; kept in the state
 * directory as a deadline passed. */
void guards_doom(struct guards *g, const char *pod_id, const char *pod_name,
		 const char *why);
/* A pods listing came (the cache's pods hook): idle and max_cost guards
 * look at it at once (a state or price change moves a predicted
 * crossing). Takes only the guards' own lock. */
void guards_listing(struct guards *g, const struct snap *s);
/* A job of the pod started or ended (jobs_set_activity_hook; arg is the
 * struct guards): its idle guard looks at once. */
void guards_job_activity(void *arg, const char *pod_id);
/* The pod is gone: its guards go with it. */
void guards_forget(struct guards *g, const char *pod_id);

#endif
