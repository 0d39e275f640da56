/* tree_values.c — the value files' renderers: one value per line, from
 * the object the walker found: an offer, a pod (live or in history) or a
 * job; for the root's files the wallet, the template, the log and stats. */
#include "tree_int.h"

#include <errno.h>
#include <stdlib.h>

#include "cost.h"
#include "jobs.h"
#include "log.h"
#include "lifecycle.h"
#include "naming.h"
#include "pending.h"
#include "podlog.h"
#include "template.h"

/* ---- value helpers ---- */

/* One value and a newline; control characters a server sent become
 * spaces, so a value is always exactly one line. */
static void add_value(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		buf_addc(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	buf_addc(b, '\n');
}

static void add_num(struct buf *b, struct num n)
{
	num_render(b, n);
	buf_addc(b, '\n');
}

static void add_list(struct buf *b, const struct strlist *l)
{
	if (!l->n)
		buf_addc(b, '\n'); /* unknown: one empty line */
	for (size_t i = 0; i < l->n; i++)
		add_value(b, l->v[i]);
}

static void add_bool(struct buf *b, int v)
{
	add_value(b, v < 0 ? "" : v ? "true" : "false");
}

/* ---- offers ---- */

#define OFFER_STR(fn, field)                                                   \
	int fn(struct tree *t, const void *obj, struct buf *out)               \
	{                                                                      \
		(void)t;                                                       \
		add_value(out, ((const struct offer *)obj)->field);            \
		return 0;                                                      \
	}
#define OFFER_NUM(fn, field)                                                   \
	int fn(struct tree *t, const void *obj, struct buf *out)               \
	{                                                                      \
		(void)t;                                                       \
		add_num(out, ((const struct offer *)obj)->field);              \
		return 0;                                                      \
	}

OFFER_NUM(r_offer_price, price)
OFFER_STR(r_offer_stock, stock)
OFFER_STR(r_offer_provider, provider)
OFFER_STR(r_offer_data_center, data_center)
OFFER_STR(r_offer_country, country)
OFFER_STR(r_offer_region, region)
OFFER_STR(r_offer_socket, socket)
OFFER_NUM(r_offer_gpu_count, gpu_count)
OFFER_NUM(r_offer_gpu_memory, gpu_memory)
OFFER_NUM(r_offer_vcpus, vcpu.def)
OFFER_NUM(r_offer_memory, memory.def)
OFFER_NUM(r_offer_disk, disk.def)
OFFER_STR(r_offer_cloud_id, cloud_id)
OFFER_STR(r_offer_security, security)
OFFER_NUM(r_offer_prepaid, prepaid)

int r_offer_spot(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_bool(out, ((const struct offer *)obj)->is_spot);
	return 0;
}

int r_offer_images(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_list(out, &((const struct offer *)obj)->images);
	return 0;
}

int r_offer_json(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	offer_json_text(obj, out);
	return 0;
}

/* ---- pods (live and history) ---- */

#define POD_STR(fn, expr)                                                      \
	int fn(struct tree *t, const void *obj, struct buf *out)               \
	{                                                                      \
		(void)t;                                                       \
		const struct pod *p = obj;                                     \
		add_value(out, expr);                                          \
		return 0;                                                      \
	}

/* A placeholder (pending.h) has no id: its key is its name, not an id. */
int r_pod_id(struct tree *t, const void *obj, struct buf *out)
{
	const struct pod *p = obj;
	bool placeholder = t->o.life && t->o.life->pending &&
			   pending_state(t->o.life->pending, p->id, NULL) ==
			       PENDING_PLACEHOLDER;
	add_value(out, placeholder ? NULL : p->id);
	return 0;
}
POD_STR(r_pod_name, p->name)
POD_STR(r_pod_status, pod_status(p))
POD_STR(r_pod_gpu_type, p->gpu_type)
POD_STR(r_pod_provider, p->provider)
POD_STR(r_pod_image, p->image)
POD_STR(r_pod_created, p->created)

int r_pod_gpu_count(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_num(out, ((const struct pod *)obj)->gpu_count);
	return 0;
}

int r_pod_price(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_num(out, pod_price(obj));
	return 0;
}

int r_pod_progress(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_num(out, ((const struct pod *)obj)->progress);
	return 0;
}

int r_pod_cost(struct tree *t, const void *obj, struct buf *out)
{
	double cost;
	if (cost_pod_now(t->o.cache, obj, &cost) == 0)
		buf_printf(out, "%.4f", cost);
	buf_addc(out, '\n');
	return 0;
}

int r_pod_ssh(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_list(out, &((const struct pod *)obj)->ssh);
	return 0;
}

int r_pod_ip(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_list(out, &((const struct pod *)obj)->ip);
	return 0;
}

int r_pod_json(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	buf_adds(out, ((const struct pod *)obj)->json);
	return 0;
}

/* The pod's own log, fetched (rate-limited) when the file is opened. */
int r_pod_log(struct tree *t, const void *obj, struct buf *out)
{
	if (!t->o.podlog)
		return 0;
	return podlog_read(t->o.podlog, ((const struct pod *)obj)->id, out);
}

/* `<type>/<offer>` the pod was rented from: the one offer of the held
 * listing (fetched no more often than the offers' freshness window) whose
 * fields agree with the pod's; an empty line when none or several do.
 * `pods`, the snapshot p is in, keeps the answer (snap_pod_offer). The
 * listing is taken in `mode`; CACHE_HELD with none held: -EAGAIN. */
int pod_offer(struct tree *t, const struct snap *pods, const struct pod *p,
	      enum cache_mode mode, struct buf *out)
{
	struct snap *s;
	/* The offer this mount rented it from, as recorded at its mkdir. */
	if (t->o.life && t->o.life->pending &&
	    pending_offer(t->o.life->pending, p->id, out)) {
		buf_addc(out, '\n');
		return 0;
	}
	/* A type no directory could hold: no offer, and no fetch for it. */
	char *dir = p->gpu_type ? gpu_type_dir(p->gpu_type) : NULL;
	bool usable = dir != NULL;
	free(dir);
	int rc = usable ? cache_get(t->o.cache, SNAP_OFFERS, mode, &s) : -1;
	if (rc == -ENOENT && mode == CACHE_HELD)
		return -EAGAIN;
	if (rc == 0) {
		const struct gpu_type *g;
		const struct offer *found = snap_pod_offer(pods, p, s, &g);
		if (found)
			buf_printf(out, "%s/%s", type_name(g), found->name);
		snap_put(s);
	}
	buf_addc(out, '\n');
	return 0;
}

/* Rendered through tree_render, which passes the node's snapshot. */
int r_pod_offer(struct tree *t, const void *obj, struct buf *out)
{
	return pod_offer(t, NULL, obj, CACHE_TTL, out);
}

/* ---- jobs (jobs.h): the node's object is the job ---- */

int r_job_state(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	buf_adds(out, job_state_text(job_state((struct job *)obj)));
	return 0;
}

/* A time as the other time files show it; not yet: an empty line. */
static void add_time(struct buf *out, time_t when)
{
	char iso[32] = "";
	if (when)
		fmt_iso8601(iso, when);
	add_value(out, iso);
}

int r_job_started(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_time(out, job_started((struct job *)obj));
	return 0;
}

int r_job_ended(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	add_time(out, job_ended((struct job *)obj));
	return 0;
}

/* ---- root files ---- */

int r_balance(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	const struct snap *s = obj;
	add_num(out, s->wallet.balance);
	return 0;
}

/* What mkdir uses, from the same store (empty when there is none). */
int r_config(struct tree *t, const void *obj, struct buf *out)
{
	(void)obj;
	if (t->o.tmpl)
		template_store_text(t->o.tmpl, out);
	return 0;
}

int r_log(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	(void)obj;
	log_render(out);
	return 0;
}

int r_stats(struct tree *t, const void *obj, struct buf *out)
{
	(void)t;
	(void)obj;
	stats_render(out);
	return 0;
}
