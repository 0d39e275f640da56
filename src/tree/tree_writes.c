/* tree_writes.c — what a write to the tree does: the guard files
 * (guards.h), config (the template, checked line by line) and ctl
 * (refresh); mkdir and rmdir (a pod rented or returned through
 * lifecycle.h, a named job made or removed). */
#include "tree_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guards.h"
#include "disk_life.h"
#include "jobs.h"
#include "lifecycle.h"
#include "log.h"
#include "podlog.h"
#include "template.h"

/* ---- guards (guards.h): the owner's, live pods only ---- */

static int render_guard(struct tree *t, const void *obj, enum guard_kind k,
			struct buf *out)
{
	if (t->o.guards)
		guards_render(t->o.guards, ((const struct pod *)obj)->id, k,
			      out);
	else
		buf_addc(out, '\n');
	return 0;
}

/* A write to a guard file of a pod that is listed (a pod gone meanwhile:
 * ENOENT). */
static int store_guard(struct tree *t, const char *pod_id, enum guard_kind k,
		       const char *data, size_t len)
{
	if (!t->o.guards || !pod_id)
		return -EACCES;
	/* The held listing (the file was just resolved from one): a guard
	 * write never waits for the API. */
	struct snap *s;
	int rc = cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s);
	if (rc == -ENOENT)
		rc = cache_get(t->o.cache, SNAP_PODS, CACHE_TTL, &s);
	if (rc)
		return rc;
	const struct pod *p = snap_pod(s, pod_id);
	char *name = p ? xstrdup(p->dir) : NULL;
	snap_put(s);
	if (!name) {
		plog("write", pod_id, "refused: pod %s is gone", pod_id);
		return -ENOENT;
	}
	rc = guards_set(t->o.guards, pod_id, name, k, data, len);
	tell_pod_dirs(t, "/pods", name, pod_id);
	free(name);
	return rc;
}

#define GUARD_FILE(r, w, k)                                                    \
	int r(struct tree *t, const void *obj, struct buf *out)                \
	{                                                                      \
		return render_guard(t, obj, k, out);                           \
	}                                                                      \
	int w(struct tree *t, const char *id, const char *d, size_t n)         \
	{                                                                      \
		return store_guard(t, id, k, d, n);                            \
	}

GUARD_FILE(r_deadline, w_deadline, G_DEADLINE)
GUARD_FILE(r_idle, w_idle, G_IDLE)
GUARD_FILE(r_max_cost, w_max_cost, G_MAX_COST)
GUARD_FILE(r_lease, w_lease, G_LEASE)

/* One line per armed guard; none: one empty line, as an empty list. */
int r_guards(struct tree *t, const void *obj, struct buf *out)
{
	size_t before = out->len;
	if (t->o.guards)
		guards_list(t->o.guards, ((const struct pod *)obj)->id, out);
	if (out->len == before)
		buf_addc(out, '\n');
	return 0;
}

void tree_lease(struct tree *t, const char *pod_id, bool hold)
{
	if (!t->o.guards)
		return;
	if (!hold) {
		guards_lease_release(t->o.guards, pod_id);
		return;
	}
	struct snap *s = NULL;
	const struct pod *p = NULL;
	if (cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s) == 0)
		p = snap_pod(s, pod_id);
	else
		s = NULL;
	guards_lease_hold(t->o.guards, pod_id, p ? p->dir : pod_id);
	if (s)
		snap_put(s);
}

int w_config(struct tree *t, const char *pod_id, const char *data, size_t len)
{
	(void)pod_id;
	int rc = template_store_replace(t->o.tmpl, data, len);
	tell(t, "/config", false);
	return rc;
}

/* A complete line that is bad alone fails the write() that wrote it. */
int c_config(struct tree *t, const char *data, size_t len, size_t from)
{
	struct buf err;
	buf_init(&err);
	int rc = template_check_lines(data, len, from, &err);
	if (rc)
		plog("config", t->o.tmpl->path,
		     "refused at write, the old template is kept: %s",
		     err.data);
	buf_free(&err);
	return rc;
}

/* The ctl file's commands, one per line. */
int w_ctl(struct tree *t, const char *pod_id, const char *data, size_t len)
{
	(void)pod_id;
	while (len) {
		size_t n = 0;
		while (n < len && data[n] != '\n' && data[n] != '\r')
			n++;
		const char *line = data;
		size_t ll = n;
		data += n < len ? n + 1 : n;
		len -= n < len ? n + 1 : n;
		while (ll && (line[ll - 1] == ' ' || line[ll - 1] == '\t'))
			ll--;
		while (ll && (*line == ' ' || *line == '\t'))
			line++, ll--;
		if (!ll)
			continue;
		if (ll == 7 && !memcmp(line, "refresh", 7)) {
			cache_refresh(t->o.cache);
			podlog_refresh(t->o.podlog);
			tree_changed_all(t);
			plog("ctl", "/ctl",
			     "refresh: every cached answer marked stale");
			continue;
		}
		plog("ctl", "/ctl", "unknown command '%.*s' (known: refresh)",
		     (int)(ll > 64 ? 64 : ll), line);
		return -EINVAL;
	}
	return 0;
}

/* mkdir jobs/<name> of a live pod: a named job, waiting for its cmd. */
static int mkdir_job(struct tree *t, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *parent = xstrndup(path, (size_t)(slash - path));
	struct node d;
	int rc = tree_resolve(t, parent, &d);
	free(parent);
	if (rc)
		return rc == -ENOENT ? -EPERM : rc;
	if (d.type != N_DIR || !jobs_dir(d.dir))
		rc = -EPERM;
	else if (d.dir == D_HJOBS || !t->o.jobs || !d.pod_id)
		rc = -EPERM; /* history is read-only */
	else if ((rc = jobs_create(t->o.jobs, d.pod_id, slash + 1)) == 0)
		tree_jobs_changed(t, d.pod_id, NULL);
	node_release(&d);
	return rc;
}

int tree_mkdir(struct tree *t, const char *path)
{
	static const char prefix[] = "/pods/";
	const char *name = path + sizeof prefix - 1;
	if (!strncmp(path, "/disks/", 7) && path[7] && !strchr(path + 7, '/'))
		return t->o.life ? disk_create(t->o.life, path + 7) : -EPERM;
	if (strncmp(path, prefix, sizeof prefix - 1) || strchr(name, '/')) {
		struct node n;
		int rc = tree_resolve(t, path, &n);
		node_release(&n);
		if (rc == 0)
			return -EEXIST;
		return rc == -ENOENT ? mkdir_job(t, path) : -EPERM;
	}
	if (!t->o.life)
		return -EPERM;
	return pod_create(t->o.life, name);
}

int tree_rmdir(struct tree *t, const char *path)
{
	struct node n;
	int rc = tree_resolve(t, path, &n);
	if (rc)
		return rc;
	if (n.type != N_DIR)
		rc = -ENOTDIR;
	else if (n.dir == D_JOB && t->o.jobs) {
		/* Kills the job if it runs and forgets it. */
		char *name = xstrdup(job_name(n.job));
		rc = jobs_remove(t->o.jobs, n.pod_id, name);
		if (rc == 0)
			tree_jobs_changed(t, n.pod_id, name);
		free(name);
	} else if (n.dir == D_DISK && t->o.life) {
		rc = disk_delete(t->o.life, strrchr(path, '/') + 1);
	} else if (n.dir != D_POD || !t->o.life)
		rc = -EPERM;
	else
		rc = pod_delete(t->o.life, strrchr(path, '/') + 1);
	node_release(&n);
	return rc;
}
