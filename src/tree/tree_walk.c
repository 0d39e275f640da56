/* tree_walk.c — from paths to nodes by the tables of tree.c: resolving,
 * listing, rendering and reading links. Listings come from the cache; a
 * path ending in a probed name is walked through what is held. */
#include "tree_int.h"

#include <errno.h>
#include <string.h>

#include "jobs.h"
#include "keyfiles.h"
#include "planfile.h"
#include "naming.h"
#include "podfiles.h"

/* From a jobs/ directory into its entry: `latest` (a link to the newest
 * job) or a job's directory. */
static int step_job(struct tree *t, struct node *n, const char *name)
{
	struct jobs *js = t->o.jobs;
	if (!js || !n->pod_id)
		return -ENOENT;
	bool latest = !strcmp(name, "latest");
	struct job *jb =
	    latest ? jobs_latest(js, n->pod_id) : jobs_get(js, n->pod_id, name);
	if (!jb)
		return -ENOENT;
	job_put(n->job);
	n->job = jb;
	if (latest) {
		n->type = N_LINK;
		return 0;
	}
	n->obj = jb;
	time_t when = job_started(jb);
	if (when)
		n->mtime = when;
	n->dir = dirs[n->dir].child;
	return 0;
}

/* Steps from directory n into its entry `name`; listings are taken from
 * the cache in `mode`, but a pod named in the held listing is taken from
 * it at once when `by_name` (CACHE_NOWAIT: a fetch starts behind it when
 * it is old or marked stale, so the next lookup sees what it brings). */
static int step(struct tree *t, struct node *n, const char *name,
		enum cache_mode mode, bool by_name)
{
	const struct dir_def *d = &dirs[n->dir];
	if (n->type != N_DIR)
		return -ENOTDIR;
	for (const struct subdir *sd = d->subdirs; sd->name; sd++)
		if (!strcmp(sd->name, name)) {
			if ((sd->kind == D_NODES || sd->kind == D_HNODES) &&
			    !nodes_shown(t, n))
				return -ENOENT;
			n->dir = sd->kind;
			return 0;
		}
	if (jobs_dir(n->dir))
		return step_job(t, n, name);
	if (n->dir == D_NODES || n->dir == D_HNODES)
		return nodes_step(t, n, name);
	if (n->dir == D_FILES)
		return step_files(t, n, name);
	if (n->dir == D_POD || n->dir == D_NODE) { /* fs, home: links */
		bool link;
		const char *root = podfiles_root_of(name, &link);
		if (root) {
			n->type = link ? N_LINK : N_DIR;
			n->dir = link ? D_POD : D_PODFS;
			n->obj = root;
			return 0;
		}
	}
	const struct file_def *f = find_file(d->files, n->dir, name);
	if (f) {
		n->type = N_FILE;
		n->file = f;
		/* What is held, however old, or nothing: a lookup or a
		 * listing never waits for the value (tree_render fetches it
		 * for a read). */
		struct snap *s;
		if (f->needs &&
		    cache_get(t->o.cache, (enum snap_kind)(f->needs - 1),
			      CACHE_HELD, &s) == 0) {
			node_release(n);
			n->snap = s;
			n->obj = s;
			n->mtime = s->fetched;
		}
		return 0;
	}
	if (n->dir == D_PLAN)
		return plan_step(n, name);
	if (d->listing < 0)
		return -ENOENT;
	/* Real names are safe and never start with '.', so a probe of a
	 * hidden name, or a name no listing could hold, is answered at once;
	 * other probes are answered from what is held. */
	if (name[0] == '.' || !safe_name(name))
		return -ENOENT;
	/* (A probed name is walked through what is held, and starts no
	 * fetch: CACHE_HELD is never loosened to CACHE_NOWAIT.) */
	if (!n->snap && by_name && mode != CACHE_HELD && n->dir == D_PODS &&
	    cache_get(t->o.cache, d->listing, CACHE_NOWAIT, &n->snap) == 0 &&
	    !snap_pod(n->snap, name)) {
		snap_put(n->snap);
		n->snap = NULL;
	}
	if (!n->snap) {
		int rc = cache_get(t->o.cache, d->listing, mode, &n->snap);
		if (rc)
			return rc;
		n->mtime = n->snap->fetched;
	}
	switch (n->dir) {
	case D_AVAIL:
		n->gtype = snap_type(n->snap, name);
		if (!n->gtype)
			return -ENOENT;
		break;
	case D_CHEAPEST:
		/* A link to the type's cheapest rentable offer. */
		n->gtype = snap_type(n->snap, name);
		if (!type_cheapest(n->gtype))
			return -ENOENT;
		n->type = N_LINK;
		return 0;
	case D_KEYS:
		return keys_step(t, n, name);
	case D_TYPE:
		n->obj = type_offer(n->gtype, name);
		if (!n->obj)
			return -ENOENT;
		break;
	case D_PODS:
	case D_HISTORY: {
		const struct pod *p = snap_pod(n->snap, name);
		if (!p)
			return -ENOENT;
		n->obj = p;
		if (p->disk) { /* a deleted disk: a disk's files, no jobs/ */
			n->dir = D_HDISK;
			return 0;
		}
		n->pod_id = p->id;
		if (!p->history && p->created_t >= 0)
			n->mtime = p->created_t;
		break;
	}
	case D_DISKS: { /* a disk, kept as a pod (disks.h); no pod_id */
		const struct pod *p = snap_pod(n->snap, name);
		if (!p)
			return -ENOENT;
		n->obj = p;
		if (p->created_t >= 0)
			n->mtime = p->created_t;
		break;
	}
	case D_DOFFERS: /* one type holds every disk offer */
		n->obj = snap_n_types(n->snap)
			     ? type_offer(snap_type_at(n->snap, 0), name)
			     : NULL;
		if (!n->obj)
			return -ENOENT;
		break;
	default:
		return -ENOENT;
	}
	n->dir = d->child;
	return 0;
}

/* Whether path is a pod's directory, /pods/NAME, or one of its guard
 * files, /pods/NAME/FILE: neither shows a value of the listing (a guard's
 * is the guards'), so the pod is resolved by its name in the held
 * listing, past a refresh too: a guard write never waits for the API
 * (DESIGN, "Freshness"). A pod's other files still wait for the fetch a
 * refresh asks for. */
static bool by_pod_name(const char *path)
{
	static const char prefix[] = "/pods/";
	if (strncmp(path, prefix, sizeof prefix - 1))
		return false;
	const char *file = strchr(path + sizeof prefix - 1, '/');
	if (!file || !file[1])
		return true;
	if (strchr(file + 1, '/'))
		return false;
	const struct file_def *f = find_file(pod_files, D_POD, file + 1);
	return f && f->store;
}

/* Whether the last component of path is a probed name. */
static bool probes_last(const char *path)
{
	size_t end = strlen(path);
	while (end && path[end - 1] == '/')
		end--;
	size_t start = end;
	while (start && path[start - 1] != '/')
		start--;
	char base[256];
	if (end == start || end - start >= sizeof base)
		return false;
	memcpy(base, path + start, end - start);
	base[end - start] = '\0';
	return probe_name(base);
}

int tree_resolve(struct tree *t, const char *path, struct node *n)
{
	memset(n, 0, sizeof *n);
	n->type = N_DIR;
	n->dir = D_ROOT;
	n->mtime = time(NULL);
	if (path[0] != '/')
		return -ENOENT;
	/* A path ending in a probed name is walked through what is held,
	 * parents included: a prompt probing .git in the pod it stands in
	 * must not refetch the listing that holds the pod. (A probed name in
	 * the middle has resolved, so it is a real entry.) */
	enum cache_mode mode = probes_last(path) ? CACHE_HELD : CACHE_TTL;
	bool by_name = by_pod_name(path);
	char name[256];
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		if (len >= sizeof name) {
			node_release(n);
			return -ENAMETOOLONG;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		p += len;
		if (n->type != N_DIR) {
			node_release(n);
			return -ENOTDIR;
		}
		int rc = step(t, n, name, mode, by_name);
		if (rc) {
			node_release(n);
			return rc;
		}
	}
	return 0;
}

int tree_resolve_dir(struct tree *t, const char *path, struct node *n)
{
	int rc = tree_resolve(t, path, n);
	if (rc)
		return rc;
	if (n->type != N_DIR) {
		node_release(n);
		return -ENOTDIR;
	}
	int kind = dirs[n->dir].listing;
	if (kind >= 0 && !n->snap &&
	    (rc = cache_get(t->o.cache, (enum snap_kind)kind, CACHE_TTL,
			    &n->snap)))
		node_release(n);
	return rc;
}

int tree_child(struct tree *t, const struct node *dir, const char *name,
	       struct node *out)
{
	*out = *dir;
	if (out->snap)
		snap_ref(out->snap);
	job_get(out->job);
	if (out->rel)
		out->rel = xstrdup(out->rel);
	int rc = step(t, out, name, CACHE_TTL, false);
	if (rc)
		node_release(out);
	return rc;
}

/* A pod's jobs, oldest first, then `latest` when there is one. */
static int list_jobs(struct tree *t, const struct node *n, add_fn add,
		     void *ctx)
{
	if (!t->o.jobs || !n->pod_id)
		return 0;
	if (jobs_list(t->o.jobs, n->pod_id, add, ctx))
		return 0; /* add said stop */
	struct job *latest = jobs_latest(t->o.jobs, n->pod_id);
	if (latest)
		add(ctx, "latest");
	job_put(latest);
	return 0;
}

int tree_list(struct tree *t, const struct node *n, add_fn add, void *ctx)
{
	(void)t;
	if (n->type != N_DIR)
		return -ENOTDIR;
	const struct dir_def *d = &dirs[n->dir];
	for (const struct subdir *sd = d->subdirs; sd->name; sd++)
		if (((sd->kind != D_NODES && sd->kind != D_HNODES) ||
		     nodes_shown(t, n)) &&
		    add(ctx, sd->name))
			return 0;
	for (const struct file_def *f = d->files; f->name; f++)
		if (file_in(f, n->dir) && add(ctx, f->name))
			return 0;
	if (jobs_dir(n->dir))
		return list_jobs(t, n, add, ctx);
	if (n->dir == D_NODES || n->dir == D_HNODES)
		return nodes_list(t, n, add, ctx);
	if (n->dir == D_FILES)
		return list_files(t, n, add, ctx);
	if (n->dir == D_POD || n->dir == D_NODE) /* .fs, .home: unlisted */
		for (size_t i = 0; podfiles_links[i]; i++)
			if (add(ctx, podfiles_links[i]))
				return 0;
	if (d->listing < 0)
		return 0;
	struct snap *s = n->snap;
	struct snap *own = NULL;
	if (!s) {
		int rc = cache_get(t->o.cache, d->listing, CACHE_TTL, &own);
		if (rc)
			return rc;
		s = own;
	}
	switch (n->dir) {
	case D_AVAIL:
		for (size_t i = 0; i < snap_n_types(s); i++)
			if (add(ctx, type_name(snap_type_at(s, i))))
				break;
		break;
	case D_CHEAPEST:
		for (size_t i = 0; i < snap_n_types(s); i++) {
			const struct gpu_type *g = snap_type_at(s, i);
			if (type_cheapest(g) && add(ctx, type_name(g)))
				break;
		}
		break;
	case D_KEYS:
		keys_list(s, add, ctx);
		break;
	case D_TYPE:
		for (size_t i = 0; i < type_n_offers(n->gtype); i++)
			if (add(ctx, type_offer_at(n->gtype, i)->name))
				break;
		break;
	case D_DOFFERS:
		for (size_t i = 0;
		     snap_n_types(s) && i < type_n_offers(snap_type_at(s, 0));
		     i++)
			if (add(ctx,
				type_offer_at(snap_type_at(s, 0), i)->name))
				break;
		break;
	default:
		for (size_t i = 0; i < snap_n_pods(s); i++)
			if (add(ctx, snap_pod_at(s, i)->dir))
				break;
		break;
	}
	if (own)
		snap_put(own);
	return 0;
}

int tree_render(struct tree *t, const struct node *n, struct buf *out)
{
	if (n->type != N_FILE)
		return -EISDIR;
	if (n->file->render == r_pod_offer)
		return pod_offer(t, n->snap, n->obj, CACHE_TTL, out);
	if (n->file->render == r_node_value)
		return nodes_render(t, n, out);
	if (n->file->needs) { /* read: as fresh as the freshness window */
		struct snap *s;
		int rc =
		    cache_get(t->o.cache, (enum snap_kind)(n->file->needs - 1),
			      CACHE_TTL, &s);
		if (rc)
			return rc;
		rc = n->file->render(t, s, out);
		snap_put(s);
		return rc;
	}
	return n->file->render ? n->file->render(t, n->obj, out) : 0;
}

int tree_render_held(struct tree *t, const struct node *n, struct buf *out)
{
	if (n->type != N_FILE)
		return -EISDIR;
	if (n->file->needs)
		return n->obj ? n->file->render(t, n->obj, out) : -EAGAIN;
	/* Pods' files that need another listing than their pod's. */
	if (n->file->render == r_pod_offer)
		return pod_offer(t, n->snap, n->obj, CACHE_HELD, out);
	if (n->file->render == r_pod_cost &&
	    !((const struct pod *)n->obj)->history) {
		struct snap *w;
		if (cache_get(t->o.cache, SNAP_WALLET, CACHE_HELD, &w))
			return -EAGAIN;
		snap_put(w);
	}
	/* budget: the wallet (spent_24h), pods and disks (the burn rate). */
	static const enum snap_kind budget_needs[] = {SNAP_WALLET, SNAP_PODS,
						      SNAP_DISKS};
	for (size_t k = 0; n->file->render == r_budget && k < 3; k++) {
		struct snap *w;
		if (cache_get(t->o.cache, budget_needs[k], CACHE_HELD, &w))
			return -EAGAIN;
		snap_put(w);
	}
	return tree_render(t, n, out);
}

int tree_readlink(struct tree *t, const struct node *n, struct buf *out)
{
	(void)t;
	if (n->type != N_LINK)
		return -EINVAL;
	if (n->dir == D_KEYS)
		return keys_readlink(n, out);
	if (n->dir == D_POD || n->dir == D_NODE) { /* fs -> .fs etc. */
		buf_adds(out, n->obj);
		return 0;
	}
	if (jobs_dir(n->dir)) { /* jobs/latest, relative: `latest -> 3` */
		buf_adds(out, job_name(n->job));
		return 0;
	}
	buf_printf(out, "../availability/%s/%s", type_name(n->gtype),
		   type_cheapest(n->gtype)->name);
	return 0;
}
