/* runs.c — see runs.h. Nothing here is shared but the cache and the pool,
 * which lock for themselves. */
#include "runs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void runs_init(struct runs *r, struct cache *cache, struct ssh_pool *pool,
	       double ready_timeout)
{
	memset(r, 0, sizeof *r);
	r->cache = cache;
	r->pool = pool;
	r->ready_timeout = ready_timeout;
	r->poll_interval = 2;
}

void runs_destroy(struct runs *r)
{
	(void)r;
}

static bool starting(const char *status)
{
	return status &&
	       (!strcmp(status, "PENDING") || !strcmp(status, "PROVISIONING") ||
		!strcmp(status, "INSTALLING") || !strcmp(status, "ACTIVE"));
}

/* 0 if the pod with this id is ready or may still become so; -ENOTCONN
 * (with a log line) if it never will. */
static int never_ready(struct runs *r, const char *pod_id, const char *path,
		       int mode)
{
	struct snap *s;
	int rc = cache_get(r->cache, SNAP_PODS, mode, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pod_id);
	const char *status = p ? pod_status(p) : NULL;
	if (p && (pod_ready(p) || starting(status))) {
		snap_put(s);
		return 0;
	}
	plog("run", path, "the pod is %s, not running: nothing was sent",
	     p ? (status ? status : "unknown") : "gone");
	snap_put(s);
	return -ENOTCONN;
}

int runs_check(struct runs *r, const char *pod_id)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s/run", pod_id);
	int rc = never_ready(r, pod_id, path.data, CACHE_TTL);
	buf_free(&path);
	return rc;
}

/* The pod's SSH connection once it is ready: node 0 of a multi-node pod. */
static int wait_ready(struct runs *r, const char *pod_id, const char *path,
		      bool (*interrupted)(void *), void *arg, char **conn)
{
	double deadline = now_monotonic() + r->ready_timeout;
	bool waited = false;
	for (int round = 0;; round++) {
		struct snap *s;
		int rc = cache_get(r->cache, SNAP_PODS,
				   round ? CACHE_FRESH : CACHE_TTL, &s);
		if (rc)
			return rc;
		const struct pod *p = snap_pod(s, pod_id);
		const char *status = p ? pod_status(p) : NULL;
		if (p && pod_ready(p)) {
			*conn = xstrdup(p->ssh.v[0]);
			snap_put(s);
			if (waited)
				plog("run", path, "the pod is ready");
			return 0;
		}
		char state[64];
		snprintf(state, sizeof state, "%s",
			 p ? (status ? status : "unknown") : "gone");
		snap_put(s);
		if (!p || !starting(status)) {
			plog("run", path,
			     "the pod is %s, not running: nothing was sent",
			     state);
			return -ENOTCONN;
		}
		if (now_monotonic() >= deadline) {
			plog("run", path,
			     "the pod is still %s after %.0f s (ready_timeout)",
			     state, r->ready_timeout);
			return -ENOTCONN;
		}
		if (!waited)
			plog("run", path,
			     "waiting for the pod (%s) to be ready", state);
		waited = true;
		for (double t = 0; t < r->poll_interval; t += 0.1) {
			if (interrupted && interrupted(arg)) {
				plog("run", path, "interrupted while waiting");
				return -EINTR;
			}
			sleep_seconds(0.1);
		}
	}
}

int runs_start(struct runs *r, const char *pod_id, const char *script,
	       size_t len, int out_fd, bool (*interrupted)(void *arg),
	       void *arg, struct ssh_cmd **out)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s/run", pod_id);
	if (len > RUNS_MAX_SCRIPT) {
		plog("run", path.data,
		     "the script is %zu bytes, over the limit of %zu: nothing "
		     "was sent",
		     len, RUNS_MAX_SCRIPT);
		buf_free(&path);
		return -E2BIG;
	}
	char *conn = NULL;
	int rc = wait_ready(r, pod_id, path.data, interrupted, arg, &conn);
	if (rc == 0)
		rc = ssh_run_script(r->pool, pod_id, conn, script, len, out_fd,
				    interrupted, arg, out);
	free(conn);
	buf_free(&path);
	return rc;
}

int runs_wait(struct runs *r, const char *pod_id, const char *path,
	      bool (*interrupted)(void *arg), void *arg, char **conn)
{
	*conn = NULL;
	return wait_ready(r, pod_id, path, interrupted, arg, conn);
}
