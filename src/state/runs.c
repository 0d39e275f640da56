/* runs.c — see runs.h. Nothing here is shared but the cache, the pool and
 * the status poller, which lock for themselves. */
#include "runs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nodes.h"

void runs_init(struct runs *r, struct cache *cache, struct api *api,
	       struct ssh_pool *pool, double ready_timeout)
{
	memset(r, 0, sizeof *r);
	r->cache = cache;
	r->status = podwait_new(api);
	r->pool = pool;
	r->ready_timeout = ready_timeout;
}

void runs_destroy(struct runs *r)
{
	podwait_free(r->status);
	r->status = NULL;
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
	char *id = nodes_pod_id(r->cache, pod_id); /* a node's: its pod's */
	int rc = never_ready(r, id, path.data, CACHE_TTL);
	free(id);
	buf_free(&path);
	return rc;
}

/* What a pod's status says for a waiter: 1 ready (*conn set: node 0 of a
 * multi-node pod), 0 still starting (its state in `state`), -ENOTCONN
 * never (logged). */
static int judge(const struct pod *p, const char *path, char **conn,
		 char *state, size_t size)
{
	const char *status = p ? pod_status(p) : NULL;
	if (p && pod_ready(p)) {
		*conn = xstrdup(p->ssh.v[0]);
		return 1;
	}
	snprintf(state, size, "%s", p ? (status ? status : "unknown") : "gone");
	if (!p || !starting(status)) {
		plog("run", path,
		     "the pod is %s, not running: nothing was sent", state);
		return -ENOTCONN;
	}
	return 0;
}

/* What the held listing (TTL) says of the pod: judge()'s answer, with the
 * pod's API id in *id (replaced) while it is starting. */
static int judge_listed(struct runs *r, const char *pod_id, const char *path,
			char **conn, char *state, size_t size, char **id)
{
	struct snap *s;
	int rc = cache_get(r->cache, SNAP_PODS, CACHE_TTL, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pod_id);
	rc = judge(p, path, conn, state, size);
	if (rc == 0) {
		free(*id);
		*id = xstrdup(p->id);
	}
	snap_put(s);
	return rc;
}

/* The pod's SSH connection once it is ready. What the listing holds comes
 * first (a pod ready, or never to be, costs no call); then its status,
 * polled for every waiter at once (podwait.h), not a listing per waiter;
 * a pod the status call does not name is judged by the listing again. */
static int wait_ready(struct runs *r, const char *pod_id, const char *path,
		      bool (*interrupted)(void *), void *arg, char **conn)
{
	double deadline = now_monotonic() + r->ready_timeout;
	char state[64], *id = NULL;
	int rc = judge_listed(r, pod_id, path, conn, state, sizeof state, &id);
	if (rc)
		return rc < 0 ? rc : 0;
	plog("run", path, "waiting for the pod (%s) to be ready", state);
	unsigned long seen = 0;
	for (;;) {
		struct pod st;
		rc = podwait_next(r->status, id, &seen, deadline, interrupted,
				  arg, &st);
		if (rc == 0 && st.id)
			rc = judge(&st, path, conn, state, sizeof state);
		else if (rc == 0)
			rc = judge_listed(r, pod_id, path, conn, state,
					  sizeof state, &id);
		pod_free(&st);
		if (rc == 1) {
			plog("run", path, "the pod is ready");
			rc = 0;
			break;
		}
		if (rc == -ETIMEDOUT) {
			plog("run", path,
			     "the pod is still %s after %.0f s (ready_timeout)",
			     state, r->ready_timeout);
			rc = -ENOTCONN;
		} else if (rc == -EINTR) {
			plog("run", path, "interrupted while waiting");
		}
		if (rc)
			break;
	}
	free(id);
	return rc;
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
	/* pod_id may be a node key (nodes.h): the pod is waited for, then
	 * the node's connection taken, and a multi-node pod's environment
	 * prepended to the script. */
	char *id = nodes_pod_id(r->cache, pod_id);
	struct buf env;
	buf_init(&env);
	int rc = wait_ready(r, id, path.data, interrupted, arg, &conn);
	if (rc == 0)
		rc = nodes_conn(r->cache, pod_id, path.data, &conn, &env);
	if (rc == 0 && env.len) {
		buf_add(&env, script, len);
		script = env.data;
		len = env.len;
	}
	if (rc == 0)
		rc = ssh_run_script(r->pool, pod_id, conn, script, len, out_fd,
				    interrupted, arg, out);
	buf_free(&env);
	free(id);
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
