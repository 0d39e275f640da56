/* disk_life.c — see disk_life.h. */
#include "disk_life.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "burn.h"
#include "disks.h"
#include "log.h"

/* Names whose disk mkdir is under way (no lock is held across the
 * request): a second mkdir of one of them is EEXIST. */
#define DISK_CREATING_MAX 16
static pthread_mutex_t creating_mu = PTHREAD_MUTEX_INITIALIZER;
static char *creating[DISK_CREATING_MAX];

/* 0, or -EEXIST (that name is under way) or -EAGAIN (too many at once). */
static int claim(const char *name)
{
	int rc = -EAGAIN;
	pthread_mutex_lock(&creating_mu);
	for (size_t i = 0; i < DISK_CREATING_MAX; i++)
		if (creating[i] && !strcmp(creating[i], name)) {
			pthread_mutex_unlock(&creating_mu);
			return -EEXIST;
		}
	for (size_t i = 0; i < DISK_CREATING_MAX && rc; i++)
		if (!creating[i]) {
			creating[i] = xstrdup(name);
			rc = 0;
		}
	pthread_mutex_unlock(&creating_mu);
	return rc;
}

static void unclaim(const char *name)
{
	pthread_mutex_lock(&creating_mu);
	for (size_t i = 0; i < DISK_CREATING_MAX; i++)
		if (creating[i] && !strcmp(creating[i], name)) {
			free(creating[i]);
			creating[i] = NULL;
			break;
		}
	pthread_mutex_unlock(&creating_mu);
}

/* The offer a new disk is made from, or NULL with the reason in why. */
static const struct offer *choose_disk_offer(const struct snap *s,
					     const char *want, const char *dc,
					     const char *country, long size,
					     struct buf *why)
{
	const struct gpu_type *g = snap_n_types(s) ? snap_type_at(s, 0) : NULL;
	size_t n = g ? type_n_offers(g) : 0;
	if (want) {
		const struct offer *o = g ? type_offer(g, want) : NULL;
		if (!o)
			buf_printf(why,
				   "disk.offer = %s is not in disk_offers/",
				   want);
		else if (!offer_in_stock(o))
			buf_printf(why, "disk.offer = %s is not in stock",
				   want);
		else if (o->disk.max.set && o->disk.max.d < (double)size)
			buf_printf(why, "disk.offer = %s takes at most %g GB",
				   want, o->disk.max.d);
		else
			return o;
		return NULL;
	}
	const struct offer *best = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct offer *o = type_offer_at(g, i);
		if (!offer_in_stock(o) || !o->price.set ||
		    (o->disk.max.set && o->disk.max.d < (double)size) ||
		    (dc && (!o->data_center || strcmp(dc, o->data_center))) ||
		    (country && (!o->country || strcmp(country, o->country))))
			continue;
		if (!best || o->price.d < best->price.d)
			best = o;
	}
	if (!best)
		buf_printf(why, "no disk offer in stock takes %ld GB%s%s%s%s",
			   size, dc ? " in data center " : "", dc ? dc : "",
			   country ? " in country " : "",
			   country ? country : "");
	return best;
}

static char *top_value(struct lifecycle *l, const char *key)
{
	struct buf v;
	buf_init(&v);
	if (template_store_get(l->tmpl, NULL, key, &v))
		return buf_steal(&v);
	buf_free(&v);
	return NULL;
}

int disk_create(struct lifecycle *l, const char *name)
{
	struct buf path, why;
	buf_init(&path);
	buf_init(&why);
	buf_printf(&path, "/disks/%s", name);
	if (!safe_name(name) || name[0] == '.') {
		plog("mkdir", path.data,
		     "refused: disk names are [A-Za-z0-9._-] only, not "
		     "starting with '.' (nothing was made)");
		buf_free(&path);
		return -EINVAL;
	}
	char *size_s = top_value(l, "disk.size");
	char *want = top_value(l, "disk.offer");
	char *dc = top_value(l, "disk.data_center");
	char *country = top_value(l, "disk.country");
	struct snap *disks = NULL, *offers = NULL;
	char what[300];
	snprintf(what, sizeof what, "disks/%s", name);
	int rc = claim(name);
	if (rc) {
		plog("mkdir", path.data, "a mkdir of disk %s is under way",
		     name);
		goto done;
	}
	long size = size_s ? strtol(size_s, NULL, 10) : 0;
	const struct offer *o = NULL;
	if (size <= 0) {
		plog("mkdir", path.data,
		     "refused: the template has no disk.size (GB); nothing "
		     "was made");
		rc = -EINVAL;
		goto out;
	}
	if ((rc = cache_get(l->cache, SNAP_DISKS, CACHE_FRESH, &disks)))
		goto out;
	if (snap_pod(disks, name)) {
		plog("mkdir", path.data, "a disk named %s exists already",
		     name);
		rc = -EEXIST;
		goto out;
	}
	if ((rc = cache_get(l->cache, SNAP_DISK_OFFERS, CACHE_TTL, &offers)))
		goto out;
	if (!(o = choose_disk_offer(offers, want, dc, country, size, &why))) {
		plog("mkdir", path.data, "no disk offer chosen: %s", why.data);
		rc = -ENOSPC;
		goto out;
	}
	double price = o->price.d * (double)size;
	if ((rc = burn_admit(l->cache, l->tmpl, what, price, path.data)))
		goto out;
	plog("mkdir", path.data,
	     "making a %ld GB disk on disk_offers/%s at %g USD/h", size,
	     o->name, price);
	struct pod made;
	rc = api_create_disk(l->api, name, size, o, &made, path.data);
	bool unread = rc == 1;
	if (rc == 0) {
		plog("mkdir", path.data, "made disk %s (id %s)", name, made.id);
		cache_disks_change(l->cache, &made, NULL);
	} else if (rc == 1) {
		rc = 0; /* made; the next listing shows it */
		cache_refresh(l->cache);
	}
	burn_done(what, unread);
out:
	unclaim(name);
done:
	if (disks)
		snap_put(disks);
	if (offers)
		snap_put(offers);
	free(size_s);
	free(want);
	free(dc);
	free(country);
	buf_free(&why);
	buf_free(&path);
	return rc;
}

int disk_delete(struct lifecycle *l, const char *name)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/disks/%s", name);
	struct snap *disks = NULL, *pods = NULL;
	char *id = NULL;
	struct strlist users = {0};
	int rc = cache_get(l->cache, SNAP_DISKS, CACHE_FRESH, &disks);
	if (rc)
		goto out;
	const struct pod *d = snap_pod(disks, name);
	if (!d) {
		rc = -ENOENT;
		goto out;
	}
	id = xstrdup(d->id);
	disk_pod_ids(d, &users);
	if (users.n) {
		if ((rc = cache_get(l->cache, SNAP_PODS, CACHE_FRESH, &pods)))
			goto out;
		for (size_t i = 0; i < users.n; i++) {
			const struct pod *p = snap_pod_id(pods, users.v[i]);
			if (!p)
				continue;
			plog("rmdir", path.data,
			     "refused, nothing was sent: pod %s uses the disk "
			     "(return the pod first)",
			     p->dir);
			rc = -EBUSY;
			goto out;
		}
	}
	if ((rc = api_delete_disk(l->api, id, path.data)))
		goto out;
	plog("rmdir", path.data, "disk %s (id %s) deleted", name, id);
	cache_disks_change(l->cache, NULL, id);
	cache_stale(l->cache, SNAP_HISTORY); /* deleted disks show there */
out:
	strlist_free(&users);
	free(id);
	if (disks)
		snap_put(disks);
	if (pods)
		snap_put(pods);
	buf_free(&path);
	return rc;
}

int disks_for_pod(struct lifecycle *l, const char *name, const char *path,
		  struct snap **offers, json_object **ids)
{
	struct buf v;
	buf_init(&v);
	*ids = NULL;
	if (!template_store_get(l->tmpl, name, "disks", &v)) {
		buf_free(&v);
		return 0;
	}
	struct snap *disks = NULL;
	int rc = cache_get(l->cache, SNAP_DISKS, CACHE_TTL, &disks);
	if (rc) {
		buf_free(&v);
		return rc;
	}
	json_object *arr = json_object_new_array();
	char *save = NULL;
	for (char *tok = strtok_r(v.data, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t len = strlen(tok);
		while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			tok[--len] = '\0';
		if (!len)
			continue;
		const struct pod *d = snap_pod(disks, tok);
		if (!d) {
			plog("mkdir", path,
			     "refused, nothing was rented: disks = %s names no "
			     "disk in disks/",
			     tok);
			rc = -ENOENT;
			break;
		}
		json_object_array_add(arr, json_object_new_string(d->id));
	}
	snap_put(disks);
	buf_free(&v);
	struct offer_list ol;
	if (!rc && (rc = api_list_offers_for_disks(l->api, arr, &ol)) == 0) {
		snap_put(*offers);
		*offers = snap_from_offers(&ol);
	}
	if (rc)
		json_object_put(arr);
	else
		*ids = arr;
	return rc;
}
