/* choose.c — see choose.h. The filters run in a fixed order, each over
 * what the previous left, so the reason for "no offer" names the first
 * filter that left nothing. */
#include "choose.h"

#include <errno.h>
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

static bool fits_range(long v, const struct spec *sp)
{
	if (v <= 0)
		return true;
	return (!sp->min.set || v >= sp->min.d) &&
	       (!sp->max.set || v <= sp->max.d);
}

enum filter {
	F_COUNT,
	F_SOCKET,
	F_REGIONS,
	F_PROVIDER,
	F_DATA_CENTER,
	F_SECURITY,
	F_SPOT,
	F_IMAGE,
	F_RESOURCES,
	F_STOCK,
	F_PRICED,
	F_MAX_PRICE,
	F_FILTERS
};

static bool passes(enum filter f, const struct offer *o,
		   const struct pod_spec *s)
{
	switch (f) {
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
	case F_IMAGE:
		return !s->image || !o->images.n ||
		       in_list(&o->images, s->image);
	case F_RESOURCES:
		return fits_range(s->disk_size, &o->disk) &&
		       fits_range(s->vcpus, &o->vcpu) &&
		       fits_range(s->memory, &o->memory);
	case F_STOCK:
		return o->stock != NULL;
	case F_PRICED:
		return o->price.set;
	case F_MAX_PRICE:
		return s->max_price < 0 || o->price.d <= s->max_price;
	default:
		return false;
	}
}

static void describe(enum filter f, const struct pod_spec *s, struct buf *b)
{
	switch (f) {
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
		buf_adds(b, "in stock");
		break;
	case F_PRICED:
		buf_adds(b, "having a price");
		break;
	case F_MAX_PRICE:
		buf_printf(b, "max_price = %g", s->max_price);
		break;
	default:
		break;
	}
}

int choose_offer(const struct snap *offers, const struct pod_spec *spec,
		 const struct offer **out, struct buf *why)
{
	*out = NULL;
	if (!spec->gpu_type) {
		buf_adds(why, "the template sets no gpu_type");
		return -EINVAL;
	}
	/* The API's name (H100_80GB) or the directory's, which differ only
	 * where the API's has characters a file name cannot. */
	size_t n = 0;
	const struct offer **left =
	    xcalloc(offers ? offers->offers.n : 0, sizeof *left);
	for (size_t i = 0; offers && i < offers->n_types; i++) {
		const struct gpu_type *t = &offers->types[i];
		bool dir_match = str_is(t->name, spec->gpu_type);
		for (size_t j = 0; j < t->n; j++)
			if (dir_match ||
			    str_is(t->offers[j]->gpu_type, spec->gpu_type))
				left[n++] = t->offers[j];
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
				   n, spec->gpu_type);
			describe(f, spec, why);
			free(left);
			return -ENOSPC;
		}
		n = kept;
	}
	const struct offer *best = left[0];
	for (size_t i = 1; i < n; i++)
		if (left[i]->price.d < best->price.d ||
		    (left[i]->price.d == best->price.d &&
		     strcmp(left[i]->name, best->name) < 0))
			best = left[i];
	free(left);
	*out = best;
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
	const char *image = spec->image;
	if (!image && o->images.n == 1)
		image = o->images.v[0];
	if (!image && o->images.n > 1) {
		buf_printf(why,
			   "offer %s has %zu images; set image in the template "
			   "(see the offer's images file)",
			   o->name, o->images.n);
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
	json_object_object_add(pod, "maxPrice", NULL);
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
