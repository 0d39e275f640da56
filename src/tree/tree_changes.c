/* tree_changes.c — which paths a change touches: a listing replaced (the
 * pods, history and offers diffed), a job made or removed, refresh; told
 * to whoever keeps copies of what the tree shows (tree_set_changed: the
 * FUSE layer's invalidation, fs_inval.c). */
#include "tree_int.h"

#include "keyfiles.h"

#include <stdio.h>
#include <string.h>

#include "naming.h"

/* ---- kernel caching: which paths a change touches ---- */

void tell(struct tree *t, const char *path, bool gone)
{
	if (t->changed)
		t->changed(t->changed_arg, path, gone);
}

/* A pod directory and each of its files, under one name. */
static void tell_pod_name(struct tree *t, const char *top, enum dir_kind dk,
			  const char *name, bool gone)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s/%s", top, name);
	tell(t, b.data, gone);
	size_t len = b.len;
	for (const struct file_def *f = pod_files; f->name; f++) {
		if (!file_in(f, dk))
			continue;
		b.len = len;
		buf_printf(&b, "/%s", f->name);
		tell(t, b.data, gone);
	}
	buf_free(&b);
}

/* A pod answers to its directory name and to its id. */
static void tell_pod(struct tree *t, const char *top, enum dir_kind dk,
		     const struct pod *p, bool gone)
{
	tell_pod_name(t, top, dk, p->dir, gone);
	if (strcmp(p->id, p->dir))
		tell_pod_name(t, top, dk, p->id, gone);
}

void tell_pod_dirs(struct tree *t, const char *top, const char *dir,
		   const char *id)
{
	tell_pod_name(t, top, D_POD, dir, false);
	if (id && strcmp(id, dir))
		tell_pod_name(t, top, D_POD, id, false);
}

/* jobs/, jobs/latest and jobs/<gone> of a pod, under one of its names. */
static void tell_jobs_name(struct tree *t, const char *name, const char *gone)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "/pods/%s/jobs", name);
	tell(t, b.data, false);
	size_t len = b.len;
	buf_adds(&b, "/latest");
	tell(t, b.data, false);
	if (gone) {
		b.len = len;
		buf_printf(&b, "/%s", gone);
		tell(t, b.data, true);
	}
	buf_free(&b);
}

void tree_jobs_changed(struct tree *t, const char *pod_id, const char *gone)
{
	if (!t->changed || !pod_id)
		return;
	atomic_fetch_add(&t->generation, 1);
	struct snap *s = NULL;
	const struct pod *p = NULL;
	if (cache_get(t->o.cache, SNAP_PODS, CACHE_HELD, &s) == 0)
		p = snap_pod_id(s, pod_id);
	else
		s = NULL;
	if (p && strcmp(p->dir, pod_id))
		tell_jobs_name(t, p->dir, gone);
	tell_jobs_name(t, pod_id, gone);
	if (s)
		snap_put(s);
}

static void diff_pods(struct tree *t, const struct snap *old,
		      const struct snap *fresh)
{
	bool hist = fresh->kind == SNAP_HISTORY;
	const char *top = hist ? "/history" : "/pods";
	enum dir_kind dk = hist ? D_HIST : D_POD;
	for (size_t i = 0; i < snap_n_pods(old); i++) {
		const struct pod *a = snap_pod_at(old, i);
		const struct pod *b = snap_pod_id(fresh, a->id);
		if (!b)
			tell_pod(t, top, dk, a, true);
		else if (strcmp(a->dir, b->dir))
			tell_pod(t, top, dk, a, true); /* renamed */
		else if (strcmp(a->json ? a->json : "", b->json ? b->json : ""))
			tell_pod(t, top, dk, a, false);
	}
	/* New pods: a name may have meant another pod before (by name or by
	 * id), so their paths are told too. */
	for (size_t i = 0; i < snap_n_pods(fresh); i++) {
		const struct pod *b = snap_pod_at(fresh, i);
		const struct pod *a = old ? snap_pod_id(old, b->id) : NULL;
		if (!a || strcmp(a->dir, b->dir))
			tell_pod(t, top, dk, b, false);
	}
}

static void tell_offer(struct tree *t, const char *type, const char *offer,
		       bool gone)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "/availability/%s/%s", type, offer);
	tell(t, b.data, gone);
	size_t len = b.len;
	for (const struct file_def *f = offer_files; f->name; f++) {
		b.len = len;
		buf_printf(&b, "/%s", f->name);
		tell(t, b.data, gone);
	}
	buf_free(&b);
}

static void diff_offers(struct tree *t, const struct snap *old,
			const struct snap *fresh)
{
	struct buf b;
	buf_init(&b);
	for (size_t i = 0; i < snap_n_types(old); i++) {
		const struct gpu_type *g = snap_type_at(old, i);
		const char *name = type_name(g);
		const struct gpu_type *h = snap_type(fresh, name);
		buf_reset(&b);
		buf_printf(&b, "/availability/%s", name);
		if (!h)
			tell(t, b.data, true);
		for (size_t j = 0; j < type_n_offers(g); j++) {
			const struct offer *o = type_offer_at(g, j);
			const struct offer *n =
			    h ? type_offer(h, o->name) : NULL;
			if (!n)
				tell_offer(t, name, o->name, true);
			else if (!offer_json_same(o, n))
				tell_offer(t, name, o->name, false);
		}
		const struct offer *cw = type_cheapest(g),
				   *ci = type_cheapest(h);
		const char *was = cw ? cw->name : "";
		const char *is = ci ? ci->name : "";
		if (strcmp(was, is)) {
			buf_reset(&b);
			buf_printf(&b, "/%s/%s", CHEAPEST_NAME, name);
			tell(t, b.data, !*is);
		}
	}
	buf_free(&b);
}

/* disks/ or disk_offers/: each entry of either snapshot, and the
 * directory itself (few entries: no diff). */
static void tell_disks(struct tree *t, const struct snap *old,
		       const struct snap *fresh)
{
	bool disks = fresh->kind == SNAP_DISKS;
	const char *top = disks ? "/disks" : "/disk_offers";
	const struct file_def *files = disks ? disk_files : doffer_files;
	const struct snap *both[2] = {old, fresh};
	struct buf b;
	buf_init(&b);
	tell(t, top, false);
	for (int k = 0; k < 2; k++) {
		const struct snap *s = both[k];
		size_t n = !s		     ? 0
			   : disks	     ? snap_n_pods(s)
			   : snap_n_types(s) ? type_n_offers(snap_type_at(s, 0))
					     : 0;
		for (size_t i = 0; i < n; i++) {
			const char *name =
			    disks ? snap_pod_at(s, i)->dir
				  : type_offer_at(snap_type_at(s, 0), i)->name;
			buf_reset(&b);
			buf_printf(&b, "%s/%s", top, name);
			tell(t, b.data, k == 0);
			size_t len = b.len;
			for (const struct file_def *f = files; f->name; f++) {
				b.len = len;
				buf_printf(&b, "/%s", f->name);
				tell(t, b.data, k == 0);
			}
		}
	}
	buf_free(&b);
}

static void on_replace(void *arg, const struct snap *old,
		       const struct snap *fresh)
{
	struct tree *t = arg;
	atomic_fetch_add(&t->generation, 1);
	switch (fresh->kind) {
	case SNAP_OFFERS:
		diff_offers(t, old, fresh);
		break;
	case SNAP_PODS:
	case SNAP_HISTORY:
		diff_pods(t, old, fresh);
		break;
	case SNAP_KEYS:
		keys_changed(t);
		break;
	case SNAP_DISKS:
	case SNAP_DISK_OFFERS:
		tell_disks(t, old, fresh);
		break;
	default:
		tell(t, "/balance", false);
		break;
	}
}

void tree_set_changed(struct tree *t, tree_changed_fn fn, void *arg)
{
	t->changed = fn;
	t->changed_arg = arg;
	cache_set_replace_hook(t->o.cache, fn ? on_replace : NULL, t);
}

unsigned long tree_generation(struct tree *t)
{
	return atomic_load(&t->generation);
}

void tree_changed_all(struct tree *t)
{
	if (!t->changed)
		return;
	atomic_fetch_add(&t->generation, 1);
	static const char *const tops[] = {"/availability", ("/" CHEAPEST_NAME),
					   "/pods",	    "/history",
					   "/ssh_keys",	    "/disks",
					   "/disk_offers"};
	for (size_t i = 0; i < sizeof tops / sizeof *tops; i++)
		tell(t, tops[i], true);
	for (const struct file_def *f = root_files; f->name; f++) {
		char path[64];
		snprintf(path, sizeof path, "/%s", f->name);
		tell(t, path, false);
	}
	for (int k = 0; k < SNAP_KINDS; k++) {
		struct snap *s;
		if (k == SNAP_WALLET || k == SNAP_KEYS || k == SNAP_DISKS ||
		    k == SNAP_DISK_OFFERS ||
		    cache_get(t->o.cache, (enum snap_kind)k, CACHE_HELD, &s))
			continue;
		if (k == SNAP_OFFERS) {
			/* Every name as gone: an empty listing as the new. */
			diff_offers(t, s, NULL);
		} else {
			bool hist = k == SNAP_HISTORY;
			for (size_t i = 0; i < snap_n_pods(s); i++)
				tell_pod(t, hist ? "/history" : "/pods",
					 hist ? D_HIST : D_POD,
					 snap_pod_at(s, i), true);
		}
		snap_put(s);
	}
}
