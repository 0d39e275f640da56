/* lifecycle.c — see lifecycle.h. The only lock is the set of names being
 * created; it is held for memory operations only. A second mkdir of a name
 * whose request is on the wire gets EEXIST at once; one whose first mkdir
 * is still choosing an offer waits on a condition for it to finish. */
#include "lifecycle.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "burn.h"
#include "choose.h"
#include "collect.h"
#include "disk_life.h"
#include "errmap.h"
#include "guards.h"
#include "jobkey.h"
#include "log.h"
#include "naming.h"
#include "pending.h"

void lifecycle_init(struct lifecycle *l, struct cache *cache, struct api *api,
		    struct template_store *tmpl, const char *team_id)
{
	memset(l, 0, sizeof *l);
	l->cache = cache;
	l->api = api;
	l->tmpl = tmpl;
	l->team_id = team_id;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&l->settle_cv, &a);
	pthread_condattr_destroy(&a);
}

void lifecycle_stop(struct lifecycle *l)
{
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->settle_cv);
	bool started = l->settler_started;
	l->settler_started = false;
	pthread_mutex_unlock(&l->mu);
	if (started)
		pthread_join(l->settler, NULL);
}

void lifecycle_destroy(struct lifecycle *l)
{
	lifecycle_stop(l);
	free(l->creating);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	pthread_cond_destroy(&l->settle_cv);
}

/* The settler: while requests are pending, a pods listing now and then
 * (LIFECYCLE_SETTLE_MIN s apart, doubling up to LIFECYCLE_SETTLE_MAX
 * while none settles), so that each is settled — its guards applied, an
 * unwanted pod terminated — with nobody looking, after a restart too. */
static void *settler(void *arg)
{
	struct lifecycle *l = arg;
	double wait = LIFECYCLE_SETTLE_MIN, next = now_monotonic();
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		size_t n = pending_count(l->pending);
		double now = now_monotonic();
		if (!n || now < next) {
			double until = n ? next : now + 3600;
			struct timespec ts = {
			    (time_t)until,
			    (long)((until - (double)(time_t)until) * 1e9)};
			pthread_cond_timedwait(&l->settle_cv, &l->mu, &ts);
			if (!n && pending_count(l->pending)) {
				/* A new request: its first look is soon. */
				wait = LIFECYCLE_SETTLE_MIN;
				next = now_monotonic() + wait;
			}
			continue;
		}
		pthread_mutex_unlock(&l->mu);
		struct snap *s;
		if (cache_get(l->cache, SNAP_PODS, CACHE_TTL, &s) == 0)
			snap_put(s);
		pthread_mutex_lock(&l->mu);
		wait = pending_count(l->pending) < n
			   ? LIFECYCLE_SETTLE_MIN
			   : fmin(wait * 2, LIFECYCLE_SETTLE_MAX);
		next = now_monotonic() + wait;
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

void lifecycle_start(struct lifecycle *l)
{
	pthread_mutex_lock(&l->mu);
	if (l->pending && !l->settler_started && !l->stop &&
	    pthread_create(&l->settler, NULL, settler, l) == 0)
		l->settler_started = true;
	pthread_mutex_unlock(&l->mu);
}

/* A request is pending: the settler looks for it. */
static void wake_settler(struct lifecycle *l)
{
	pthread_mutex_lock(&l->mu);
	pthread_cond_broadcast(&l->settle_cv);
	pthread_mutex_unlock(&l->mu);
}

static struct creating *creating(struct lifecycle *l, const char *name)
{
	for (size_t i = 0; i < l->n_creating; i++)
		if (!strcmp(l->creating[i].name, name))
			return &l->creating[i];
	return NULL;
}

/* Takes the name: 0, or -EEXIST when a request for it is on the wire. */
static int claim(struct lifecycle *l, const char *name)
{
	pthread_mutex_lock(&l->mu);
	struct creating *other;
	while ((other = creating(l, name)) && !other->sent)
		pthread_cond_wait(&l->cv, &l->mu);
	if (other) {
		pthread_mutex_unlock(&l->mu);
		return -EEXIST;
	}
	l->creating =
	    xrealloc(l->creating, (l->n_creating + 1) * sizeof *l->creating);
	l->creating[l->n_creating++] = (struct creating){name, false};
	pthread_mutex_unlock(&l->mu);
	return 0;
}

static void mark_sent(struct lifecycle *l, const char *name)
{
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n_creating; i++)
		if (l->creating[i].name == name)
			l->creating[i].sent = true;
	pthread_mutex_unlock(&l->mu);
}

static void release(struct lifecycle *l, const char *name)
{
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n_creating; i++)
		if (l->creating[i].name == name) {
			l->creating[i] = l->creating[--l->n_creating];
			break;
		}
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

static const struct pod *named(const struct snap *s, const char *name)
{
	for (size_t i = 0; i < s->pods.n; i++) {
		const struct pod *p = &s->pods.v[i];
		if ((p->name && !strcmp(p->name, name)) || !strcmp(p->id, name))
			return p;
	}
	return NULL;
}

/* Other mkdirs under way that `pods` does not show yet (pending creates
 * are in it from just before their request is sent). */
static size_t others_unseen(struct lifecycle *l, const char *mine,
			    const struct snap *pods)
{
	size_t n = 0;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->n_creating; i++) {
		const struct creating *o = &l->creating[i];
		if (o->name != mine && (!o->sent || !named(pods, o->name)))
			n++;
	}
	pthread_mutex_unlock(&l->mu);
	/* Unwanted placeholders are not in pods/, but may bill. */
	return n + (l->pending ? pending_hidden(l->pending) : 0);
}

/* Was the request perhaps received? Then its answer, not the request, may
 * be what was lost. */
static bool maybe_sent(const struct http_resp *r)
{
	if (r->no_key)
		return false;
	if (r->curl != CURLE_OK)
		return r->curl != CURLE_COULDNT_CONNECT &&
		       r->curl != CURLE_COULDNT_RESOLVE_HOST &&
		       r->curl != CURLE_COULDNT_RESOLVE_PROXY &&
		       r->curl != CURLE_PEER_FAILED_VERIFICATION &&
		       r->curl != CURLE_SSL_CACERT_BADFILE &&
		       r->curl != CURLE_SSL_CONNECT_ERROR;
	return r->status >= 500;
}

/* What pending shows for `name` now, in every pods snapshot at once
 * (the key `remove` left out). */
static void show_pending(struct lifecycle *l, const char *name,
			 const char *remove)
{
	struct pod p;
	bool shown = pending_pod(l->pending, name, &p);
	cache_pods_change(l->cache, shown ? &p : NULL, remove);
}

/* The create's answer: its id is known, and the placeholder's guards
 * become the pod's; it is pending until a listing shows it. One without a
 * usable id leaves the placeholder, which a listing settles by name. */
static void answered(struct lifecycle *l, const char *name, json_object *o)
{
	struct pod p;
	if (pod_parse(o, false, &p) != 0)
		return;
	if (p.id && safe_name(p.id) && p.id[0] != '.') {
		pending_answered(l->pending, name, &p);
		guards_rekey(l->guards, name, p.id);
		collect_rekey(l->collect, name, p.id);
		show_pending(l, name, name);
	}
	pod_free(&p);
}

static int post(struct lifecycle *l, const char *name, const char *path,
		json_object *body)
{
	const char *text =
	    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	struct http_resp r;
	http_resp_init(&r);
	int rc = 0;
	if (http_call_timeout(l->api->http, "POST", "/pods/", text,
			      "POST /pods", LIFECYCLE_CREATE_TIMEOUT, &r)) {
		json_object *o = api_parse_object("POST /pods", &r);
		if (o) {
			plog("mkdir", path, "created pod %s (id %s)", name,
			     jx_str(o, "id") ? jx_str(o, "id") : "?");
			answered(l, name, o);
			json_object_put(o);
		} else {
			/* Created, but the answer is unreadable: the listing
			 * will show it (the placeholder stands until then). */
			cache_refresh(l->cache);
		}
	} else if (maybe_sent(&r)) {
		/* A listing that started after the request was sent and shows
		 * the pod settles it (the cache's overlay drops it). */
		struct snap *s;
		int lrc = cache_get(l->cache, SNAP_PODS, CACHE_FRESH, &s);
		enum pending_state st = pending_state(l->pending, name, NULL);
		if (lrc == 0 && (st == PENDING_NONE || st == PENDING_SETTLED)) {
			plog("mkdir", path,
			     "the API's answer was lost; pod %s is in a fresh "
			     "listing, so it was created once",
			     name);
		} else {
			rc = api_fail("mkdir", path, &r);
			plog("mkdir", path,
			     "the answer was lost and no listing shows pod %s "
			     "yet%s; it may exist: the name stays taken and "
			     "listed as PENDING until a listing shows it; its "
			     "guards apply to it then (rmdir: terminated once "
			     "listed)",
			     name, lrc ? " (the listing failed too)" : "");
		}
		if (lrc == 0)
			snap_put(s);
	} else {
		/* Not created (4xx, or nothing was sent): the name is free. */
		pending_drop(l->pending, name);
		guards_forget(l->guards, name);
		cache_pods_change(l->cache, NULL, name);
		rc = api_fail("mkdir", path, &r);
	}
	http_resp_free(&r);
	return rc;
}

int pod_create(struct lifecycle *l, const char *name)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s", name);
	if (!safe_name(name) || name[0] == '.') {
		plog("mkdir", path.data,
		     "refused: pod names are [A-Za-z0-9._-] only, not starting "
		     "with '.' (nothing was rented)");
		buf_free(&path);
		return -EINVAL;
	}
	char *mine = xstrdup(name);
	if (claim(l, mine) || pending_state(l->pending, name, NULL)) {
		plog("mkdir", path.data,
		     "a pod named %s exists already (its create request is on "
		     "the wire, or no listing has settled it yet)",
		     name);
		free(mine);
		buf_free(&path);
		return -EEXIST;
	}
	struct pod_spec spec;
	template_store_resolve(l->tmpl, name, &spec);
	struct snap *pods = NULL, *offers = NULL;
	const struct offer *offer = NULL;
	json_object *body = NULL;
	json_object *disk_ids = NULL; /* the create body's `disks` */
	char budget_what[300] = "";
	struct buf why;
	buf_init(&why);

	int rc = cache_get(l->cache, SNAP_PODS, CACHE_FRESH, &pods);
	if (rc)
		goto out;
	if (named(pods, name)) {
		plog("mkdir", path.data, "a pod named %s exists already", name);
		rc = -EEXIST;
		goto out;
	}
	size_t billing = others_unseen(l, mine, pods);
	for (size_t i = 0; i < pods->pods.n; i++)
		billing += pod_bills(&pods->pods.v[i]);
	if ((long)billing >= spec.max_pods) {
		plog("mkdir", path.data,
		     "refused: max_pods = %ld reached (%zu pods that bill or "
		     "asked for)",
		     spec.max_pods, billing);
		rc = -EDQUOT;
		goto out;
	}
	if ((rc = cache_get(l->cache, SNAP_OFFERS, CACHE_TTL, &offers)))
		goto out;
	/* disks = a, b: only offers where they attach (disk_life.h). */
	if ((rc = disks_for_pod(l, name, path.data, &offers, &disk_ids)))
		goto out;
	if ((rc = choose_offer(offers, &spec, &offer, &why))) {
		plog("mkdir", path.data, "no offer chosen: %s", why.data);
		goto out;
	}
	double price = offer_price_for(offer, &spec).d;
	if (price != offer->price.d)
		plog("mkdir", path.data,
		     "offer %s costs %g USD/h with the disk_size, vcpus and "
		     "memory asked (listed at %g)",
		     offer->name, price, offer->price.d);
	/* max_hourly (budget.h): refused before anything is sent. */
	snprintf(budget_what, sizeof budget_what, "pods/%s", name);
	if ((rc = burn_admit(l->cache, l->tmpl, budget_what, price,
			     path.data))) {
		budget_what[0] = '\0';
		goto out;
	}
	body = create_body(offer, &spec, name, l->team_id, &why);
	if (!body) {
		plog("mkdir", path.data, "%s", why.data);
		rc = -EINVAL;
		goto out;
	}
	if (l->jobkey) { /* the pod gets the key jobs will use */
		char *kid;
		if ((rc = jobkey_id(l->jobkey, l->cache, path.data, &kid)))
			goto out;
		if (kid) /* none of our own: left out, as the Prime CLI does */
			json_object_object_add(
			    json_object_object_get(body, "pod"), "sshKeyId",
			    json_object_new_string(kid));
		free(kid);
	}
	bool attach = disk_ids != NULL;
	if (disk_ids) {
		json_object_object_add(body, "disks", disk_ids);
		disk_ids = NULL;
	}
	plog("mkdir", path.data, "renting offer %s (%s) at %g USD/h",
	     offer->name, offer->gpu_type ? offer->gpu_type : "?",
	     offer->price.d);
	/* From now on the pod counts as existing (see pending.h): recorded
	 * before it is sent, with the template's guards. */
	char *type_dir = offer->gpu_type ? gpu_type_dir(offer->gpu_type) : NULL;
	buf_reset(&why);
	if (type_dir)
		buf_printf(&why, "%s/%s", type_dir, offer->name);
	free(type_dir);
	if ((rc = pending_add(l->pending, name, why.len ? why.data : NULL))) {
		plog("mkdir", path.data,
		     "nothing was sent: the request could not be recorded "
		     "(%s)",
		     strerror(-rc));
		goto out;
	}
	mark_sent(l, mine);
	if (l->guards)
		guards_arm(l->guards, name, name, spec.deadline, spec.idle,
			   spec.max_cost);
	collect_arm(l->collect, name, spec.collect);
	show_pending(l, name, name);
	wake_settler(l);
	rc = post(l, name, path.data, body);
	if (attach) /* the disks' `pods` show it */
		cache_stale(l->cache, SNAP_DISKS);
out:
	json_object_put(body);
	json_object_put(disk_ids);
	/* A lost answer counts on until a listing settles it. */
	if (budget_what[0])
		burn_done(budget_what, pending_state(l->pending, name, NULL) ==
					   PENDING_PLACEHOLDER);
	if (pods)
		snap_put(pods);
	if (offers)
		snap_put(offers);
	pod_spec_free(&spec);
	release(l, mine);
	free(mine);
	buf_free(&why);
	buf_free(&path);
	return rc;
}

/* rmdir of a placeholder (pending.h): a create whose answer was lost and
 * that no listing has shown. A fresh listing may show it now (then it is
 * returned as any pod); else it is unwanted: it leaves pods/, its name
 * stays taken, and the listing that shows it has it terminated. */
static int unwant(struct lifecycle *l, const char *name, const char *path)
{
	pthread_mutex_lock(&l->mu);
	bool on_wire = creating(l, name) != NULL;
	pthread_mutex_unlock(&l->mu);
	if (on_wire) {
		plog("rmdir", path,
		     "the create request of pod %s is still on the wire; try "
		     "again once it is answered",
		     name);
		return -EBUSY;
	}
	struct snap *s;
	int rc = cache_get(l->cache, SNAP_PODS, CACHE_FRESH, &s);
	if (rc == 0)
		snap_put(s);
	if (pending_state(l->pending, name, NULL) != PENDING_PLACEHOLDER)
		return pod_delete(l, name); /* settled meanwhile */
	if (pending_unwanted(l->pending, name, "rmdir")) {
		cache_pods_change(l->cache, NULL, name);
		plog("rmdir", path,
		     "pod %s is a placeholder (its create's answer was lost "
		     "and no listing shows it yet): not wanted any more; its "
		     "name stays taken until a listing shows it, and then it "
		     "is terminated",
		     name);
	}
	return 0;
}

/* The one DELETE of a pod: 0 once the API confirms (2xx, or 404: gone
 * already); the pod then leaves pods/ for history/ at once. */
static int delete_id(struct lifecycle *l, const char *id, const char *op,
		     const char *path, const char *note)
{
	/* Results first: bounded, and at once for a pod out of reach. */
	const char *slash = strrchr(path, '/');
	collect_run(l->collect, id, slash ? slash + 1 : id);
	struct buf api_path;
	buf_init(&api_path);
	buf_adds(&api_path, "/pods/");
	http_escape_into(&api_path, id);
	struct http_resp r;
	http_resp_init(&r);
	bool ok = http_call(l->api->http, "DELETE", api_path.data, NULL,
			    "DELETE /pods/{id}", &r);
	int rc = 0;
	if (!ok && r.curl == CURLE_OK && r.status == 404 &&
	    pending_unwanted_id(l->pending, id, op)) {
		/* Answered, but no listing shows it yet: a 404 settles
		 * nothing (pending.h). */
		plog(
		    op, path,
		    "pod %s is not listed yet (404): not wanted; its name "
		    "stays taken, and it is terminated once a listing shows it",
		    id);
		cache_pods_change(l->cache, NULL, id);
		guards_forget(l->guards, id);
	} else if (ok || (r.curl == CURLE_OK && r.status == 404)) {
		plog(op, path, "pod %s terminated%s%s", id, note,
		     ok ? "" : " (it was gone already)");
		cache_history_add(l->cache, id);
		cache_pods_change(l->cache, NULL, id);
		pending_gone(l->pending, id);
		guards_forget(l->guards, id);
		collect_forget(l->collect, id);
		if (l->on_delete)
			l->on_delete(l->on_delete_arg, id);
	} else {
		rc = api_fail(op, path, &r);
	}
	http_resp_free(&r);
	buf_free(&api_path);
	return rc;
}

int pod_delete(struct lifecycle *l, const char *name)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s", name);
	struct snap *pods;
	int rc = cache_get(l->cache, SNAP_PODS, CACHE_TTL, &pods);
	if (rc) {
		buf_free(&path);
		return rc;
	}
	const struct pod *p = snap_pod(pods, name);
	if (!p) {
		/* A stale answer (served while the API fails) must not say a
		 * pod that may exist is gone: ask again. */
		snap_put(pods);
		rc = cache_get(l->cache, SNAP_PODS, CACHE_FRESH, &pods);
		if (rc) {
			buf_free(&path);
			return rc;
		}
		p = snap_pod(pods, name);
	}
	if (!p) {
		snap_put(pods);
		buf_free(&path);
		return -ENOENT;
	}
	if (pending_state(l->pending, p->id, NULL) == PENDING_PLACEHOLDER) {
		/* A placeholder: its key is its name, not an id. */
		char *pname = xstrdup(p->id);
		snap_put(pods);
		rc = unwant(l, pname, path.data);
		free(pname);
		buf_free(&path);
		return rc;
	}
	char *id = xstrdup(p->id);
	snap_put(pods);
	rc = delete_id(l, id, "rmdir", path.data, "");
	free(id);
	buf_free(&path);
	return rc;
}

int pod_terminate(struct lifecycle *l, const char *id, const char *name,
		  const char *why)
{
	struct buf path, note;
	buf_init(&path);
	buf_init(&note);
	buf_printf(&path, "/pods/%s", name);
	char *real = NULL;
	enum pending_state st = pending_state(l->pending, id, &real);
	int rc = 0;
	if (st == PENDING_PLACEHOLDER || st == PENDING_UNWANTED) {
		/* Never by a placeholder's key: no id to terminate by. */
		if (pending_unwanted(l->pending, id, why))
			cache_pods_change(l->cache, NULL, id);
		plog("guard", path.data,
		     "pod %s is a placeholder (no listing shows it yet): its "
		     "%s guard marks it not wanted; it is terminated as soon "
		     "as a listing shows it",
		     name, why);
	} else {
		if (!strcmp(why, "unwanted"))
			buf_adds(&note, ", as it was not wanted (rmdir of its "
					"placeholder, or a guard due on it)");
		else
			buf_printf(&note, " by its %s guard", why);
		rc = delete_id(l, real ? real : id, "guard", path.data,
			       note.data);
	}
	free(real);
	buf_free(&note);
	buf_free(&path);
	return rc;
}

/* A listing settled a pending create (pending.h). */
static void settled(void *arg, const struct pending_settled *s)
{
	struct lifecycle *l = arg;
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "/pods/%s", s->name);
	if (s->was_placeholder) {
		guards_rekey(l->guards, s->name, s->id);
		collect_rekey(l->collect, s->name, s->id);
	}
	if (s->unwanted) {
		plog("mkdir", path.data,
		     "the listing shows pod %s (id %s), which is not wanted "
		     "(%s): terminating it",
		     s->name, s->id, s->unwanted);
		if (l->guards)
			guards_doom(l->guards, s->id, s->name, "unwanted");
		else
			pod_terminate(l, s->id, s->name, "unwanted");
	} else {
		plog("mkdir", path.data,
		     "the listing shows pod %s (id %s): its create is settled",
		     s->name, s->id);
	}
	buf_free(&path);
}

void lifecycle_set_pending(struct lifecycle *l, struct pending *p)
{
	l->pending = p;
	pending_set_hook(p, settled, l);
	cache_set_pending(l->cache, p);
}
