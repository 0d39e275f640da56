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
	const char *dir;     /* the state directory: guards in DIR/guards/ */
	int dir_fd;	     /* > 0: dir, open and checked (statedir.h),
				borrowed; else dir is opened by its path */
	double lease_grace;  /* seconds a released lease waits to be retaken */
	double check_every;  /* seconds between idle and cost checks */
	struct cache *cache; /* pods' status and cost */
	struct lifecycle *life; /* terminates (pod_terminate) */
	struct jobs *jobs;	/* for idle; may be NULL */
	/* The pod's cost now, as its `cost` file says: 0, or -1 unknown. */
	int (*cost)(void *arg, const struct pod *p, double *out);
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
/* The pod is gone: its guards go with it. */
void guards_forget(struct guards *g, const char *pod_id);

#endif
