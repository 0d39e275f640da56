/* choose.c — see choose.h. The filters run in a fixed order, each over
 * what the previous left, so the reason for "no offer" names the first
 * filter that left nothing. */
#include "choose.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool str_is(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static bool in_list(const struct strlist *l, const char *s)
{
	for (size_t i = 0; s && i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

/* The count to send for a resource: the template's, else the offer's
 * default (else its minimum); 0 when nothing is known. */
static long resource(long wanted, const struct spec *sp)
{
	if (wanted > 0)
		return wanted;
	if (sp->def.set)
		return (long)sp->def.d;
	if (sp->min.set)
		return (long)sp->min.d;
	return 0;
}

/* The image the API uses when the body names none (compute.yml). */
#define DEFAULT_IMAGE "ubuntu_22_cuda_12"

/* The Prime CLI, given environment variables, drops every runpod offer and
 * the ubuntu_22_cuda_12 image, and then offers left with no image
 * (PRIME_API.md 5.4): neither takes environment variables. */
static bool takes_env(const struct offer *o)
{
	return !str_is(o->provider, "runpod");
}

static bool image_ok(const struct offer *o, const char *image, bool env)
{
	if (env && str_is(image, DEFAULT_IMAGE))
		return false;
	return !o->images.n || in_list(&o->images, image);
}

/* The offer's images a pod with (env) or without environment variables
 * can use; with env, an offer that lists none has none. */
static size_t usable_images(const struct offer *o, bool env, const char **only)
{
	size_t n = 0;
	for (size_t i = 0; i < o->images.n; i++)
		if (image_ok(o, o->images.v[i], env)) {
			*only = o->images.v[i];
			n++;
		}
	return n;
}

static bool fits_range(long v, const struct spec *sp)
{
	if (v <= 0)
		return true;
	return (!sp->min.set || v >= sp->min.d) &&
	       (!sp->max.set || v <= sp->max.d);
}

/* What `wanted` units cost beyond the offer's default, per hour. */
static double extra_cost(long wanted, const struct spec *sp)
{
	if (wanted <= 0 || sp->ppu <= 0 || !sp->def.set || wanted <= sp->def.d)
		return 0;
	double step = sp->step > 0 ? sp->step : 1;
	return ceil(((double)wanted - sp->def.d) / step) * step * sp->ppu;
}

struct num offer_price_for(const struct offer *o, const struct pod_spec *spec)
{
	struct num p = o->price;
	if (!p.set)
		return p;
	double extra = extra_cost(spec->disk_size, &o->disk) +
		       extra_cost(spec->vcpus, &o->vcpu) +
		       extra_cost(spec->memory, &o->memory);
	if (extra > 0) {
		p.d += extra;
		p.integral = false;
	}
	return p;
}

enum filter {
	F_OFFER,
	F_COUNT,
	F_SOCKET,
	F_REGIONS,
	F_PROVIDER,
	F_DATA_CENTER,
	F_SECURITY,
	F_SPOT,
	F_PREPAID,
	F_ENV,
	F_IMAGE,
	F_RESOURCES,
	F_STOCK,
	F_PRICED,
	F_MAX_PRICE,
	F_FILTERS
};

static bool has_prepaid(const struct offer *o)
{
	return o->prepaid.set && o->prepaid.d > 0;
}

/* Is o the offer `type/name` names? The type as the tree spells it. */
static bool is_named(const struct offer *o, const char *type_dir,
		     const char *ref)
{
	size_t tl = strlen(type_dir);
	return !strncmp(ref, type_dir, tl) && ref[tl] == '/' &&
	       str_is(o->name, ref + tl + 1);
}

/* `offer = type/name` names the offer: the filters that pick among
 * offers step aside, and those that say whether it can be rented now
 * (stock, price, max_price) and what it can run (env, image) stay. */
static bool picked_by_name(enum filter f)
{
	return f != F_OFFER && f != F_ENV && f != F_IMAGE && f != F_RESOURCES &&
	       f < F_STOCK;
}

static bool passes(enum filter f, const struct offer *o,
		   const struct pod_spec *s)
{
	bool env = s->n_env > 0;
	if (s->offer && picked_by_name(f))
		return true;
	switch (f) {
	case F_OFFER:
		return true; /* choose_offer matched the name already */
	case F_COUNT:
		return !s->gpu_count ||
		       (o->gpu_count.set && o->gpu_count.d == s->gpu_count);
	case F_SOCKET:
		return !s->socket || str_is(o->socket, s->socket);
	case F_REGIONS:
		return !s->regions.n || in_list(&s->regions, o->region);
	case F_PROVIDER:
		return !s->provider || str_is(o->provider, s->provider);
	case F_DATA_CENTER:
		return !s->data_center ||
		       str_is(o->data_center, s->data_center);
	case F_SECURITY:
		return !s->security || str_is(o->security, s->security);
	case F_SPOT:
		/* Spot offers are chosen only with spot = true. */
		return s->spot == 1 ? o->is_spot == 1 : o->is_spot != 1;
	case F_PREPAID:
		/* Prepaid offers are chosen only with prepaid = true. */
		return s->prepaid == 1 ? has_prepaid(o) : !has_prepaid(o);
	case F_ENV: {
		const char *only;
		return !env || (takes_env(o) && usable_images(o, true, &only));
	}
	case F_IMAGE:
		return !s->image || image_ok(o, s->image, env);
	case F_RESOURCES:
		return fits_range(s->disk_size, &o->disk) &&
		       fits_range(s->vcpus, &o->vcpu) &&
		       fits_range(s->memory, &o->memory);
	case F_STOCK:
		return offer_in_stock(o);
	case F_PRICED:
		return o->price.set;
	case F_MAX_PRICE:
		return s->max_price < 0 ||
		       offer_price_for(o, s).d <= s->max_price;
	default:
		return false;
	}
}

static void describe(enum filter f, const struct pod_spec *s, struct buf *b)
{
	switch (f) {
	case F_OFFER:
		buf_printf(b, "offer = %s", s->offer);
		break;
	case F_PREPAID:
		buf_adds(b,
			 s->prepaid == 1
			     ? "prepaid = true"
			     : "offers with prepaid time (set prepaid = true)");
		break;
	case F_ENV:
		buf_adds(b, "env.* (runpod offers and the ubuntu_22_cuda_12 "
			    "image take no environment variables)");
		break;
	case F_COUNT:
		buf_printf(b, "gpu_count = %ld", s->gpu_count);
		break;
	case F_SOCKET:
		buf_printf(b, "socket = %s", s->socket);
		break;
	case F_REGIONS:
		buf_adds(b, "regions = ");
		for (size_t i = 0; i < s->regions.n; i++)
			buf_printf(b, "%s%s", i ? "," : "", s->regions.v[i]);
		break;
	case F_PROVIDER:
		buf_printf(b, "provider = %s", s->provider);
		break;
	case F_DATA_CENTER:
		buf_printf(b, "data_center = %s", s->data_center);
		break;
	case F_SECURITY:
		buf_printf(b, "security = %s", s->security);
		break;
	case F_SPOT:
		buf_adds(b, s->spot == 1 ? "spot = true"
					 : "spot offers (set spot = true)");
		break;
	case F_IMAGE:
		buf_printf(b, "image = %s", s->image);
		break;
	case F_RESOURCES:
		buf_adds(b, "disk_size/vcpus/memory within the offer's range");
		break;
	case F_STOCK:
		buf_adds(b, "in stock (not Unavailable)");
		break;
	case F_PRICED:
		buf_adds(b, "having a price");
		break;
	case F_MAX_PRICE:
		buf_printf(b, "max_price = %g", s->max_price);
		if (s->disk_size > 0 || s->vcpus > 0 || s->memory > 0)
			buf_adds(b, " at the price with the disk_size, vcpus "
				    "and memory asked (the offer's "
				    "pricePerUnit beyond its default)");
		break;
	default:
		break;
	}
}

/* choose_offer, and with `all` every offer that fits (to free) for
 * choose_ranked. */
static int choose(const struct snap *offers, const struct pod_spec *spec,
		  const struct offer **out, struct buf *why,
		  const struct offer ***all, size_t *n_all)
{
	*out = NULL;
	if (spec->invalid) {
		buf_adds(why, spec->invalid);
		return -EINVAL;
	}
	if (!spec->gpu_type && !spec->offer) {
		buf_adds(why, "the template sets no gpu_type");
		return -EINVAL;
	}
	/* The API's name (H100_80GB) or the directory's, which differ only
	 * where the API's has characters a file name cannot. */
	size_t n = 0;
	const struct offer **left =
	    xcalloc(offers ? offers->offers.n : 0, sizeof *left);
	for (size_t i = 0; i < snap_n_types(offers); i++) {
		const struct gpu_type *t = snap_type_at(offers, i);
		const char *tn = type_name(t);
		bool dir_match = str_is(tn, spec->gpu_type);
		for (size_t j = 0; j < type_n_offers(t); j++) {
			const struct offer *o = type_offer_at(t, j);
			if (spec->offer ? is_named(o, tn, spec->offer)
					: dir_match || str_is(o->gpu_type,
							      spec->gpu_type))
				left[n++] = o;
		}
	}
	if (!n && spec->offer) {
		buf_printf(why, "no offer %s now (see availability/)",
			   spec->offer);
		free(left);
		return -ENOSPC;
	}
	if (!n) {
		buf_printf(why, "no offer of gpu_type %s now", spec->gpu_type);
		free(left);
		return -ENOSPC;
	}
	for (enum filter f = 0; f < F_FILTERS; f++) {
		size_t kept = 0;
		for (size_t i = 0; i < n; i++)
			if (passes(f, left[i], spec))
				left[kept++] = left[i];
		if (!kept) {
			buf_printf(why, "none of the %zu %s offers left fits ",
				   n,
				   spec->offer ? spec->offer : spec->gpu_type);
			describe(f, spec, why);
			free(left);
			return -ENOSPC;
		}
		n = kept;
	}
	if (all) { /* choose_ranked ranks them all */
		*all = xcalloc(n, sizeof **all);
		memcpy(*all, left, n * sizeof *left);
		*n_all = n;
	}
	const struct offer *best = left[0];
	double best_price = offer_price_for(best, spec).d;
	for (size_t i = 1; i < n; i++) {
		double p = offer_price_for(left[i], spec).d;
		if (p < best_price || (p == best_price &&
				       strcmp(left[i]->name, best->name) < 0)) {
			best = left[i];
			best_price = p;
		}
	}
	free(left);
	*out = best;
	return 0;
}

int choose_offer(const struct snap *offers, const struct pod_spec *spec,
		 const struct offer **out, struct buf *why)
{
	return choose(offers, spec, out, why, NULL, NULL);
}

double choose_price(const struct offer *o, const struct pod_spec *spec)
{
	return offer_price_for(o, spec).d;
}

int choose_ranked(const struct snap *offers, const struct pod_spec *spec,
		  const struct offer **out, size_t max, size_t *n_out,
		  struct buf *why)
{
	const struct offer *best, **all = NULL;
	size_t n = 0;
	*n_out = 0;
	int rc = choose(offers, spec, &best, why, &all, &n);
	if (rc)
		return rc;
	/* choose_offer's pick first, then the cheapest of the rest (by
	 * name among equals), max in all: a few passes over the list. */
	out[(*n_out)++] = best;
	for (size_t i = 0; i < n; i++)
		if (all[i] == best)
			all[i] = NULL;
	while (*n_out < max) {
		size_t pick = n;
		for (size_t i = 0; i < n; i++) {
			if (!all[i])
				continue;
			if (pick == n) {
				pick = i;
				continue;
			}
			double a = choose_price(all[i], spec);
			double b = choose_price(all[pick], spec);
			if (a < b || (a == b && strcmp(all[i]->name,
						       all[pick]->name) < 0))
				pick = i;
		}
		if (pick == n)
			break;
		out[(*n_out)++] = all[pick];
		all[pick] = NULL;
	}
	free(all);
	return 0;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *count_or_null(long v)
{
	return v > 0 ? json_object_new_int64(v) : NULL;
}

json_object *create_body(const struct offer *o, const struct pod_spec *spec,
			 const char *name, const char *team_id, struct buf *why)
{
	bool with_env = spec->n_env > 0;
	const char *image = spec->image, *only = NULL;
	if (!image && !with_env &&
	    (!o->images.n || in_list(&o->images, DEFAULT_IMAGE)))
		image = DEFAULT_IMAGE;
	else if (!image && usable_images(o, with_env, &only) == 1)
		image = only;
	else if (!image) {
		buf_printf(why,
			   "offer %s has no default image%s; set image in the "
			   "template to one of:",
			   o->name,
			   with_env ? " that takes environment variables" : "");
		for (size_t i = 0; i < o->images.n; i++)
			if (image_ok(o, o->images.v[i], with_env))
				buf_printf(why, " %s", o->images.v[i]);
		return NULL;
	}
	if (spec->custom_template_id && !str_is(image, "custom_template")) {
		buf_adds(why,
			 "custom_template_id needs image = custom_template");
		return NULL;
	}
	if (str_is(image, "custom_template") && !spec->custom_template_id) {
		buf_adds(why,
			 "image = custom_template needs custom_template_id");
		return NULL;
	}
	/* Key order and explicit nulls as the Prime CLI sends them. */
	json_object *pod = json_object_new_object();
	json_object_object_add(pod, "name", json_object_new_string(name));
	json_object_object_add(pod, "cloudId", str_or_null(o->cloud_id));
	json_object_object_add(pod, "gpuType", str_or_null(o->gpu_type));
	json_object_object_add(pod, "socket", str_or_null(o->socket));
	json_object_object_add(pod, "gpuCount",
			       o->gpu_count.set
				   ? json_object_new_int64((long)o->gpu_count.d)
				   : NULL);
	json_object_object_add(
	    pod, "diskSize",
	    count_or_null(resource(spec->disk_size, &o->disk)));
	json_object_object_add(pod, "vcpus",
			       count_or_null(resource(spec->vcpus, &o->vcpu)));
	json_object_object_add(
	    pod, "memory", count_or_null(resource(spec->memory, &o->memory)));
	/* image is no nullable field: left out, the API's default
	 * (ubuntu_22_cuda_12) applies. */
	if (image)
		json_object_object_add(pod, "image",
				       json_object_new_string(image));
	json_object_object_add(pod, "dataCenterId",
			       str_or_null(o->data_center));
	json_object_object_add(pod, "maxPrice",
			       spec->max_price >= 0
				   ? json_object_new_double(spec->max_price)
				   : NULL);
	json_object_object_add(pod, "country", NULL);
	json_object_object_add(pod, "security", str_or_null(o->security));
	json_object_object_add(pod, "jupyterPassword", NULL);
	json_object_object_add(pod, "autoRestart", json_object_new_boolean(0));
	json_object_object_add(pod, "customTemplateId",
			       str_or_null(spec->custom_template_id));
	json_object *env = json_object_new_array();
	for (size_t i = 0; i < spec->n_env; i++) {
		json_object *kv = json_object_new_object();
		json_object_object_add(
		    kv, "key", json_object_new_string(spec->env[i].key));
		json_object_object_add(
		    kv, "value", json_object_new_string(spec->env[i].value));
		json_object_array_add(env, kv);
	}
	json_object_object_add(pod, "envVars", env);

	json_object *body = json_object_new_object();
	json_object_object_add(body, "pod", pod);
	json_object *provider = json_object_new_object();
	if (o->provider)
		json_object_object_add(provider, "type",
				       json_object_new_string(o->provider));
	json_object_object_add(body, "provider", provider);
	json_object_object_add(body, "disks", NULL);
	const char *team = spec->team_id ? spec->team_id : team_id;
	json_object *t = NULL;
	if (team && *team) {
		t = json_object_new_object();
		json_object_object_add(t, "teamId",
				       json_object_new_string(team));
	}
	json_object_object_add(body, "team", t);
	return body;
}
