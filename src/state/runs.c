/* runs.c — see runs.h. The registry's mutex guards the table only; waiting
 * for readiness and starting a command happen without it. */
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
	pthread_mutex_init(&r->mu, NULL);
}

void runs_destroy(struct runs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].pod_id);
		ssh_cmd_put(r->v[i].cmd);
	}
	free(r->v);
	pthread_mutex_destroy(&r->mu);
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
	if (rc == 0) {
		pthread_mutex_lock(&r->mu);
		size_t i;
		for (i = 0; i < r->n; i++)
			if (!strcmp(r->v[i].pod_id, pod_id))
				break;
		if (i == r->n) {
			r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
			r->v[i].pod_id = xstrdup(pod_id);
			r->v[i].cmd = NULL;
			r->n++;
		}
		struct ssh_cmd *old = r->v[i].cmd;
		r->v[i].cmd = ssh_cmd_get(*out);
		pthread_mutex_unlock(&r->mu);
		if (old)
			ssh_cmd_put(old);
	}
	free(conn);
	buf_free(&path);
	return rc;
}

struct ssh_cmd *runs_newest(struct runs *r, const char *pod_id)
{
	struct ssh_cmd *c = NULL;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].pod_id, pod_id)) {
			c = ssh_cmd_get(r->v[i].cmd);
			break;
		}
	pthread_mutex_unlock(&r->mu);
	return c;
}

static bool listed(void *arg, const char *pod_id)
{
	const struct pod *p = snap_pod(arg, pod_id);
	return p && !strcmp(p->id, pod_id);
}

void runs_prune(struct runs *r, const struct snap *pods)
{
	if (pods->kind != SNAP_PODS || !pods->pods.n)
		return;
	pthread_mutex_lock(&r->mu);
	struct ssh_cmd **drop = xmalloc((r->n + 1) * sizeof *drop);
	size_t n = 0;
	for (size_t i = 0; i < r->n;)
		if (!listed((void *)pods, r->v[i].pod_id)) {
			free(r->v[i].pod_id);
			drop[n++] = r->v[i].cmd;
			r->v[i] = r->v[--r->n];
		} else {
			i++;
		}
	pthread_mutex_unlock(&r->mu);
	for (size_t i = 0; i < n; i++)
		ssh_cmd_put(drop[i]);
	free(drop);
	ssh_pool_prune(r->pool, listed, (void *)pods);
}

void runs_forget(struct runs *r, const char *pod_id)
{
	struct ssh_cmd *c = NULL;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].pod_id, pod_id)) {
			free(r->v[i].pod_id);
			c = r->v[i].cmd;
			r->v[i] = r->v[--r->n];
			break;
		}
	pthread_mutex_unlock(&r->mu);
	if (c)
		ssh_cmd_put(c);
	ssh_pool_forget(r->pool, pod_id);
}
