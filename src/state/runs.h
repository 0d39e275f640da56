/* runs.h — starting commands on pods, after waiting for a pod that is
 * still starting to become ready (its status polled with every other
 * waiter's, podwait.h). Which command is a pod's newest is the
 * job store's (jobs.h). FUSE-free; the caller says how to tell that the
 * user gave up (Ctrl-C). */
#ifndef PRIMEFS_RUNS_H
#define PRIMEFS_RUNS_H

#include <pthread.h>

#include "cache.h"
#include "podwait.h"
#include "ssh.h"

struct runs {
	struct cache *cache;
	struct podwait *status; /* the starting pods' status, polled */
	struct ssh_pool *pool;
	double ready_timeout; /* seconds to wait for a starting pod */
};

void runs_init(struct runs *r, struct cache *cache, struct api *api,
	       struct ssh_pool *pool, double ready_timeout);
void runs_destroy(struct runs *r);

/* Scripts longer than this are refused (E2BIG) before anything is sent. */
#define RUNS_MAX_SCRIPT ((size_t)1 << 20)

/* Runs a script (len bytes, see ssh_run_script; out_fd the output file
 * or -1) on the pod with this id as one job; returns once it has started:
 * 0 and a referenced *out, or -errno with a line in `log`:
 * ENOTCONN (the pod is not running, or did not become ready in time),
 * EHOSTUNREACH, EACCES, EINTR (interrupted(arg) said so), ENOENT, E2BIG
 * (over RUNS_MAX_SCRIPT: nothing sent). */
int runs_start(struct runs *r, const char *pod_id, const char *script,
	       size_t len, int out_fd, bool (*interrupted)(void *arg),
	       void *arg, struct ssh_cmd **out);
/* Without waiting: -ENOTCONN (logged as runs_start does) if the pod will
 * never run a job (ERROR, INSTALL_FAILED, STOPPED, gone), else 0 — so that
 * the first write of a job fails at once, where a shell reports it. */
int runs_check(struct runs *r, const char *pod_id);

/* Waits as runs_start does for the pod with this id to be ready (path
 * names the file in log lines): 0 and *conn (malloc'd) its SSH connection,
 * or -errno: ENOTCONN (it will never run, or did not in time), EINTR. */
int runs_wait(struct runs *r, const char *pod_id, const char *path,
	      bool (*interrupted)(void *arg), void *arg, char **conn);

#endif
